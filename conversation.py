"""A chat turn's work for the turn runner (turn_runner.py): the user turn saved first, the
document references, the prompt, the tokens (checkpointed while they stream), the answer
saved with what was generated and why it ended. The runner owns the lease, errors and the
shielded save; the route validates the request and resolves the session.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Generic, TypeVar

from analysis import TurnAnalyzer
from document_service import DocumentService
from engine_contracts import ChatEngine, VisionEngine
from events import (ChatDone, Event, Generating, HistoryTrimmed, ImagesStored, NoDocumentsMatched, Sources, Token,
                    Usage)
from image_store import ImageStore, StoredImage
from label_store import LabelStore
from llm_engine import Finish
from rag_engine import Hit
from sandbox import Sandbox
from sandbox_store import RunStore
from session_store import SessionStore
from settings import Settings
from thread_bridge import iterate_in_thread, run_blocking
from vram_guard import ModelSlot

E = TypeVar("E", ChatEngine, VisionEngine)


@dataclass
class ChatServices:
    settings: Settings
    store: SessionStore
    slot: ModelSlot
    images: ImageStore
    documents: DocumentService | None = None
    analyzer: TurnAnalyzer | None = None  # None: turn analysis is off (settings.emotion.enabled)
    sandbox: Sandbox | None = None  # runs code from answers; set at start, after its probe

    @property
    def labels(self) -> LabelStore:
        """Turn labels and the dashboard's aggregates (the sessions' database; it holds no state)."""
        return LabelStore(self.store.connection, self.store.log_event)

    @property
    def runs(self) -> RunStore:
        """Code runs (the sessions' database; it holds no state)."""
        return RunStore(self.store.connection, self.store.log_event)


REFERENCES_INTRO = ("Answer using the numbered references below where they are relevant, and cite them "
                    "like [1]. If they do not answer the question, say so.")


def with_references(message: str, hits: list[Hit], budget_chars: int) -> tuple[str, list[dict]]:
    """The message as the model sees it, with numbered references within the budget, and the
    sources actually used (what the page shows and the turn records)."""
    parts, sources, used = [REFERENCES_INTRO], [], 0
    for hit in hits:
        text = hit.text[: budget_chars - used]
        if not text:
            break
        used += len(text)
        n = len(sources) + 1
        where = f" (p. {hit.page})" if hit.page else ""
        parts.append(f"[{n}] {hit.name}{where}:\n{text}")
        sources.append({"n": n, "document_id": hit.document_id, "name": hit.name, "page": hit.page,
                        "chunk_id": hit.chunk_id, "snippet": hit.text[:400], "score": hit.score})
    parts.append(f"Question: {message}")
    return "\n\n".join(parts), sources


async def retrieve(services: ChatServices, session_id: str, message: str, scope: str) -> list[Hit] | None:
    """Chunks for the message, or None when no document could take part (none ready, scope off)."""
    documents = services.documents
    if scope == "none" or documents is None or not await documents.has_documents():
        return None
    allowed = await services.store.session_documents(session_id) if scope == "session" else None
    if allowed is not None and not allowed:
        return None
    return await documents.search(message, None, allowed)


def text_history(history: list[dict]) -> list[dict]:
    """History as plain chat messages. A message that came with images says so, and the
    vision model's answer follows it, so a text model knows what the pictures showed."""
    messages = []
    for turn in history:
        content = turn["content"]
        if turn.get("images"):
            content = f"[{len(turn['images'])} image(s) attached] {content}"
        messages.append({"role": turn["role"], "content": content})
    return messages


@dataclass(frozen=True)
class Branching:
    """Where in the tree a turn goes instead of the end of the active branch: after `parent_id`
    (an edited message becomes a sibling of the one it replaces); with `answer_again`, no new
    message: that user turn is answered again (the new answer a sibling of the old ones)."""

    parent_id: int | None
    answer_again: int | None = None


class AnswerTurn(Generic[E]):
    """An answer as runner work (turn_runner.TurnRunner): saves the user turn, adds the
    document references, streams the answer (checkpointed while it streams) and saves it.
    TextTurn and VisionTurn differ only in how the prompt is made (their engine contracts)."""

    def __init__(self, services: ChatServices, session_id: str, message: str, images: Sequence[StoredImage] = (),
                 doc_scope: str = "all", branching: Branching | None = None) -> None:
        self.services, self.store = services, services.store
        self.branching = branching
        self.session_id, self.message, self.images, self.doc_scope = session_id, message, images, doc_scope
        self.started = time.perf_counter()
        self.history: list[dict] = []
        self.model_message = message
        self.sources: list[dict] = []
        self.request_saved = False
        self.answer: asyncio.Task[int] | None = None  # the assistant turn's id, created as streaming starts
        self.model = ""
        self.parts: list[str] = []
        self.result: dict = {"finish_reason": "error", "prompt_tokens": None, "completion_tokens": None,
                             "ttft_ms": None, "tokens_per_s": None, "dropped_turns": 0}
        self.cached_tokens = 0
        self.wait_ms = 0.0

    async def begin(self) -> AsyncIterator[Event]:
        branching = self.branching
        if branching is not None:
            await self.store.set_active_leaf(self.session_id, branching.parent_id)
        self.history = text_history(await self.store.history(self.session_id))
        if branching is not None and branching.answer_again is not None:
            await self.store.set_active_leaf(self.session_id, branching.answer_again)
        else:
            await self.store.add_turn(self.session_id, "user", self.message, images=list(self.images))
        self.request_saved = True
        if self.images:
            yield ImagesStored(tuple(image.id for image in self.images))
        hits = await retrieve(self.services, self.session_id, self.message, self.doc_scope)
        if hits:
            self.model_message, self.sources = with_references(
                self.message, hits, self.services.settings.rag.context_chars)
            yield Sources(tuple(self.sources))
        elif hits is not None:
            yield NoDocumentsMatched()

    async def _prepare(self, engine: E):
        raise NotImplementedError

    async def run(self, engine: E, stop: threading.Event) -> AsyncIterator[Event]:
        self.wait_ms = (time.perf_counter() - self.started) * 1000
        self.model = engine.model_label
        prompt = await self._prepare(engine)
        self.cached_tokens = prompt.cached_tokens
        self.result["dropped_turns"] = prompt.dropped_messages
        self.result["prompt_tokens"] = len(prompt.tokens) or None
        if prompt.dropped_messages:
            yield HistoryTrimmed(prompt.dropped_messages)
        yield Generating(self.model)
        self.answer = self._start_answer()
        self.result["finish_reason"] = "stopped"  # until the engine says otherwise
        async with aclosing(self._tokens(engine, prompt, stop)) as tokens:
            async for token in tokens:
                yield token

    async def _tokens(self, engine: E, prompt, stop: threading.Event) -> AsyncIterator[Token]:
        """The engine's tokens; the answer so far is saved every few seconds (a crash keeps it)."""
        every = self.services.settings.server.answer_checkpoint_s
        gen_started = checkpointed = time.perf_counter()
        first_token_at: float | None = None
        async with aclosing(iterate_in_thread(lambda: engine.stream(prompt, stop), stop)) as items:
            async for item in items:
                if isinstance(item, Token):
                    now = time.perf_counter()
                    if first_token_at is None:
                        first_token_at = now
                        self.result["ttft_ms"] = round((now - gen_started) * 1000, 1)
                    self.parts.append(item.text)
                    yield item
                    if now - checkpointed >= every and self.answer is not None:
                        checkpointed = now
                        await self.store.checkpoint_answer(await self.answer, "".join(self.parts))
                elif isinstance(item, Finish):
                    self.result.update(finish_reason=item.reason, completion_tokens=item.completion_tokens,
                                       prompt_tokens=item.prompt_tokens)
        decode_s = time.perf_counter() - (first_token_at or gen_started)
        if self.result["completion_tokens"] and decode_s > 0:
            # tokens after the first, over the time after the first: decode speed
            self.result["tokens_per_s"] = round(max(0, self.result["completion_tokens"] - 1) / decode_s, 2)

    def _start_answer(self) -> asyncio.Task[int] | None:
        """The assistant turn, created beside the first tokens (off the TTFT path), checkpointed."""
        return asyncio.ensure_future(self.store.start_answer(self.session_id, self.model))

    async def _save(self) -> dict:
        text = "".join(self.parts)
        if self.answer is not None:
            return await self.store.finish_answer(await self.answer, text, self.sources, model=self.model,
                                                  **self.result)
        return await self.store.add_turn(self.session_id, "assistant", text, model=self.model or None,
                                         sources=self.sources, **self.result)

    async def finish(self) -> Event:
        turn = await self._save()
        result = self.result
        return ChatDone(
            turn_id=turn["id"], finish_reason=result["finish_reason"], model=self.model,
            usage=Usage(result["prompt_tokens"], result["completion_tokens"], self.cached_tokens),
            timings={"wait_ms": round(self.wait_ms, 1), "ttft_ms": result["ttft_ms"],
                     "tokens_per_s": result["tokens_per_s"],
                     "total_ms": round((time.perf_counter() - self.started) * 1000, 1)},
            dropped_turns=result["dropped_turns"])

    async def save_partial(self, reason: str) -> None:
        if not self.request_saved:
            return  # the request itself could not be saved: there is nothing to answer
        self.result["finish_reason"] = reason
        if self.result["completion_tokens"] is None and self.parts:
            self.result["completion_tokens"] = len(self.parts)
        await self._save()


class TextTurn(AnswerTurn[ChatEngine]):
    """A chat message to a chat model."""

    async def _prepare(self, engine: ChatEngine):
        return await run_blocking(engine.prepare, engine.system_prompt, self.history, self.model_message,
                                  self.session_id)


class VisionTurn(AnswerTurn[VisionEngine]):
    """An image question: the vision model, with the images shown to it."""

    def __init__(self, services: ChatServices, session_id: str, message: str, images: Sequence[StoredImage] = (),
                 image_refs: Sequence[str] = (), doc_scope: str = "all") -> None:
        super().__init__(services, session_id, message, images, doc_scope)
        self.shown = [*image_refs, *(image.id for image in images)]

    async def _prepare(self, engine: VisionEngine):
        return await run_blocking(engine.prepare, engine.system_prompt, self.history, self.model_message, self.shown)
