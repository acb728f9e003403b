"""Running the code of an answer in the sandbox: run (streamed or not), stop, a session's runs."""
from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from core.errors import AppError, InvalidInput, NotFound
from core.events import RunFinished
from sandbox.recording import RunOwner, recorded
from store.sessions import SessionStore
from web.json_body import read_json
from web.params import require_text
from web.services import AppSettings, Images, Runs, SandboxDep, Sessions
from web.sse import run_json, sse_stream

router = APIRouter(prefix="/api/sandbox")
log = logging.getLogger("aione.sandbox")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1)
    language: Literal["python"] = "python"
    session_id: str | None = Field(None, max_length=64)
    turn_id: int | None = Field(None, ge=1)
    block: int | None = Field(None, ge=0, le=10_000)  # which code block of the answer (0-based)
    stream: bool = True


async def _owner(sessions: SessionStore, body: RunRequest) -> RunOwner:
    """The session (and answer) the run belongs to: 404 for unknown ones, 400 for a mismatch."""
    session_id = body.session_id
    if body.turn_id is not None:
        turn = await sessions.get_turn(body.turn_id)
        if session_id is not None and turn["session_id"] != session_id:
            raise InvalidInput(f"turn {body.turn_id} is not in session {session_id}", code="turn_not_in_session")
        session_id = turn["session_id"]
    if session_id is not None:
        await sessions.get_session(session_id)
    return RunOwner(session_id, body.turn_id, body.block if body.turn_id is not None else None)


@router.post("/run")
async def run(request: Request, sandbox: SandboxDep, settings: AppSettings, sessions: Sessions, runs: Runs,
              images: Images):
    """Run Python in the sandbox: SSE frames (stdout/stderr text, then exit) or, with
    "stream": false, one JSON object. The run and its output are stored with the session."""
    sandbox.check_admission()  # 503 when code cannot run here, before reading anything
    body = await read_json(request, RunRequest)
    require_text(body.code, "code", settings.sandbox.max_code_chars, "code")
    owner = await _owner(sessions, body)
    sandbox.check_admission()  # 503 / 429 now, as JSON, before any stream starts
    run_id = sandbox.new_run_id()
    events = recorded(runs, images, sandbox.isolation.kind, sandbox.run(body.code, run_id), body.code, owner)
    if body.stream:
        return EventSourceResponse(sse_stream(events), ping=15, sep="\r\n")
    async with aclosing(events):
        async for event in events:
            if isinstance(event, RunFinished):
                return run_json(event.run_id, event.result)
    raise AppError("the run ended without a result", code="internal_error", status=500)


@router.post("/runs/{run_id}/stop")
async def stop(run_id: str, sandbox: SandboxDep) -> dict:
    """End a run at once, queued or running (its stream ends with reason "stopped")."""
    if not sandbox.stop(run_id):
        raise NotFound("no such run is going (it may have finished)", code="run_not_found")
    return {"stopped": True, "run_id": run_id}


@router.get("/runs")
async def session_runs(session_id: str, sessions: Sessions, runs: Runs) -> dict:
    """A session's runs, oldest first (the page shows each under its code block)."""
    await sessions.get_session(session_id)
    return {"runs": await runs.list(session_id)}


@router.get("")
async def sandbox_state(sandbox: SandboxDep) -> dict:
    """Which isolation is active, the limits, and the line of runs."""
    return sandbox.describe() | {"line": sandbox.state()}
