"""PKC Mark in the app: start a run, follow it (SSE), cancel it, read and export its results."""
from __future__ import annotations

import asyncio
import csv
import io
import json

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from core.errors import AppError
from web.json_body import read_json
from web.services import Marks, Stores
from web.sse import DONE_FRAME, SSE_END

router = APIRouter(prefix="/api/bench")
COLUMNS = ("model", "task", "language", "score", "ci_low", "ci_high", "spread", "answers", "empty", "truncated",
           "looping", "invalid_json", "failed", "hangul_share")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[str] = Field(min_length=1, max_length=8)
    tasks: list[str] = Field(min_length=1, max_length=8)
    seeds: int = Field(3, ge=1, le=5)
    quick: bool = False


@router.post("/runs", status_code=201)
async def start_run(request: Request, marks: Marks) -> dict:
    body = await read_json(request, RunRequest)
    run = marks.start(body.models, body.tasks, body.seeds, body.quick)
    return {"id": run.id, "total": run.total}


@router.get("/runs")
async def runs(marks: Marks, stores: Stores) -> dict:
    return {"runs": await stores.marks.history()}


async def _run(run_id: str, marks, stores) -> dict:
    if run_id in marks.runs:
        return marks.view(marks.runs[run_id])
    return await stores.marks.get(run_id)  # 404 when unknown


@router.get("/runs/{run_id}")
async def get_run(run_id: str, marks: Marks, stores: Stores, format: str = "json") -> Response:
    run = await _run(run_id, marks, stores)
    if format == "json":
        return Response(json.dumps(run, ensure_ascii=False), media_type="application/json")
    if format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*COLUMNS, "gen_tokens_per_s", "load_s"], extrasaction="ignore")
        writer.writeheader()
        for row in run["results"]:
            speed = run["speed"].get(row["model"]) or {}
            writer.writerow(row | {"gen_tokens_per_s": speed.get("gen_tokens_per_s"), "load_s": speed.get("load_s")})
        return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="pkc-mark-{run_id[:8]}.csv"'})
    raise AppError("format: json or csv", code="invalid_format", status=422)


@router.get("/runs/{run_id}/events")
async def run_events(run_id: str, marks: Marks) -> StreamingResponse:
    """The run's progress as SSE frames (one per change) until it ends."""
    run = marks.get_live(run_id)

    async def frames():
        while True:
            changed = run.changed  # taken before reading: a change after the read still wakes us
            view = marks.view(run)
            yield b"data: " + json.dumps({"status": view["status"], "progress": view["progress"]}).encode() + SSE_END
            if view["status"] != "running":
                yield DONE_FRAME
                return
            try:
                await asyncio.wait_for(changed.wait(), 15)
            except TimeoutError:
                pass

    return StreamingResponse(frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/runs/{run_id}/cancel")
async def cancel_run(run_id: str, marks: Marks) -> dict:
    run = marks.cancel(run_id)
    if run.task is not None:
        await asyncio.wait([run.task], timeout=30)
    return marks.view(run)
