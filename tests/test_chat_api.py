"""The server end to end on loopback with the real SmolLM2: SSE frames, storage, bad input."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from chat import create_app
from tests.conftest import make_settings, read_frames, serve
from tests.fakes import FakeChatEngine

CHAT = "/chat_stream_sse_fetch"


def post_chat(url: str, message: str, session_id: str | None = None) -> list:
    with httpx.stream("POST", url + CHAT, json={"message": message, "session_id": session_id}, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return read_frames(r)


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def wait_until_idle(url: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = httpx.get(url + "/api/slot").json()
        if not state["busy"] and state["queue"] == 0:
            return state
        time.sleep(0.05)
    raise AssertionError(f"slot still busy: {state}")


def test_a_chat_streams_in_order_and_is_saved(live_server, isolated_data):
    frames = post_chat(live_server, "Hello! What is 2 + 2?")
    assert frames[0]["type"] == "session" and frames[-1] == "[DONE]"
    kinds = [f["type"] for f in frames[:-1]]
    assert kinds.count("done") == 1 and kinds[-1] == "done"
    first_token = kinds.index("token")
    assert kinds[1] == "turn" and frames[1]["role"] == "user"  # the question, saved, with its place in the tree
    assert set(kinds[2:first_token]) == {"status"} and set(kinds[first_token:-1]) == {"token"}
    states = [f["state"] for f in frames[2:first_token]]
    assert [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s] == ["loading", "ready", "generating"]
    progress = [f["progress"] for f in frames[2:first_token] if f["state"] == "loading"]
    assert progress[0] == 0.0 and len(progress) > 2 and progress == sorted(progress)  # llama.cpp's load callback
    done = frames[-2]
    assert done["finish_reason"] in ("done", "trimmed")
    assert done["usage"]["prompt_tokens"] > 0 and done["usage"]["completion_tokens"] > 0
    assert done["timings"]["ttft_ms"] > 0 and done["timings"]["tokens_per_s"] > 0
    text = "".join(f["text"] for f in frames if isinstance(f, dict) and f["type"] == "token")

    session_id = frames[0]["session_id"]
    turns = httpx.get(f"{live_server}/api/sessions/{session_id}/turns").json()["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [("user", "Hello! What is 2 + 2?"), ("assistant", text)]
    answer = turns[1]
    assert answer["id"] == done["turn_id"] and answer["finish_reason"] == done["finish_reason"]
    assert answer["ttft_ms"] == done["timings"]["ttft_ms"] and answer["tokens_per_s"] == done["timings"]["tokens_per_s"]
    assert answer["completion_tokens"] == done["usage"]["completion_tokens"] and answer["model"].endswith(".gguf")

    logged = [json.loads(line) for f in (isolated_data / "logs").glob("*.jsonl") for line in f.read_text("utf-8").splitlines()]
    logged_answer = [line for line in logged if line["event"] == "turn" and line["role"] == "assistant"]
    assert logged_answer[-1]["text"] == text and logged_answer[-1]["ttft_ms"] == answer["ttft_ms"]

    # The same session continues with its history; the model stays loaded.
    again = post_chat(live_server, "And 3 + 3?", session_id)
    assert again[0]["session_id"] == session_id
    assert [f["state"] for f in again if isinstance(f, dict) and f["type"] == "status"] == ["ready", "generating"]
    assert len(httpx.get(f"{live_server}/api/sessions/{session_id}/turns").json()["turns"]) == 4
    health = httpx.get(live_server + "/health").json()
    assert health["models"]["chat"]["present"] is True and health["slot"]["resident"] == "chat"


def test_disconnect_mid_stream_frees_the_slot_and_keeps_the_partial_answer(isolated_data):
    settings = make_settings(isolated_data, max_tokens=400)
    with serve(create_app(settings)) as url:
        received: list[str] = []
        session_id = None
        with httpx.stream("POST", url + CHAT, json={"message": "Tell me a very long story about a cat."}, timeout=60) as r:
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                frame = json.loads(line[5:])
                if frame["type"] == "session":
                    session_id = frame["session_id"]
                if frame["type"] == "token":
                    received.append(frame["text"])
                    if len(received) == 3:
                        break  # leaving the block closes the connection
        state = wait_until_idle(url)
        assert state["resident"] == "chat"
        turns = httpx.get(f"{url}/api/sessions/{session_id}/turns").json()["turns"]
        assert turns[-1]["role"] == "assistant" and turns[-1]["finish_reason"] == "stopped"
        assert turns[-1]["text"].startswith("".join(received)) and turns[-1]["completion_tokens"] < 400
        # The slot is usable at once.
        frames = post_chat(url, "Hi again", session_id)
        assert frames[-2]["type"] == "done"


BAD_REQUESTS = [
    ("empty", {"json": {"message": ""}}, 422, "empty_message"),
    ("whitespace", {"json": {"message": " \n\t "}}, 422, "empty_message"),
    ("too long", {"json": {"message": "가" * 8001}}, 422, "message_too_long"),
    ("not a string", {"json": {"message": 123}}, 422, "invalid_request"),
    ("missing field", {"json": {"text": "hi"}}, 422, "invalid_request"),
    ("a list", {"json": ["hi"]}, 422, "invalid_request"),
    ("malformed", {"content": b'{"message": "hi"', "headers": {"content-type": "application/json"}}, 400, "malformed_json"),
    ("not utf-8", {"content": b'{"message": "\xff"}', "headers": {"content-type": "application/json"}}, 400, "malformed_json"),
    ("wrong type", {"content": b"message=hi", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type"),
    ("too large", {"content": b'{"message": "' + b"a" * (3 * 1024 * 1024) + b'"}', "headers": {"content-type": "application/json"}}, 413, "body_too_large"),
    ("unknown session", {"json": {"message": "hi", "session_id": "0" * 32}}, 404, "session_not_found"),
]


def test_bad_chat_requests_get_clear_4xx_and_change_nothing(live_server):
    for name, kwargs, status, code in BAD_REQUESTS:
        r = httpx.post(live_server + CHAT, timeout=30, **kwargs)
        assert r.status_code == status, name
        error = r.json()["error"]
        assert error["code"] == code and error["message"], name
    assert httpx.get(live_server + "/api/sessions").json()["sessions"] == []  # nothing created
    assert httpx.get(live_server + "/health").status_code == 200  # still serving


def test_session_routes(live_server):
    created = httpx.post(live_server + "/api/sessions", json={}).json()
    other = httpx.post(live_server + "/api/sessions", json={"title": "메모"})
    assert other.status_code == 201 and other.json()["title"] == "메모"
    sid = created["id"]
    renamed = httpx.patch(f"{live_server}/api/sessions/{sid}", json={"title": "  제주\n여행  "})
    assert renamed.status_code == 200 and renamed.json()["title"] == "제주 여행"
    listed = httpx.get(live_server + "/api/sessions").json()["sessions"]
    assert next(s["id"] for s in listed) == sid  # most recently updated first
    for body, status in (({"title": "   "}, 422), ({"title": "x" * 201}, 422), ({"name": "x"}, 422), ({}, 422)):
        assert httpx.patch(f"{live_server}/api/sessions/{sid}", json=body).status_code == status
    assert httpx.patch(f"{live_server}/api/sessions/{'f' * 32}", json={"title": "x"}).status_code == 404
    assert httpx.delete(f"{live_server}/api/sessions/{sid}").json() == {"deleted": sid}
    gone = httpx.get(f"{live_server}/api/sessions/{sid}/turns")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "session_not_found"
    assert httpx.delete(f"{live_server}/api/sessions/{sid}").status_code == 404
    assert httpx.get(live_server + "/api/nothing").json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("content,expected", [(None, "not found"), (b"not a model", "not a GGUF")])
def test_missing_or_wrong_model_file_server_starts_and_says_how_to_fix(isolated_data, content, expected):
    model = isolated_data.parent / "models" / "chat.gguf"
    if content is not None:
        model.parent.mkdir(parents=True)
        model.write_bytes(content)
    settings = make_settings(isolated_data, model_path=model)
    with serve(create_app(settings)) as url:
        chat = httpx.get(url + "/health").json()["models"]["chat"]
        assert chat["present"] is False and chat["setting"] == "AIONE_CHAT__MODEL_PATH"
        assert expected in chat["message"] and "AIONE_CHAT__MODEL_PATH" in chat["message"]
        frames = post_chat(url, "hello?")
        assert frames[0]["type"] == "session" and frames[-1] == "[DONE]"
        assert frames[1]["type"] == "turn" and frames[2]["type"] == "error" and frames[2]["code"] == "model_missing"
        assert "AIONE_CHAT__MODEL_PATH" in frames[2]["message"]
        turns = httpx.get(f"{url}/api/sessions/{frames[0]['session_id']}/turns").json()["turns"]
        assert [(t["role"], t["finish_reason"]) for t in turns] == [("user", None), ("assistant", "error")]
        assert httpx.get(url + "/api/slot").json()["busy"] is False


def test_a_restart_restores_sessions_and_turns(isolated_data):
    settings = make_settings(isolated_data)
    with serve(create_app(settings)) as url:
        frames = post_chat(url, "Remember the word 사과.")
    session_id = frames[0]["session_id"]
    with serve(create_app(make_settings(isolated_data))) as url:
        sessions = httpx.get(url + "/api/sessions").json()["sessions"]
        assert [s["id"] for s in sessions] == [session_id] and sessions[0]["title"] == "Remember the word 사과."
        turns = httpx.get(f"{url}/api/sessions/{session_id}/turns").json()["turns"]
        assert [t["role"] for t in turns] == ["user", "assistant"] and turns[1]["finish_reason"] in ("done", "trimmed")


def test_a_second_request_waits_in_the_queue_and_is_told_its_position(isolated_data):
    fake = FakeChatEngine(token_seconds=0.05)
    fake.enqueue(["one "] * 10)
    fake.enqueue(["two"])
    with serve(create_app(make_settings(isolated_data), engines={"chat": fake})) as url:
        first_frames: list = []
        first = threading.Thread(target=lambda: first_frames.extend(post_chat(url, "first")))
        first.start()
        deadline = time.monotonic() + 5
        while not httpx.get(url + "/api/slot").json()["busy"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        second = post_chat(url, "second")
        first.join()
    statuses = [f for f in second if isinstance(f, dict) and f["type"] == "status"]
    assert statuses[0]["state"] == "queued" and statuses[0]["position"] == 1 and statuses[0]["eta_s"] > 0
    assert "".join(f["text"] for f in second if isinstance(f, dict) and f["type"] == "token") == "two"
    assert "".join(f["text"] for f in first_frames if isinstance(f, dict) and f["type"] == "token") == "one " * 10


def test_full_queue_cooldown_and_unknown_model_are_refused_before_streaming(isolated_data):
    fake = FakeChatEngine(token_seconds=0.05)
    fake.enqueue(["slow "] * 40)
    settings = make_settings(isolated_data)
    settings.slot.queue_limit = 1
    other = FakeChatEngine(name="coder")
    with serve(create_app(settings, engines={"chat": fake, "coder": other})) as url:
        threads = [threading.Thread(target=post_chat, args=(url, f"m{i}")) for i in range(2)]
        for started, t in enumerate(threads, start=1):
            t.start()  # the first streams, the second waits: the queue (limit 1) is then full
            wait_for(lambda started=started: len(httpx.get(url + "/api/slot").json()["holders"])
                     + httpx.get(url + "/api/slot").json()["queue"] == started)
        refused = httpx.post(url + CHAT, json={"message": "third"})
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "queue_full"
        assert int(refused.headers["retry-after"]) >= 1
        unknown = httpx.post(url + CHAT, json={"message": "hi", "model": "gpt-9"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_model"
        for t in threads:
            t.join()
        other.fail_loads = 1
        with httpx.stream("POST", url + CHAT, json={"message": "use the coder", "model": "coder"}, timeout=30) as r:
            frames = read_frames(r)
        assert any(isinstance(f, dict) and f["type"] == "error" and f["code"] == "model_load_failed" for f in frames)
        cooling = httpx.post(url + CHAT, json={"message": "again", "model": "coder"})
        assert cooling.status_code == 503 and cooling.json()["error"]["code"] == "model_cooling_down"
        assert int(cooling.headers["retry-after"]) >= 1
        state = httpx.get(url + "/api/slot").json()
        assert "coder" in state["cooldowns"] and state["busy"] is False
        assert post_chat(url, "chat still works")[-2]["type"] == "done"


def test_the_model_field_swaps_between_two_real_chat_models(isolated_data):
    from settings import ChatModel

    settings = make_settings(isolated_data)
    settings.extra_chat_models = {"small-ctx": ChatModel(temperature=0.0, seed=3, max_tokens=8, n_ctx=512, n_threads=2)}
    with serve(create_app(settings)) as url:
        first = post_chat(url, "Hi", None)
        session_id = first[0]["session_id"]
        other = post_chat_model(url, "Hello there", session_id, "small-ctx")
        back = post_chat(url, "And you?", session_id)
        state = httpx.get(url + "/api/slot").json()
    def states(frames):
        return [f["state"] for f in frames if isinstance(f, dict) and f["type"] == "status" and f["state"] != "loading"]
    assert states(other)[:1] == ["unloading"] and states(back)[:1] == ["unloading"]
    assert all(f[-2]["type"] == "done" for f in (first, other, back))
    assert state["resident"] == "chat" and state["swaps"] == 3 and state["evictions"] == 2
    # Warm swap-back: the conversation's KV cache came back from RAM instead of being recomputed.
    assert first[-2]["usage"]["cached_tokens"] == 0
    assert back[-2]["usage"]["cached_tokens"] >= first[-2]["usage"]["prompt_tokens"]
    assert set(state["models"]) == {"chat", "small-ctx"}


def post_chat_model(url: str, message: str, session_id: str | None, model: str) -> list:
    with httpx.stream("POST", url + CHAT, json={"message": message, "session_id": session_id, "model": model},
                      timeout=120) as r:
        assert r.status_code == 200
        return read_frames(r)


def test_a_queued_request_leaves_the_queue_when_its_client_disconnects(isolated_data):
    fake = FakeChatEngine(token_seconds=0.05)
    fake.enqueue(["busy "] * 30)
    with serve(create_app(make_settings(isolated_data), engines={"chat": fake})) as url:
        first = threading.Thread(target=post_chat, args=(url, "first"))
        first.start()
        wait_for(lambda: httpx.get(url + "/api/slot").json()["busy"])
        with httpx.stream("POST", url + CHAT, json={"message": "second"}, timeout=30) as r:
            for line in r.iter_lines():
                if '"queued"' in line:
                    break  # seen its place in the queue; now hang up
        wait_for(lambda: httpx.get(url + "/api/slot").json()["queue"] == 0, timeout=2)
        assert httpx.get(url + "/api/slot").json()["busy"] is True  # the first still streams
        first.join()
    assert len(fake.prompts) == 1  # the second never reached the model
