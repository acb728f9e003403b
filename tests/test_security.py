"""Attacks from a browser's point of view, as real HTTP against a running app: DNS rebinding
(foreign Host), cross-site simple requests (foreign / null Origin, Sec-Fetch-Site), and the
token required off loopback. Each checks the refusal and that nothing changed."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from pydantic import SecretStr

from chat import create_app
from tests.conftest import ROOT, free_port, make_settings, read_frames, serve
from tests.fakes import FakeChatEngine
from web.security import (
    AccessPolicy,
    FailureLimiter,
    SecurityMiddleware,
    StartupRefused,
    split_host,
)

TOKEN = "correct-horse-battery-staple-42"
REBINDING_HOSTS = ["evil.example", "evil.example:{port}", "localhost.evil.example:{port}",
                   "127.0.0.1.evil.example:{port}", "127.0.0.1.nip.io", ""]


@pytest.fixture
def app_url(isolated_data):
    settings = make_settings(isolated_data)
    with serve(create_app(settings, engines={"chat": FakeChatEngine()})) as url:
        yield url


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def sessions(url: str) -> list:
    return httpx.get(url + "/api/sessions").json()["sessions"]


def test_the_page_works_on_every_loopback_name(app_url):
    port = port_of(app_url)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost", "LOCALHOST."):
        page = httpx.get(app_url + "/", headers={"Host": host})
        assert page.status_code == 200, host
        created = httpx.post(app_url + "/api/sessions", json={"title": "x"},
                             headers={"Host": host, "Origin": f"http://{host}"})
        assert created.status_code == 201, (host, created.text)


@pytest.mark.parametrize("path", ["/", "/app.js", "/ui/api.js", "/health", "/api/sessions", "/api/documents",
                                  "/api/config", "/api/slot"])
def test_rebinding_hosts_are_refused_on_reads(app_url, path):
    port = port_of(app_url)
    for host in REBINDING_HOSTS:
        response = httpx.get(app_url + path, headers={"Host": host.format(port=port)})
        assert response.status_code == 421, (host, path, response.status_code)
        assert response.json()["error"]["code"] == "host_not_allowed"
        assert "AIONE_SERVER__ALLOWED_HOSTS" in response.json()["error"]["message"]


def test_rebinding_hosts_cannot_write_chat_upload_or_delete(app_url):
    port = port_of(app_url)
    kept = httpx.post(app_url + "/api/sessions", json={"title": "keep me"}).json()
    for host in REBINDING_HOSTS:
        headers = {"Host": host.format(port=port)}
        attempts = [
            httpx.post(app_url + "/api/sessions", json={"title": "planted"}, headers=headers),
            httpx.post(app_url + "/chat_stream_sse_fetch", json={"message": "hi"}, headers=headers),
            httpx.post(app_url + "/api/documents", files={"file": ("a.txt", b"planted text")}, headers=headers),
            httpx.delete(f"{app_url}/api/sessions/{kept['id']}", headers=headers),
            httpx.patch(f"{app_url}/api/sessions/{kept['id']}", json={"title": "renamed"}, headers=headers),
        ]
        assert [r.status_code for r in attempts] == [421] * 5, host
    assert [(s["id"], s["title"]) for s in sessions(app_url)] == [(kept["id"], "keep me")]
    assert httpx.get(app_url + "/api/documents").json()["documents"] == []


def test_cross_site_simple_requests_are_refused_and_change_nothing(app_url):
    kept = httpx.post(app_url + "/api/sessions", json={"title": "keep me"}).json()
    evil = {"Origin": "http://evil.example"}
    attempts = {
        "text/plain json": httpx.post(app_url + "/api/sessions", content=b'{"title": "planted"}',
                                      headers=evil | {"Content-Type": "text/plain"}),
        "urlencoded": httpx.post(app_url + "/api/sessions", data={"title": "planted"}, headers=evil),
        "multipart upload": httpx.post(app_url + "/api/documents", files={"file": ("a.txt", b"planted")},
                                       headers=evil),
        "null origin upload": httpx.post(app_url + "/api/documents", files={"file": ("a.txt", b"planted")},
                                         headers={"Origin": "null"}),
        "json post": httpx.post(app_url + "/api/sessions", json={"title": "planted"}, headers=evil),
        "chat": httpx.post(app_url + "/chat_stream_sse_fetch", json={"message": "hi"}, headers=evil),
        "delete": httpx.delete(f"{app_url}/api/sessions/{kept['id']}", headers=evil),
        "patch": httpx.patch(f"{app_url}/api/sessions/{kept['id']}", json={"title": "x"}, headers=evil),
        "same host other port": httpx.post(app_url + "/api/sessions", json={"title": "planted"},
                                           headers={"Origin": "http://127.0.0.1:1"}),
        "fetch metadata": httpx.post(app_url + "/api/sessions", json={"title": "planted"},
                                     headers={"Sec-Fetch-Site": "cross-site"}),
    }
    for name, response in attempts.items():
        assert response.status_code == 403, (name, response.status_code, response.text)
        assert response.json()["error"]["code"] == "cross_origin_refused", name
    assert [(s["id"], s["title"]) for s in sessions(app_url)] == [(kept["id"], "keep me")]
    assert httpx.get(app_url + "/api/documents").json()["documents"] == []


def test_same_origin_and_originless_clients_keep_working(app_url):
    own = httpx.post(app_url + "/api/sessions", json={"title": "page"},
                     headers={"Origin": app_url, "Sec-Fetch-Site": "same-origin"})
    script = httpx.post(app_url + "/api/sessions", json={"title": "curl"})  # no Origin: curl, scripts, SDKs
    assert own.status_code == 201 and script.status_code == 201
    with httpx.stream("POST", app_url + "/chat_stream_sse_fetch", json={"message": "hi"},
                      headers={"Origin": app_url}) as r:
        assert r.status_code == 200 and read_frames(r)[-1] == "[DONE]"
    # reads from another site are not state-changing; the browser keeps the answer from that site (no CORS)
    read = httpx.get(app_url + "/api/sessions", headers={"Origin": "http://evil.example"})
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers


def test_security_headers_on_page_api_static_and_errors(app_url):
    for path in ("/", "/app.js", "/ui/api.js", "/api/sessions", "/api/nothing-here"):
        headers = httpx.get(app_url + path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    refused = httpx.get(app_url + "/", headers={"Host": "evil.example"})
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_named_hosts_and_origins_are_allowed_with_cors(isolated_data):
    settings = make_settings(isolated_data)
    settings.server.allowed_hosts = "aione.lan, [fd00::5]"
    settings.server.allowed_origins = "https://tools.example:3000/"
    with serve(create_app(settings, engines={"chat": FakeChatEngine()})) as url:
        assert httpx.get(url + "/api/sessions", headers={"Host": "aione.lan:8000"}).status_code == 200
        assert httpx.get(url + "/api/sessions", headers={"Host": "[fd00::5]:8000"}).status_code == 200
        assert httpx.get(url + "/api/sessions", headers={"Host": "other.lan"}).status_code == 421
        preflight = httpx.options(url + "/api/sessions", headers={
            "Origin": "https://tools.example:3000", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://tools.example:3000"
        allowed = httpx.post(url + "/api/sessions", json={"title": "t"}, headers={"Origin": "https://tools.example:3000"})
        assert allowed.status_code == 201
        assert httpx.post(url + "/api/sessions", json={"title": "t"},
                          headers={"Origin": "https://evil.example"}).status_code == 403


# ---- the token ------------------------------------------------------------------------------
def token_settings(data):
    settings = make_settings(data)
    settings.server.api_token = SecretStr(TOKEN)
    return settings


def test_token_mode_requires_the_token_and_slows_guessing(isolated_data):
    with serve(create_app(token_settings(isolated_data), engines={"chat": FakeChatEngine()})) as url:
        assert httpx.get(url + "/").status_code == 200  # the page itself, to sign in
        assert httpx.get(url + "/api/auth/status").json() == {"required": True, "signed_in": False}
        missing = httpx.get(url + "/api/sessions")
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "auth_required"
        assert missing.headers["www-authenticate"] == "Bearer"
        assert httpx.get(url + "/health").status_code == 401  # model paths are not for strangers
        assert httpx.post(url + "/api/sessions", json={}).status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(url + "/api/sessions", headers=good).status_code == 200
        assert httpx.post(url + "/api/sessions", json={}, headers=good).status_code == 201
        with httpx.stream("POST", url + "/chat_stream_sse_fetch", json={"message": "hi"}, headers=good) as r:
            assert r.status_code == 200 and read_frames(r)[-1] == "[DONE]"

        wrong = [httpx.get(url + "/api/sessions", headers={"Authorization": "Bearer nope"}).status_code
                 for _ in range(6)]
        assert wrong[:5] == [401] * 5 and wrong[5] == 429  # locked out after five wrong tokens
        locked = httpx.get(url + "/api/sessions", headers=good)  # even the right one waits out the lockout
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
        time.sleep(1.2)
        assert httpx.get(url + "/api/sessions", headers=good).status_code == 200
        assert len(httpx.get(url + "/api/sessions", headers=good).json()["sessions"]) == 2


def test_the_page_signs_in_with_an_httponly_strict_cookie(isolated_data):
    with serve(create_app(token_settings(isolated_data), engines={"chat": FakeChatEngine()})) as url:
        with httpx.Client(base_url=url) as client:
            bad = client.post("/api/auth/login", json={"token": "wrong-token-wrong"})
            assert bad.status_code == 401 and "set-cookie" not in bad.headers
            good = client.post("/api/auth/login", json={"token": TOKEN})
            cookie = good.headers["set-cookie"].lower()
            assert good.status_code == 200 and "httponly" in cookie and "samesite=strict" in cookie
            assert TOKEN.lower() not in cookie  # the cookie is derived, not the token itself
            assert client.get("/api/auth/status").json() == {"required": True, "signed_in": True}
            assert client.get("/api/sessions").status_code == 200
            # a signed-in browser is still protected from other sites by the Origin check
            assert client.post("/api/sessions", json={}, headers={"Origin": "http://evil.example"}).status_code == 403
            client.post("/api/auth/logout")
            assert client.get("/api/sessions").status_code == 401


def test_a_non_loopback_bind_without_a_token_refuses_to_start(isolated_data):
    settings = make_settings(isolated_data)
    settings.server.host = "0.0.0.0"
    with pytest.raises(StartupRefused, match="AIONE_SERVER__API_TOKEN"):
        create_app(settings, engines={"chat": FakeChatEngine()})
    settings.server.api_token = SecretStr(TOKEN)
    assert create_app(settings, engines={"chat": FakeChatEngine()}) is not None

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONE_")}
    env |= {"AIONE_SERVER__HOST": "0.0.0.0", "AIONE_PATHS__DATA": str(isolated_data)}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "uvicorn", "chat:app", "--host", "0.0.0.0",
                             "--port", str(free_port())], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and time.monotonic() - started < 120
    assert "AIONE_SERVER__API_TOKEN" in result.stderr
    assert not (isolated_data / "aione.sqlite3").exists()  # refused before anything was opened


@pytest.mark.anyio
async def test_a_server_reached_off_loopback_without_a_token_answers_nothing():
    """`uvicorn --host 0.0.0.0` past the settings: the middleware sees the real local address."""
    reached = []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    sent = []

    async def send(message):
        sent.append(message)

    middleware = SecurityMiddleware(app, AccessPolicy())
    scope = {"type": "http", "method": "GET", "path": "/api/sessions", "headers": [(b"host", b"localhost:8000")],
             "server": ("192.168.1.20", 8000), "client": ("192.168.1.30", 5000), "scheme": "http"}
    await middleware(scope, None, send)
    assert reached == [] and sent[0]["status"] == 403


def test_host_parsing_and_lockout_growth():
    assert split_host("[::1]:8000") == "::1" and split_host("LocalHost.:80") == "localhost"
    assert split_host("127.0.0.1") == "127.0.0.1"
    limiter = FailureLimiter(free_failures=2, max_lockout_s=4)
    limiter.failed("a")
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    first = limiter.retry_after("a")
    limiter.failed("a")
    limiter.failed("a")
    limiter.failed("a")
    assert 0 < first <= 1 < limiter.retry_after("a") <= 4 and limiter.retry_after("b") == 0
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0
