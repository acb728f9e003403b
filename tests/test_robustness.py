"""Turns that survive bursts, full disks and crashes, over real HTTP."""
from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from chat import create_app
from tests.conftest import ROOT, free_port, make_settings, read_frames, serve
from tests.fakes import FakeChatEngine

CHAT = "/chat_stream_sse_fetch"


def test_a_burst_past_the_queue_limit_is_refused_before_streaming(isolated_data):
    """32 requests at once, queue_limit 10: one streams, ten wait, the rest get 429 with
    Retry-After and the JSON error, and leave no session, turn or image behind."""
    engine = FakeChatEngine(token_seconds=0.12)  # the first answer lasts while all 32 arrive, even on a busy machine
    for _ in range(32):
        engine.enqueue([f"t{i} " for i in range(8)])
    settings = make_settings(isolated_data)
    assert settings.slot.queue_limit == 10
    results: list[tuple[int, str | None, dict | list]] = []
    barrier = threading.Barrier(32)

    def one(url: str) -> None:
        barrier.wait()
        with httpx.stream("POST", url + CHAT, json={"message": "hello"}, timeout=120) as r:
            if r.status_code == 200:
                results.append((200, None, read_frames(r)))
            else:
                r.read()
                results.append((r.status_code, r.headers.get("retry-after"), r.json()))

    with serve(create_app(settings, engines={"chat": engine})) as url:
        threads = [threading.Thread(target=one, args=(url,)) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        sessions = httpx.get(url + "/api/sessions").json()["sessions"]
    streamed = [frames for status, _, frames in results if status == 200]
    refused = [(retry, body) for status, retry, body in results if status == 429]
    assert len(streamed) == 11 and len(refused) == 21, sorted(status for status, _, _ in results)
    assert all(frames[-2]["type"] == "done" and frames[-1] == "[DONE]" for frames in streamed)
    assert all(int(retry) >= 1 and body["error"]["code"] == "queue_full" for retry, body in refused)
    assert len(sessions) == 11 and all(s["turn_count"] == 2 for s in sessions)  # no junk sessions


@pytest.fixture
def limited_server(isolated_data):
    """The real app, plus a test-only route that caps the database at its current size: SQLite's
    own "database or disk is full", as a full disk gives it."""
    settings = make_settings(isolated_data)
    engine = FakeChatEngine()
    app = create_app(settings, engines={"chat": engine})

    @app.post("/test/disk")
    async def disk(full: bool) -> dict:
        db = app.state.stores.db.connection
        async with db.execute("PRAGMA page_count") as cur:
            pages = (await cur.fetchone())[0]
        await db.execute(f"PRAGMA max_page_count = {pages if full else 1_000_000}")
        return {"pages": pages}

    @app.get("/test/file-write")
    async def file_write() -> dict:  # what a picture or document save meets on a full disk
        raise OSError(errno.ENOSPC, "No space left on device")

    with serve(app) as url:
        yield url, engine


def test_a_full_disk_ends_every_request_clearly_and_loses_nothing(limited_server):
    url, engine = limited_server
    engine.enqueue(["first ", "answer"])
    with httpx.stream("POST", url + CHAT, json={"message": "before"}, timeout=60) as r:
        session_id = read_frames(r)[0]["session_id"]
    before = httpx.get(f"{url}/api/sessions/{session_id}/turns").json()["turns"]
    filler = "가" * 7900  # 23 KB of UTF-8: more pages than the capped file has free
    assert httpx.post(url + "/test/disk", params={"full": True}).status_code == 200

    engine.enqueue(["never ", "saved"])
    with httpx.stream("POST", url + CHAT, json={"message": filler, "session_id": session_id}, timeout=60) as r:
        assert r.status_code == 200
        frames = read_frames(r)
    assert frames[0]["type"] == "session" and frames[-1] == "[DONE]"
    error = frames[-2]
    assert error["type"] == "error" and error["code"] == "storage_full", frames
    assert "Free some disk space" in error["message"] and "AIONE_PATHS__DATA" in error["message"]
    assert len(engine.prompts) == 1  # the request could not be saved, so it never reached the model
    engine.replies.clear()

    # Other writes: those that still fit in the file's free pages succeed, the first that needs
    # a new page gets 507 with the JSON error, never a 500.
    statuses = []
    for _ in range(400):
        created = httpx.post(url + "/api/sessions", json={"title": filler[:190]})
        statuses.append(created.status_code)
        if created.status_code != 201:
            break
    assert statuses[-1] == 507 and set(statuses) <= {201, 507}, statuses
    assert created.json()["error"]["code"] == "storage_full"
    assert httpx.get(f"{url}/api/sessions/{session_id}/turns").json()["turns"] == before  # nothing lost
    files = httpx.get(url + "/test/file-write")  # a file write, outside the database
    assert files.status_code == 507 and files.json()["error"]["code"] == "storage_full"

    assert httpx.post(url + "/test/disk", params={"full": False}).status_code == 200  # space freed
    engine.enqueue(["after ", "space"])
    with httpx.stream("POST", url + CHAT, json={"message": "after", "session_id": session_id}, timeout=60) as r:
        frames = read_frames(r)
    assert frames[-2]["type"] == "done", frames  # no restart needed
    turns = httpx.get(f"{url}/api/sessions/{session_id}/turns").json()["turns"]
    assert [t["text"] for t in turns] == ["before", "first answer", "after", "after space"]
    assert httpx.post(url + "/api/sessions", json={"title": "room again"}).status_code == 201


def test_kill_9_mid_answer_keeps_the_partial_answer_marked_interrupted(isolated_data):
    """The real server and model in a process of its own, killed while it streams."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONE_")}
    env |= {"AIONE_PATHS__DATA": str(isolated_data), "AIONE_CHAT__MAX_TOKENS": "2000",
            "AIONE_CHAT__N_THREADS": "1", "AIONE_SERVER__PRELOAD_CHAT": "false",
            "AIONE_SERVER__ANSWER_CHECKPOINT_S": "0.2"}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "chat:app", "--host", "127.0.0.1", "--port",
                               str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.2)
        received, session_id, first_token_at = [], None, None
        with httpx.stream("POST", url + CHAT, timeout=60,
                          json={"message": "Count from 1 to 1000, one number per line."}) as r:
            for line in r.iter_lines():
                if '"type": "session"' in line:
                    session_id = line.split('"session_id": "')[1].split('"')[0]
                if '"type": "token"' in line:
                    received.append(line)
                    first_token_at = first_token_at or time.monotonic()
                    if len(received) >= 12 and time.monotonic() - first_token_at > 0.5:  # past two checkpoints
                        server.send_signal(signal.SIGKILL)
                        break
                if '"type": "done"' in line:
                    pytest.fail("the answer ended before the kill; ask for a longer one")
        server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
    assert session_id and len(received) >= 12

    from store import open_stores

    async def reopened() -> list[dict]:  # the next start
        store = (await open_stores(isolated_data / "aione.sqlite3", isolated_data / "logs")).sessions
        try:
            return await store.list_turns(session_id)
        finally:
            await store.close()

    turns = asyncio.run(reopened())
    assert [t["role"] for t in turns] == ["user", "assistant"]
    answer = turns[-1]
    streamed = "".join(json.loads(line[5:])["text"] for line in received)
    assert answer["finish_reason"] == "interrupted" and len(answer["text"]) > 5
    assert streamed.startswith(answer["text"])  # what was checkpointed is what the page saw


def test_a_file_write_on_a_full_disk_is_handled_not_raised(isolated_data):
    """Outside the store (pictures, documents), ENOSPC is answered as a 507 by the app's own handler:
    nothing escapes to the server as "Exception in ASGI application"."""
    from starlette.testclient import TestClient

    app = create_app(make_settings(isolated_data), engines={"chat": FakeChatEngine()})

    @app.get("/test/file-write")
    async def file_write() -> dict:
        raise OSError(errno.ENOSPC, "No space left on device")

    with TestClient(app, base_url="http://127.0.0.1") as client:  # raises what escapes the app
        response = client.get("/test/file-write")
    assert response.status_code == 507 and response.json()["error"]["code"] == "storage_full"
