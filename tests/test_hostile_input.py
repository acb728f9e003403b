"""Every door holds: hostile JSON is refused with a 4xx before anything streams or is stored,
exports with pictures round-trip safely, and a hostile archive writes nothing. Against a
fresh server with the real routes, stores and sandbox (fake chat and image models)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.errors import AppError
from core.json_input import MAX_DEPTH, parse_json
from tests.conftest import fake_image_app, read_frames, serve
from tests.tiny_models import png_data_url

JSON_ROUTES = ["/chat_stream_sse_fetch", "/api/sessions", "/api/analyze", "/api/sandbox/run", "/api/rag/search",
               "/v1/chat/completions", "/v1/embeddings"]
HOSTILE = {
    "100,000 [": b"[" * 100_000,
    "50,000 nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "a 5,000-digit integer": b'{"message": "hi", "seed": ' + b"9" * 5000 + b"}",
    "a lone surrogate": b'{"message": "\\ud800", "text": "\\ud800", "code": "\\ud800", "query": "\\ud800", '
                        b'"title": "\\ud800", "input": "\\ud800", '
                        b'"messages": [{"role": "user", "content": "\\ud800"}]}',
    "a NUL": b'{"message": "a\\u0000b", "text": "a\\u0000b", "code": "a\\u0000b", "query": "a\\u0000b", '
             b'"title": "a\\u0000b", "input": "a\\u0000b", "messages": [{"role": "user", "content": "a\\u0000b"}]}',
    "NaN": b'{"message": "hi", "temperature": NaN}',
    "not UTF-8": b'{"message": "\xff\xfe"}',
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("hostile") / "data"
    folder = tmp_path_factory.mktemp("models")
    with serve(fake_image_app(data, folder, analysis=True)) as url:  # every JSON route on
        yield url, data


def stored(url: str) -> int:
    return len(httpx.get(url + "/api/sessions").json()["sessions"])


def post(url: str, route: str, body: bytes) -> httpx.Response:
    return httpx.post(url + route, content=body, headers={"content-type": "application/json"}, timeout=60)


@pytest.mark.parametrize("name", list(HOSTILE))
@pytest.mark.parametrize("route", JSON_ROUTES)
def test_hostile_bodies_get_a_4xx_before_anything_happens(server, route: str, name: str):
    url, _ = server
    before = stored(url)
    response = post(url, route, HOSTILE[name])
    assert 400 <= response.status_code < 500, (route, name, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/json")  # refused before any stream
    error = response.json()["error"]
    assert error["code"] != "internal_error" and error["message"]
    if route.startswith("/v1/"):
        assert error["type"] == "invalid_request_error"  # OpenAI's shape
    assert stored(url) == before  # nothing was created by a refused request


def test_the_door_names_the_rule_and_the_field():
    cases = {b"[" * (MAX_DEPTH + 1): (400, "json_too_deep"), b"[" * MAX_DEPTH + b"]" * MAX_DEPTH: None,
             b'{"n": ' + b"1" * 33 + b"}": (400, "number_too_large"), b'{"n": -' + b"1" * 32 + b"}": None,
             b'{"a": {"b": ["ok", "\\udc00"]}}': (422, "invalid_text"), b'{"\\u0000": 1}': (422, "invalid_text"),
             b'"\\ud83d\\ude00"': None}  # a surrogate pair is an emoji, not a lone surrogate
    for raw, expected in cases.items():
        if expected is None:
            parse_json(raw)
            continue
        with pytest.raises(AppError) as refused:
            parse_json(raw)
        assert (refused.value.status, refused.value.code) == expected, raw[:40]
    with pytest.raises(AppError) as refused:
        parse_json(b'{"a": {"b": ["ok", "\\udc00"]}}')
    assert "a.b[1]" in refused.value.message


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8", categories=None), max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30)
FIELDS = st.fixed_dictionaries({}, optional={
    "message": JSON_VALUES, "session_id": JSON_VALUES, "text": JSON_VALUES, "code": JSON_VALUES,
    "query": JSON_VALUES, "title": JSON_VALUES, "messages": JSON_VALUES, "input": JSON_VALUES, "model": JSON_VALUES,
    "images": JSON_VALUES, "stream": JSON_VALUES})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow])
@given(route=st.sampled_from(["/api/sessions", "/api/analyze", "/api/rag/search", "/v1/embeddings",
                              "/api/sandbox/run", "/v1/chat/completions", "/chat_stream_sse_fetch"]),
       body=st.one_of(JSON_VALUES, FIELDS), depth=st.integers(0, 120))
def test_random_json_never_gets_a_5xx_and_a_refusal_stores_nothing(server, route, body, depth):
    url, _ = server
    before = stored(url)
    raw = ("[" * depth + json.dumps(body) + "]" * depth).encode("utf-8", "surrogatepass")
    with httpx.stream("POST", url + route, content=raw, headers={"content-type": "application/json"},
                      timeout=60) as response:
        if response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream"):
            frames = read_frames(response)  # accepted: it must not end in a server fault
            assert not [f for f in frames if isinstance(f, dict) and f.get("code") == "internal_error"], frames
            return
        response.read()
    assert response.status_code < 500, (route, raw[:200], response.text[:300])
    if response.status_code >= 400:
        assert stored(url) == before


# ---- archives ---------------------------------------------------------------------------------
def generate(url: str, body: dict) -> list:
    with httpx.stream("POST", f"{url}/api/images/generate", json=body, timeout=120) as response:
        assert response.status_code == 200, response.read()
        return read_frames(response)


def pixels(png: bytes) -> tuple:
    with Image.open(io.BytesIO(png)) as image:
        return image.mode, image.size, image.tobytes()


def test_export_with_pictures_imports_into_a_fresh_folder_with_the_same_pictures(isolated_data: Path, tmp_path: Path):
    with serve(fake_image_app(isolated_data, tmp_path)) as url:
        frames = generate(url, {"prompt": "a red square", "width": 64, "height": 64, "steps": 1, "seed": 3,
                                "batch_count": 2, "init_image": png_data_url(48, 40, (10, 120, 200))})
        session_id = frames[0]["session_id"]
        code = "from PIL import Image\nImage.new('RGB', (20, 10), (9, 8, 7)).save('figure.png')\nprint('made')"
        run = httpx.post(url + "/api/sandbox/run", json={"code": code, "session_id": session_id, "stream": False},
                         timeout=120).json()
        assert run["exit_code"] == 0 and len(run["images"]) == 1, run
        exported = httpx.get(url + "/api/export", params={"format": "json", "include_images": "true"}).content
        before = httpx.get(f"{url}/api/sessions/{session_id}/turns").json()["turns"]
        gallery = httpx.get(f"{url}/api/sessions/{session_id}/images").json()["images"]
        runs_before = httpx.get(url + "/api/sandbox/runs", params={"session_id": session_id}).json()["runs"]
        images = [i for t in before for i in t["images"]] + [i for r in runs_before for i in r["images"]]
        originals = {i: pixels(httpx.get(f"{url}/api/images/{i}").content) for i in images}
    assert len(originals) == 4  # the uploaded init picture, the two made and the code run's figure
    fresh = tmp_path / "fresh"
    with serve(fake_image_app(fresh, tmp_path)) as url:
        result = httpx.post(url + "/api/import", files={"file": ("export.zip", exported, "application/zip")})
        assert result.status_code == 200, result.text
        assert result.json()["imported"] == [session_id] and result.json()["pictures"] == 4
        after = httpx.get(f"{url}/api/sessions/{session_id}/turns").json()["turns"]
        assert [(t["role"], t["kind"], t["text"], t["images"]) for t in after] == \
               [(t["role"], t["kind"], t["text"], t["images"]) for t in before]
        for image_id, original in originals.items():
            assert pixels(httpx.get(f"{url}/api/images/{image_id}").content) == original  # the same pixels
        runs_after = httpx.get(url + "/api/sandbox/runs", params={"session_id": session_id}).json()["runs"]
        assert [(r["id"], r["code"], r["stdout"], r["images"]) for r in runs_after] == \
               [(r["id"], r["code"], r["stdout"], r["images"]) for r in runs_before]
        restored = httpx.get(f"{url}/api/sessions/{session_id}/images").json()["images"]
        assert [(g["id"], g["seed"], g["prompt"]) for g in restored] == [(g["id"], g["seed"], g["prompt"]) for g in gallery]
        again = httpx.post(url + "/api/import", files={"file": ("export.zip", exported, "application/zip")})
        assert again.json() == {"imported": [], "skipped": [session_id], "pictures": 0, "memories_imported": 0}  # idempotent


def zip_of(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def symlink_zip(record: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("export.json", record)
        link = zipfile.ZipInfo("images/" + "a" * 32 + ".png")
        link.external_attr = (0o120777 << 16)  # a symbolic link to /etc/passwd
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


def test_hostile_archives_are_refused_and_write_nothing(isolated_data: Path, tmp_path: Path):
    picture_id = "b" * 32
    session = {"id": "c" * 32, "title": "t", "created": "2026-12-01T00:00:00Z", "updated": "2026-12-01T00:00:00Z",
               "active_leaf": 1, "turns": [{"id": 1, "parent_id": None, "role": "user", "kind": "chat", "text": "hi",
                                            "created": "2026-12-01T00:00:00Z", "images": [picture_id]}]}
    record = json.dumps({"format": "pkc-aione-export", "version": 1, "sessions": [session]}).encode()
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(png, "PNG")
    cases = {
        "a ../ entry": (zip_of({"export.json": record, "images/../../escape.png": png.getvalue()}), 422),
        "an absolute path": (zip_of({"export.json": record, "/tmp/abs.png": png.getvalue()}), 422),
        "a link": (symlink_zip(record), 422),
        "a zip bomb": (zip_of({"export.json": record, f"images/{picture_id}.png": b"\0" * (300 * 1024 * 1024)}), 413),
        "a non-picture under images/": (zip_of({"export.json": record, f"images/{picture_id}.png": b"#!/bin/sh"}),
                                        415),
        "another file": (zip_of({"export.json": record, "run.sh": b"rm -rf /"}), 422),
        "a 20 MB turn": (record.replace(b'"hi"', b'"' + b"x" * 20_000_000 + b'"'), 422),  # the JSON export itself
        "a hostile export.json": (zip_of({"export.json": b"[" * 100_000}), 400),
        "not a zip after PK": (b"PK\x03\x04garbage", 400),
    }
    with serve(fake_image_app(isolated_data, tmp_path)) as url:
        bomb = cases["a zip bomb"][0]
        assert len(bomb) < 1024 * 1024  # small, and it would inflate past the cap
        for name, (raw, status) in cases.items():
            response = httpx.post(url + "/api/import", files={"file": ("x.zip", raw, "application/zip")}, timeout=120)
            assert response.status_code == status, (name, response.text[:300])
            assert httpx.get(url + "/api/sessions").json()["sessions"] == [], name
        written = [p for p in isolated_data.rglob("*.png")]
        assert written == [] and not (tmp_path / "escape.png").exists() and not Path("/tmp/abs.png").exists()
        good = httpx.post(url + "/api/import", files={"file": ("x.zip", zip_of({"export.json": record,
                                                                                 f"images/{picture_id}.png": png.getvalue()}),
                                                                "application/zip")})
        assert good.status_code == 200 and good.json()["pictures"] == 1  # the same archive, safe, goes in
        assert pixels(httpx.get(f"{url}/api/images/{picture_id}").content) == pixels(png.getvalue())


def test_an_archive_with_one_session_twice_is_refused_and_stores_nothing(server):
    url, _ = server
    session = {"id": "d" * 32, "title": "", "created": "2026-12-01T00:00:00Z", "updated": "2026-12-01T00:00:00Z",
               "active_leaf": None, "turns": []}
    archive = {"format": "pkc-aione-export", "version": 1, "sessions": [session, session]}
    before = stored(url)
    response = httpx.post(url + "/api/import", files={"file": ("x.json", json.dumps(archive).encode())})
    assert response.status_code == 422 and "twice" in response.json()["error"]["message"]
    assert stored(url) == before


TURNS = st.lists(st.fixed_dictionaries({
    "id": st.integers(-3, 6), "parent_id": st.none() | st.integers(-3, 6), "role": st.sampled_from(["user", "assistant", "x"]),
    "text": st.text(max_size=30), "created": st.sampled_from(["2026-12-01T00:00:00Z", "", "x" * 50]),
}, optional={"kind": st.sampled_from(["chat", "image", "other"]), "images": st.lists(st.text(max_size=34), max_size=2),
             "labels": JSON_VALUES, "feedback": JSON_VALUES, "sources": JSON_VALUES}), max_size=4)
ARCHIVES = st.fixed_dictionaries({
    "format": st.sampled_from(["pkc-aione-export", "other"]), "version": st.sampled_from([1, 2, "1"]),
    "sessions": st.lists(st.fixed_dictionaries({
        "id": st.sampled_from(["d" * 32, "e" * 32, "not-an-id"]), "title": st.text(max_size=20),
        "created": st.just("2026-12-01T00:00:00Z"), "updated": st.just("2026-12-01T00:00:00Z"),
        "active_leaf": st.none() | st.integers(-1, 6), "turns": TURNS}, optional={"generations": JSON_VALUES}),
        max_size=2)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow])
@given(archive=st.one_of(ARCHIVES, JSON_VALUES), as_zip=st.booleans())
def test_random_archives_never_get_a_5xx_and_a_refusal_stores_nothing(server, archive, as_zip):
    url, _data = server
    before = stored(url)
    raw = json.dumps(archive).encode("utf-8", "surrogatepass")
    payload = zip_of({"export.json": raw}) if as_zip else raw
    response = httpx.post(url + "/api/import", files={"file": ("x", payload)}, timeout=60)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert stored(url) == before
    else:  # what was accepted reads back
        for session_id in response.json()["imported"]:
            assert httpx.get(f"{url}/api/sessions/{session_id}/turns").status_code == 200
