"""One chat turn through the turn runner, without HTTP: history trimming, failures mid-answer,
disconnects, the answer saved once, checkpoints while streaming."""
from __future__ import annotations

import threading
from contextlib import aclosing
from dataclasses import dataclass

import anyio
import pytest

from core.contracts import ChatEngine, ChatInput
from core.events import Token
from llm_engine import LlmEngine
from tests.conftest import make_settings
from tests.fakes import FakeChatEngine
from turns.answer import AnswerTurn
from turns.recorder import SessionRecorder
from turns.runner import Turn
from vram_guard import ModelSlot, Priority
from web.sse import frame

pytestmark = pytest.mark.anyio


@dataclass
class ChatServices:
    """What a page chat turn is made with (the route hands the same to AnswerTurn)."""

    settings: object
    store: object
    slot: ModelSlot


async def chat_turn(services: ChatServices, session_id: str, message: str):
    """The runner's events for one chat message, in the page's wire form."""
    lease = services.slot.lease("chat", Priority.CHAT, ChatEngine)
    work = AnswerTurn(ChatInput([], message, session_id=session_id), SessionRecorder(services.store, session_id),
                      checkpoint_s=services.settings.server.answer_checkpoint_s)
    events = (await Turn.start(lease, lambda: (session_id, work))).events()
    async with aclosing(events):
        async for event in events:
            yield frame(event)


def services_for(settings, store, slot) -> ChatServices:
    return ChatServices(settings, store, slot)


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
    async for sent in frames:
        seen += sent["type"] == "token"
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
        async for sent in chat_turn(services, session["id"], "go"):
            if sent["type"] == "token" and sent["text"] == "p2 ":
                seen.set()

    task = asyncio.create_task(consume())
    await seen.wait()
    task.cancel()  # not an anyio scope: the save must survive this too
    with pytest.raises(asyncio.CancelledError):
        await task
    saved = (await store.list_turns(session["id"]))[-1]
    assert saved["role"] == "assistant" and saved["finish_reason"] == "stopped"
    assert saved["text"].startswith("p0 p1 p2") and slot.state()["busy"] is False


async def test_the_answer_is_saved_before_done_and_only_once(store, isolated_data):
    """A client that goes away the moment `done` arrives must not make the answer saved twice."""
    engine = FakeChatEngine(replies=[["one ", "two"]])
    services = services_for(make_settings(isolated_data), store, ModelSlot({"chat": engine}))
    session = await store.create_session()
    frames = chat_turn(services, session["id"], "hi")
    async for f in frames:
        if f["type"] == "done":
            saved = await store.list_turns(session["id"])
            assert [t["role"] for t in saved] == ["user", "assistant"]  # saved before done went out
            assert saved[-1]["id"] == f["turn_id"] and saved[-1]["text"] == "one two"
            break
    await frames.aclose()  # the disconnect, right after done
    turns = await store.list_turns(session["id"])
    assert [(t["role"], t["text"], t["finish_reason"]) for t in turns] == [
        ("user", "hi", None), ("assistant", "one two", "done")]


async def test_a_streaming_answer_is_checkpointed_and_a_crash_leaves_it_interrupted(store, isolated_data):
    """While tokens stream the answer so far is in SQLite; a process that dies (no finally runs)
    leaves it there, and the next start marks it interrupted."""
    from store import open_stores

    settings = make_settings(isolated_data)
    settings.server.answer_checkpoint_s = 0.05
    engine = FakeChatEngine(token_seconds=0.02)
    engine.enqueue([f"c{i} " for i in range(40)])
    services = services_for(settings, store, ModelSlot({"chat": engine}))
    session = await store.create_session()
    frames = chat_turn(services, session["id"], "write")
    async for f in frames:
        if f["type"] == "token" and f["text"] == "c20 ":
            break
    # Read what a crash right now would leave: the checkpoint, not the end of the stream.
    answer = (await store.list_turns(session["id"]))[-1]
    assert answer["role"] == "assistant" and answer["finish_reason"] == "streaming"
    assert answer["text"].startswith("c0 c1 c2") and 10 <= len(answer["text"].split()) <= 21
    reopened = (await open_stores(isolated_data / "db.sqlite3", isolated_data / "logs")).sessions  # "the restart"
    try:
        after = (await reopened.list_turns(session["id"]))[-1]
        assert after["id"] == answer["id"] and after["finish_reason"] == "interrupted"
        assert after["text"].startswith("c0 c1 c2")
    finally:
        await reopened.close()
    await frames.aclose()


async def test_a_turn_reads_its_model_files_once_and_a_missing_model_is_an_error_after_the_request_is_saved(
        store, isolated_data):
    from core.errors import ModelMissing

    class Counted(FakeChatEngine):
        missing = False
        checks = 0

        def check_files(self) -> None:
            self.checks += 1
            if self.missing:
                raise ModelMissing("chat model file not found: x.gguf. Set AIONE_CHAT__MODEL_PATH to a GGUF file")

    engine = Counted()
    services = services_for(make_settings(isolated_data), store, ModelSlot({"chat": engine}))
    session = await store.create_session()
    assert (await run_turn(services, session["id"], "hi"))[-1]["type"] == "done" and engine.checks == 1
    engine.missing = True
    frames = await run_turn(services, session["id"], "again")
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "model_missing" and engine.checks == 2
    turns = await store.list_turns(session["id"])
    assert (turns[-2]["text"], turns[-1]["finish_reason"]) == ("again", "error")  # the request was kept, the error said
    assert "load chat" in engine.log and engine.log.count("load chat") == 1  # never a load attempt when missing


async def test_the_swap_begins_when_the_request_passes_its_setup_not_when_its_stream_is_read(store, isolated_data):
    """The model loads while the response starts (issue 31, item 8); a request its setup refuses
    loads nothing."""
    engine = FakeChatEngine()
    slot = ModelSlot({"chat": engine})
    session = await store.create_session()
    work = AnswerTurn(ChatInput([], "hi", session_id=session["id"]), SessionRecorder(store, session["id"]))

    def refused() -> tuple:
        raise ValueError("bad upload")

    with pytest.raises(ValueError):
        await Turn.start(slot.lease("chat", Priority.CHAT, ChatEngine), refused)
    assert engine.log == [] and slot.state()["queue"] == 0
    turn = await Turn.start(slot.lease("chat", Priority.CHAT, ChatEngine), lambda: (session["id"], work))
    for _ in range(50):  # no event read yet
        if engine.loaded:
            break
        await anyio.sleep(0.01)
    assert engine.log == ["load chat"] and engine.loaded
    frames = [frame(event) async for event in turn.events()]
    assert frames[-1]["type"] == "done" and engine.log == ["load chat"]  # the turn used that load
