"""Only this PC's own page may use the server.

A server on 127.0.0.1 is reachable by every web page the user opens: through DNS rebinding
(a foreign name that resolves to 127.0.0.1, so the browser sends that name as `Host`) and
through "simple" cross-site requests (form posts, text/plain, multipart) that need no CORS
preflight. `SecurityMiddleware` closes both, on every route, static files included:

- `Host` must be a loopback name or one the user configured (else 421);
- a state-changing request (POST, PUT, PATCH, DELETE) with a foreign or `null` `Origin`, or
  `Sec-Fetch-Site: cross-site`, is refused (403); requests without an Origin (curl, scripts,
  the OpenAI client) are not browsers' cross-site requests and pass;
- with a token set (required off loopback), every API request needs `Authorization: Bearer`
  or the page's sign-in cookie; repeated wrong tokens lock the client out for a while;
- every response carries a strict Content-Security-Policy and related headers.

Pure ASGI (not BaseHTTPMiddleware) so streamed answers pass through untouched.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from core.errors import AppError
from core.events import Error
from settings import env_name
from web.json_body import read_json
from web.openai_format import error_body, is_openai_path

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
COOKIE_NAME = "aione_auth"
# The page and its static files hold no user data; the sign-in routes must work signed out.
PUBLIC_PATHS = frozenset({"/", "/app.js", "/assets.css", "/api/auth/status", "/api/auth/login", "/api/auth/logout"})
PUBLIC_PREFIXES = ("/ui/",)

_CSP_PARTS = (
    "default-src 'self'",
    "script-src 'self'",          # only the page's own module files: no inline script, no eval
    "style-src 'self'",
    "img-src 'self' data: blob:",  # previews of attached images are blob: URLs, pictures data: URLs
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
CONTENT_SECURITY_POLICY = "; ".join(_CSP_PARTS)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for older browsers
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IP addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(host_header: str) -> str:
    """The host name of a `Host` header, without the port: `[::1]:8000` -> `::1`."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def cookie_value(token: str) -> str:
    """What the sign-in cookie holds: derived from the token, so the cookie is not the token."""
    return hashlib.sha256(b"aione-cookie:" + token.encode()).hexdigest()


def tokens_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class FailureLimiter:
    """Slows down token guessing: after `free_failures` wrong tokens in a row, a client is
    locked out for 1 s, doubling with each further failure up to `max_lockout_s`."""

    free_failures: int = 5
    max_lockout_s: float = 300.0
    _failures: dict[str, int] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def retry_after(self, client: str) -> float:
        """Seconds this client must still wait (0 = may try)."""
        return max(0.0, self._locked_until.get(client, 0.0) - time.monotonic())

    def failed(self, client: str) -> None:
        count = self._failures.get(client, 0) + 1
        self._failures[client] = count
        if count >= self.free_failures:
            lockout = min(self.max_lockout_s, 2.0 ** (count - self.free_failures))
            self._locked_until[client] = time.monotonic() + lockout
        if len(self._failures) > 10_000:  # bounded memory against address floods
            self._failures.clear()
            self._locked_until.clear()

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
        self._locked_until.pop(client, None)


@dataclass(frozen=True)
class AccessPolicy:
    """What the middleware allows; built from settings.server by `chat.create_app`."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_origins: frozenset[str] = frozenset()
    token: str | None = None

    def host_allowed(self, host: str, *, bound_off_loopback: bool) -> bool:
        if host in self.allowed_hosts or is_loopback(host):
            return True
        # An IP literal cannot be rebound (the browser connects to exactly that address), so
        # with a token in force the LAN address the user typed is fine.
        return bound_off_loopback and self.token is not None and _is_ip(host)

    def credential(self, headers: dict[str, str]) -> bool | None:
        """True: the right token (Bearer or the sign-in cookie); False: a wrong one; None: none sent."""
        token = self.token or ""
        given = bearer_token(headers.get("authorization", ""))
        if given is not None:
            return tokens_equal(given, token)
        cookie = _cookies(headers.get("cookie", "")).get(COOKIE_NAME)
        return None if cookie is None else tokens_equal(cookie, cookie_value(token))

    def origin_allowed(self, origin: str, host_header: str, scheme: str) -> bool:
        origin = origin.rstrip("/").lower()
        return origin == f"{scheme}://{host_header.lower()}" or origin in self.allowed_origins


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, policy: AccessPolicy, limiter: FailureLimiter | None = None) -> None:
        self.app = app
        self.policy = policy
        self.limiter = limiter or FailureLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan; the app has no websocket routes
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is not None:
            status, code, message, extra = refusal
            openai = is_openai_path(str(scope.get("path", "")))  # OpenAI clients also read type and param
            await _send_error(send, status, code, message, extra, openai)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in SECURITY_HEADERS if name not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def check(self, scope: Scope) -> tuple[int, str, str, list[tuple[bytes, bytes]]] | None:
        """None when the request may go on, else (status, code, message, extra headers)."""
        headers = _headers(scope)
        host_header = headers.get("host", "")
        host = split_host(host_header)
        server = scope.get("server") or ("127.0.0.1", 0)
        off_loopback = not is_loopback(str(server[0]))
        if not host or not self.policy.host_allowed(host, bound_off_loopback=off_loopback):
            return (421, "host_not_allowed", f"this server answers only to localhost; the host name "
                    f"{host_header[:80]!r} is not allowed ({env_name('server', 'allowed_hosts')} adds names)", [])
        if off_loopback and self.policy.token is None:  # e.g. `uvicorn --host 0.0.0.0` without a token
            return (403, "token_required", "this server is reachable off this PC but has no token: set "
                    f"{env_name('server', 'api_token')} and restart", [])
        if scope.get("method", "GET") in UNSAFE_METHODS:
            refusal = self._check_origin(headers, host_header, scope.get("scheme", "http"))
            if refusal is not None:
                return refusal
        if self.policy.token is not None and not _is_public(scope.get("path", "")):
            return self._check_token(headers, _client(scope))
        return None

    def _check_origin(self, headers: dict[str, str], host_header: str, scheme: str):
        origin = headers.get("origin")
        if origin is not None:
            if origin.strip().lower() == "null" or not self.policy.origin_allowed(origin, host_header, scheme):
                return (403, "cross_origin_refused",
                        f"requests from another site are refused (Origin {origin[:80]!r}); "
                        f"{env_name('server', 'allowed_origins')} allows named origins", [])
            return None
        if headers.get("sec-fetch-site") == "cross-site":
            return (403, "cross_origin_refused", "requests from another site are refused", [])
        return None

    def _check_token(self, headers: dict[str, str], client: str):
        wait = self.limiter.retry_after(client)
        if wait > 0:
            return (429, "too_many_failures", f"too many wrong tokens: try again in {wait:.0f} s",
                    [(b"retry-after", str(max(1, round(wait))).encode())])
        valid = self.policy.credential(headers)
        if valid:
            self.limiter.succeeded(client)
            return None
        if valid is False:  # a wrong credential; a missing one is not a guess
            self.limiter.failed(client)
        return (401, "auth_required", "this server needs its token: send 'Authorization: Bearer <token>' "
                "or sign in on the page", [(b"www-authenticate", b"Bearer")])


def bearer_token(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def _cookies(header: str) -> dict[str, str]:
    cookies = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            cookies[name] = value
    return cookies


async def _send_error(send: Send, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]],
                      openai: bool = False) -> None:
    payload = error_body(Error(code, message, status))[1] if openai else {"error": {"code": code, "message": message}}
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})


# ---- the page's sign-in ---------------------------------------------------------------------
class StartupRefused(RuntimeError):
    """The settings would expose the server without protection; it must not start."""


def policy_from_settings(server: Any) -> AccessPolicy:
    """The access policy for `settings.server`; refuses a non-loopback bind without a token."""
    token = server.api_token.get_secret_value().strip() if server.api_token is not None else None
    if not is_loopback(server.host) and token is None:
        raise StartupRefused(
            f"{env_name('server', 'host')}={server.host} makes the server reachable from other machines, so it needs a "
            f"token: set {env_name('server', 'api_token')} (at least 16 characters; python -c \"import secrets; "
            "print(secrets.token_urlsafe(32))\" makes one) and give it to the people you share it with")
    return AccessPolicy(allowed_hosts=server.host_names, allowed_origins=server.origin_names, token=token)


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=1000)


def auth_router(policy: AccessPolicy, limiter: FailureLimiter) -> APIRouter:
    """GET /api/auth/status, POST /api/auth/login {"token"}, POST /api/auth/logout."""
    router = APIRouter(prefix="/api/auth")

    @router.get("/status")
    async def status(request: Request) -> dict:
        headers = {name.lower(): value for name, value in request.headers.items()}
        return {"required": policy.token is not None,
                "signed_in": policy.token is None or bool(policy.credential(headers))}

    @router.post("/login")
    async def login(request: Request) -> JSONResponse:
        body = await read_json(request, Login)
        if policy.token is None:
            return JSONResponse({"signed_in": True, "required": False})
        client = request.client.host if request.client else "?"
        wait = limiter.retry_after(client)
        if wait > 0:
            raise AppError(f"too many wrong tokens: try again in {wait:.0f} s", code="too_many_failures",
                           status=429, retry_after=wait)
        if not tokens_equal(body.token.strip(), policy.token):
            limiter.failed(client)
            raise AppError("wrong token", code="wrong_token", status=401)
        limiter.succeeded(client)
        response = JSONResponse({"signed_in": True, "required": True})
        response.set_cookie(COOKIE_NAME, cookie_value(policy.token), httponly=True, samesite="strict",
                            max_age=30 * 24 * 3600, path="/")
        return response

    @router.post("/logout")
    async def logout() -> JSONResponse:
        response = JSONResponse({"signed_in": False, "required": policy.token is not None})
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
        return response

    return router
