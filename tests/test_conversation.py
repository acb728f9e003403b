"""One chat turn as frames, without HTTP: history trimming, failures mid-answer."""
from __future__ import annotations

import threading

import pytest

from conversation import ChatServices, chat_turn
from image_store import ImageStore
from llm_engine import LlmEngine, Token
from tests.conftest import make_settings
from tests.fakes import FakeChatEngine
from vram_guard import ModelSlot

pytestmark = pytest.mark.anyio


def services_for(settings, store, slot) -> ChatServices:
    return ChatServices(settings, store, slot, ImageStore(settings.paths.uploads, settings.vision))


async def run_turn(services: ChatServices, session_id: str, message: str) -> list[dict]:
    return [frame async for frame in chat_turn(services, session_id, message)]


async def test_a_long_conversation_drops_oldest_turns_and_says_so(store, isolated_data):
    settings = make_settings(isolated_data, n_ctx=256, max_tokens=16)
    slot = ModelSlot({"chat": LlmEngine(settings.chat)})
    services = services_for(settings, store, slot)
    session = await store.create_session()
    for i in range(10):
        await store.add_turn(session["id"], "user", f"Old question {i} " + "about the weather " * 4)
        await store.add_turn(session["id"], "assistant", f"Old answer {i} " + "it is sunny " * 4)
    try:
        frames = await run_turn(services, session["id"], "What did I just ask?")
    finally:
        await slot.close()
    trimmed = [f for f in frames if f["type"] == "status" and f["state"] == "history_trimmed"]
    assert len(trimmed) == 1 and trimmed[0]["dropped"] >= 2
    done = frames[-1]
    assert done["type"] == "done" and done["dropped_turns"] == trimmed[0]["dropped"]
    assert done["usage"]["prompt_tokens"] <= 256 - 16
    saved = (await store.list_turns(session["id"]))[-1]
    assert saved["dropped_turns"] == trimmed[0]["dropped"] and saved["role"] == "assistant"


class BreaksMidAnswer(FakeChatEngine):
    def stream(self, prompt, stop: threading.Event):
        yield Token("partial ")
        yield Token("answer")
        raise RuntimeError("GPU fell off the bus")


async def test_an_engine_failure_mid_answer_is_an_error_frame_and_the_partial_is_saved(store, isolated_data):
    engine = BreaksMidAnswer()
    slot = ModelSlot({"chat": engine})
    services = services_for(make_settings(isolated_data), store, slot)
    session = await store.create_session()
    frames = await run_turn(services, session["id"], "hi")
    assert [f["type"] for f in frames][-3:] == ["token", "token", "error"]
    assert frames[-1]["code"] == "internal_error" and "GPU fell off the bus" in frames[-1]["message"]
    saved = (await store.list_turns(session["id"]))[-1]
    assert (saved["text"], saved["finish_reason"], saved["completion_tokens"]) == ("partial answer", "error", 2)
    assert slot.state()["busy"] is False
    # The next turn works, with the failed answer in its history.
    ok = FakeChatEngine()
    services.slot = ModelSlot({"chat": ok})
    frames = await run_turn(services, session["id"], "again")
    assert frames[-1]["type"] == "done"
    assert ok.prompts[0][-2] == {"role": "assistant", "content": "partial answer"}


async def test_closing_the_stream_early_saves_a_stopped_turn_and_frees_the_slot(store, isolated_data):
    engine = FakeChatEngine(token_seconds=0.01)
    engine.enqueue([f"w{i} " for i in range(100)])
    slot = ModelSlot({"chat": engine})
    services = services_for(make_settings(isolated_data), store, slot)
    session = await store.create_session()
    frames = chat_turn(services, session["id"], "long please")
    seen = 0
    async for frame in frames:
        seen += frame["type"] == "token"
        if seen == 3:
            break
    await frames.aclose()  # what the server does when the client goes away
    assert slot.state()["busy"] is False
    saved = (await store.list_turns(session["id"]))[-1]
    assert saved["finish_reason"] == "stopped" and saved["text"].startswith("w0 w1 w2") and len(saved["text"].split()) < 100


async def test_a_plain_task_cancel_mid_answer_still_saves_the_partial_turn(store, isolated_data):
    import asyncio

    engine = FakeChatEngine(token_seconds=0.02)
    engine.enqueue([f"p{i} " for i in range(200)])
    slot = ModelSlot({"chat": engine})
    services = services_for(make_settings(isolated_data), store, slot)
    session = await store.create_session()
    seen = asyncio.Event()

    async def consume():
        async for frame in chat_turn(services, session["id"], "go"):
            if frame["type"] == "token" and frame["text"] == "p2 ":
                seen.set()

    task = asyncio.create_task(consume())
    await seen.wait()
    task.cancel()  # not an anyio scope: the save must survive this too
    with pytest.raises(asyncio.CancelledError):
        await task
    saved = (await store.list_turns(session["id"]))[-1]
    assert saved["role"] == "assistant" and saved["finish_reason"] == "stopped"
    assert saved["text"].startswith("p0 p1 p2") and slot.state()["busy"] is False
