"""Running the code of an answer in the sandbox: run (streamed or not), stop, a session's runs."""
from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from conversation import ChatServices
from errors import AppError, BadRequest, NotFound
from events import RunFinished, RunPicture
from json_body import read_json
from sandbox import RunEvent, Sandbox
from sse_frames import run_json, sse_stream
from web import services

router = APIRouter(prefix="/api/sandbox")
log = logging.getLogger("aione.sandbox")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1)
    language: Literal["python"] = "python"
    session_id: str | None = Field(None, max_length=64)
    turn_id: int | None = Field(None, ge=1)
    stream: bool = True


async def _owner(app: ChatServices, body: RunRequest) -> tuple[str | None, int | None]:
    """The session (and answer) the run belongs to: 404 for unknown ones, 400 for a mismatch."""
    session_id = body.session_id
    if body.turn_id is not None:
        turn = await app.store.get_turn(body.turn_id)
        if session_id is not None and turn["session_id"] != session_id:
            raise BadRequest(f"turn {body.turn_id} is not in session {session_id}", code="turn_not_in_session")
        session_id = turn["session_id"]
    if session_id is not None:
        await app.store.get_session(session_id)
    return session_id, body.turn_id


def _sandbox(app: ChatServices) -> Sandbox:
    if app.sandbox is None:  # only before the start has finished
        raise AppError("the sandbox is not ready yet", code="sandbox_unavailable", status=503)
    return app.sandbox


@router.post("/run")
async def run(request: Request):
    """Run Python in the sandbox: SSE frames (stdout/stderr text, then exit) or, with
    "stream": false, one JSON object. The run and its output are stored with the session."""
    app = services(request)
    sandbox = _sandbox(app)
    sandbox.check_admission()  # 503 when code cannot run here, before reading anything
    body = await read_json(request, RunRequest)
    limit = app.settings.sandbox.max_code_chars
    if not body.code.strip():
        raise BadRequest("code must not be empty", code="empty_code")
    if len(body.code) > limit:
        raise AppError(f"code is too long: {len(body.code)} characters, at most {limit}", code="code_too_long",
                       status=413)
    session_id, turn_id = await _owner(app, body)
    sandbox.check_admission()  # 503 / 429 now, as JSON, before any stream starts
    run_id = sandbox.new_run_id()
    events = _recorded(app, sandbox.run(body.code, run_id), body, session_id, turn_id)
    if body.stream:
        return EventSourceResponse(sse_stream(events), ping=15, sep="\r\n")
    async with aclosing(events):
        async for event in events:
            if isinstance(event, RunFinished):
                return run_json(event.run_id, event.result)
    raise AppError("the run ended without a result", code="internal_error", status=500)


async def _recorded(app: ChatServices, events: AsyncIterator[RunEvent], body: RunRequest, session_id: str | None,
                    turn_id: int | None) -> AsyncIterator[RunEvent]:
    """The run's events; the finished run is stored (pictures as images) before its exit goes out."""
    async with aclosing(events):
        async for event in events:
            yield await _record(app, event, body, session_id, turn_id) if isinstance(event, RunFinished) else event


async def _record(app: ChatServices, event: RunFinished, body: RunRequest, session_id: str | None,
                  turn_id: int | None) -> RunFinished:
    """The finished run with its pictures stored. If storing fails (a full disk, its session
    deleted meanwhile) the result still goes out, pictures inline only, and nothing is left behind."""
    result, image_ids = event.result, []
    try:
        pictures = await asyncio.to_thread(_store_pictures, app, result.pictures, image_ids)
        await app.runs.save({
            "id": event.run_id, "session_id": session_id, "turn_id": turn_id, "language": body.language,
            "code": body.code, "stdout": result.stdout, "stderr": result.stderr, "exit_code": result.exit_code,
            "timed_out": result.timed_out, "killed": result.killed, "reason": result.reason,
            "duration_ms": result.duration_ms, "images": image_ids, "isolation": app.sandbox.isolation.kind})
    except Exception as exc:  # noqa: BLE001 - the run happened; saving it is secondary
        log.warning("code run %s not saved: %s", event.run_id, exc)
        app.images.delete(image_ids)
        return event
    return replace(event, result=replace(result, pictures=pictures))


def _store_pictures(app: ChatServices, pictures: tuple[RunPicture, ...], image_ids: list[str]) -> tuple[RunPicture, ...]:
    """Each picture re-encoded by PIL into the image store (what the page shows is a clean PNG);
    `image_ids` collects the stored ids as they are written (to remove them if saving fails)."""
    from PIL import Image

    stored = []
    for picture in pictures:
        with Image.open(io.BytesIO(picture.png)) as image:
            record, png = app.images.save_generated(image.convert("RGBA"), {"aione-source": "sandbox run"})
        image_ids.append(record.id)
        stored.append(replace(picture, image_id=record.id, png=png))
    return tuple(stored)


@router.post("/runs/{run_id}/stop")
async def stop(run_id: str, request: Request) -> dict:
    """End a run at once, queued or running (its stream ends with reason "stopped")."""
    if not _sandbox(services(request)).stop(run_id):
        raise NotFound("no such run is going (it may have finished)", code="run_not_found")
    return {"stopped": True, "run_id": run_id}


@router.get("/runs")
async def runs(request: Request, session_id: str) -> dict:
    """A session's runs, oldest first (the page shows each under its code block)."""
    app = services(request)
    await app.store.get_session(session_id)
    return {"runs": await app.runs.list(session_id)}


@router.get("")
async def sandbox_state(request: Request) -> dict:
    """Which isolation is active, the limits, and the line of runs."""
    sandbox = _sandbox(services(request))
    return sandbox.describe() | {"line": sandbox.state()}
