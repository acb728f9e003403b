"""One chat turn, as a stream of frames: session → status → tokens → done (or error).

The route validates the request and resolves the session; this module does the rest:
saves the user turn before anything can fail, leases the slot, builds the prompt, streams
tokens, and always saves the assistant turn with what was generated and why it ended.
Later features (documents, images) add steps here, not in the route.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

import anyio

from document_service import DocumentService
from errors import AppError
from image_store import ImageStore, StoredImage
from llm_engine import Finish, LlmEngine, Token
from rag_engine import Hit
from session_store import SessionStore
from settings import Settings
from thread_bridge import iterate_in_thread, run_blocking
from vram_guard import ModelSlot, Priority

log = logging.getLogger(__name__)


@dataclass
class ChatServices:
    settings: Settings
    store: SessionStore
    slot: ModelSlot
    images: ImageStore
    documents: DocumentService | None = None


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


def error_frame(exc: BaseException) -> dict:
    if isinstance(exc, AppError):
        return {"type": "error", "code": exc.code, "message": exc.message}
    return {"type": "error", "code": "internal_error", "message": f"unexpected error: {type(exc).__name__}: {exc}"}


async def chat_turn(services: ChatServices, session_id: str, message: str, engine_name: str = "chat",
                    images: Sequence[StoredImage] = (), image_refs: Sequence[str] = (),
                    doc_scope: str = "all") -> AsyncIterator[dict]:
    """`images`: validated and stored with this message; `image_refs`: earlier images of the
    session asked about again. Either sends the turn to the vision engine. `doc_scope`:
    "all" documents, the "session"'s attached ones, or "none"."""
    store, slot = services.store, services.slot
    started = time.perf_counter()
    yield {"type": "session", "session_id": session_id}

    history = text_history(await store.history(session_id))
    await store.add_turn(session_id, "user", message, images=list(images))
    if images:
        yield {"type": "images", "ids": [image.id for image in images]}
    shown = [*image_refs, *(image.id for image in images)]
    sources: list[dict] = []
    model_message = message

    engine: LlmEngine = slot.engine(engine_name)  # type: ignore[assignment]
    parts: list[str] = []
    result = {"finish_reason": "error", "prompt_tokens": None, "completion_tokens": None,
              "ttft_ms": None, "tokens_per_s": None, "dropped_turns": 0}
    stop = threading.Event()
    try:
        hits = await retrieve(services, session_id, message, doc_scope)
        if hits:
            model_message, sources = with_references(message, hits, services.settings.rag.context_chars)
            yield {"type": "sources", "sources": sources}
        elif hits is not None:
            yield {"type": "status", "state": "no_documents_matched"}
        engine.check_files()  # a missing model is an error frame, not a load attempt
        async with slot.lease(engine_name, Priority.VISION if shown else Priority.CHAT) as lease:
            async with aclosing(lease.acquire()) as waiting:
                async for status in waiting:
                    yield status
            wait_ms = (time.perf_counter() - started) * 1000
            extra = (shown,) if shown else ()
            prompt = await run_blocking(engine.prepare, engine.system_prompt, history, model_message, session_id, *extra)
            result["dropped_turns"] = prompt.dropped_messages
            result["prompt_tokens"] = len(prompt.tokens) or None
            if prompt.dropped_messages:
                yield {"type": "status", "state": "history_trimmed", "dropped": prompt.dropped_messages,
                       "message": f"{prompt.dropped_messages} oldest messages left out to fit the context"}
            yield {"type": "status", "state": "generating", "model": engine.model_label}

            gen_started = time.perf_counter()
            first_token_at: float | None = None
            result["finish_reason"] = "stopped"  # until the engine says otherwise
            async with aclosing(iterate_in_thread(lambda: engine.stream(prompt, stop), stop)) as items:
                async for item in items:
                    if isinstance(item, Token):
                        if first_token_at is None:
                            first_token_at = time.perf_counter()
                            result["ttft_ms"] = round((first_token_at - gen_started) * 1000, 1)
                        parts.append(item.text)
                        yield {"type": "token", "text": item.text}
                    elif isinstance(item, Finish):
                        result["finish_reason"] = item.reason
                        result["completion_tokens"] = item.completion_tokens
                        result["prompt_tokens"] = item.prompt_tokens
            decode_s = time.perf_counter() - (first_token_at or gen_started)
            if result["completion_tokens"] and decode_s > 0:
                # tokens after the first, over the time after the first: decode speed
                result["tokens_per_s"] = round(max(0, result["completion_tokens"] - 1) / decode_s, 2)
        turn = await _save_answer(store, session_id, engine, parts, result, sources)
        yield {
            "type": "done",
            "turn_id": turn["id"],
            "finish_reason": result["finish_reason"],
            "model": engine.model_label,
            "usage": {"prompt_tokens": result["prompt_tokens"], "completion_tokens": result["completion_tokens"],
                      "cached_tokens": prompt.cached_tokens},
            "timings": {"wait_ms": round(wait_ms, 1), "ttft_ms": result["ttft_ms"],
                        "tokens_per_s": result["tokens_per_s"],
                        "total_ms": round((time.perf_counter() - started) * 1000, 1)},
            "dropped_turns": result["dropped_turns"],
        }
        result = None  # saved
    except Exception as exc:
        if not isinstance(exc, AppError):
            log.exception("chat turn failed")
        result["finish_reason"] = "error"
        yield error_frame(exc)
    finally:
        stop.set()
        if result is not None:  # stopped, disconnected or failed: keep what was generated
            if result["completion_tokens"] is None and parts:
                result["completion_tokens"] = len(parts)
            with anyio.CancelScope(shield=True):
                await _save_answer(store, session_id, engine, parts, result, sources)


async def _save_answer(store: SessionStore, session_id: str, engine: LlmEngine, parts: list[str], result: dict,
                       sources: list[dict]) -> dict:
    return await store.add_turn(session_id, "assistant", "".join(parts), model=engine.model_label, sources=sources,
                                **result)
