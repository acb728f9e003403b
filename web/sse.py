"""The page's wire format, and the only place it is written: each typed event (core/events.py)
becomes one `data: {json}` SSE frame; the stream ends with `data: [DONE]`.

    data: {"type": "session", "session_id": "..."}
    data: {"type": "turn", "id", "role", "parent_id", "sibling_ids"}   (the request, saved)
    data: {"type": "status", "state": "queued" | "unloading" | "loading" | "retrying" | "ready"
                           | "no_documents_matched" | "history_trimmed" | "generating", ...}
    data: {"type": "token", "text": "..."}
    data: {"type": "done", ...}   or   data: {"type": "error", "code": "...", "message": "..."}
    data: [DONE]

A code run (/api/sandbox/run): status "queued" frames, {"type": "run", "run_id"}, then
{"type": "stdout" | "stderr", "text"} frames, {"type": "exit", ...} and [DONE].
"""
from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from core.events import (
    ChatDone,
    Error,
    Event,
    Generating,
    HistoryTrimmed,
    ImagesStored,
    Loading,
    MemorySaved,
    NoDocumentsMatched,
    PictureMade,
    PicturesDone,
    Queued,
    Ready,
    Retrying,
    RunFinished,
    RunOutput,
    RunPicture,
    RunResult,
    RunStarted,
    SessionStarted,
    Sources,
    StepProgress,
    Token,
    ToolCallMade,
    ToolConfirm,
    ToolResult,
    TurnSaved,
    Unloading,
)

SSE_END = b"\r\n\r\n"
DONE_FRAME = b"data: [DONE]" + SSE_END


def frame(event: Event) -> dict[str, Any]:
    """The page's JSON object for one event."""
    match event:
        case Token(text):  # first: by far the most frequent
            return {"type": "token", "text": text}
        case ToolCallMade(index, call_id, name, arguments):
            return {"type": "tool_call", "index": index, "id": call_id, "name": name, "arguments": arguments}
        case ToolConfirm(call_id, name, arguments):
            return {"type": "tool_confirm", "id": call_id, "name": name, "arguments": arguments}
        case ToolResult(call_id, name, ok, content, for_page):
            result = {"type": "tool_result", "id": call_id, "name": name, "ok": ok, "content": content}
            return result | {"page": dict(for_page)} if for_page else result
        case SessionStarted(session_id):
            return {"type": "session", "session_id": session_id}
        case TurnSaved(turn):
            return {"type": "turn", **turn}
        case MemorySaved(action, memory, previous):
            return {"type": "memory", "action": action, "memory": memory, "previous": previous}
        case ImagesStored(ids):
            return {"type": "images", "ids": list(ids)}
        case Sources(sources):
            return {"type": "sources", "sources": list(sources)}
        case ChatDone():
            return done_frame(event)
        case Error(code, message):
            return {"type": "error", "code": code, "message": message}
        case StepProgress() | PictureMade() | PicturesDone():
            return _picture_frame(event)
        case RunOutput(stream, text):
            return {"type": stream, "text": text}
        case RunStarted(run_id):
            return {"type": "run", "run_id": run_id}
        case RunFinished(run_id, result):
            return {"type": "exit"} | _run_end(run_id, result)  # stdout and stderr were streamed
    return _status_frame(event)


def _status_frame(event: Event) -> dict[str, Any]:
    """The slot's and the request's states: the page's status line."""
    match event:
        case NoDocumentsMatched():
            return {"type": "status", "state": "no_documents_matched"}
        case Queued(position, eta_s):
            return {"type": "status", "state": "queued", "position": position, "eta_s": eta_s}
        case Unloading(model):
            return {"type": "status", "state": "unloading", "model": model}
        case Loading(model, progress):
            return {"type": "status", "state": "loading", "model": model, "progress": progress}
        case Retrying(model, reason):
            return {"type": "status", "state": "retrying", "model": model, "reason": reason}
        case Ready(model):
            return {"type": "status", "state": "ready", "model": model}
        case HistoryTrimmed(dropped):
            return {"type": "status", "state": "history_trimmed", "dropped": dropped,
                    "message": f"{dropped} oldest messages left out to fit the context"}
        case Generating(model, images, steps):
            status = {"type": "status", "state": "generating", "model": model}
            return status if images is None else status | {"images": images, "steps": steps}
    raise TypeError(f"no frame for {type(event).__name__}")


def _picture_frame(event: StepProgress | PictureMade | PicturesDone) -> dict[str, Any]:
    match event:
        case StepProgress(step, steps, image, images):
            return {"type": "progress", "step": step, "steps": steps, "image": image, "images": images}
        case PictureMade(image_id, index, seed, width, height, png):
            return {"type": "image", "id": image_id, "index": index, "seed": seed, "width": width, "height": height,
                    "url": f"/api/images/{image_id}", "png_base64": base64.b64encode(png).decode("ascii")}
        case PicturesDone(turn_id, finish_reason, model, images, seeds, timings):
            return {"type": "done", "turn_id": turn_id, "finish_reason": finish_reason, "model": model,
                    "images": list(images), "seeds": list(seeds), "timings": timings}


def done_frame(done: ChatDone) -> dict:
    usage = done.usage
    return {"type": "done", "turn_id": done.turn_id, "finish_reason": done.finish_reason, "model": done.model,
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "cached_tokens": usage.cached_tokens},
            "timings": done.timings, "dropped_turns": done.dropped_turns, "answer": done.answer,
            "question": done.question, "context": done.context, "memories_used": list(done.memories_used)}


def run_json(run_id: str, result: RunResult) -> dict:
    """A finished code run, as /api/sandbox/run answers without streaming."""
    return {"run_id": run_id, "stdout": result.stdout, "stderr": result.stderr} | _run_end(run_id, result)


def _run_end(run_id: str, result: RunResult) -> dict:
    return {"run_id": run_id, "exit_code": result.exit_code, "timed_out": result.timed_out, "killed": result.killed,
            "reason": result.reason, "duration_ms": result.duration_ms,
            "images": [picture_json(p) for p in result.pictures]}


def picture_json(picture: RunPicture) -> dict:
    stored = {"id": picture.image_id, "url": f"/api/images/{picture.image_id}"} if picture.image_id else {}
    return stored | {"name": picture.name, "width": picture.width, "height": picture.height,
                     "png_base64": base64.b64encode(picture.png).decode("ascii")}


def encode(event: Event) -> bytes:
    """One SSE frame. JSON has no raw newlines, so one `data:` line each; sse-starlette passes
    bytes through untouched, which keeps the per-token cost low."""
    return b"data: " + json.dumps(frame(event), ensure_ascii=False).encode() + SSE_END


async def sse_stream(events: AsyncGenerator[Event, None]) -> AsyncGenerator[bytes, None]:
    """The page's stream: every event as a frame, then `[DONE]`."""
    async with aclosing(events):  # a disconnect closes us; close the runner now, not at GC
        async for event in events:
            yield encode(event)
    yield DONE_FRAME
