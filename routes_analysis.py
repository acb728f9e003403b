"""Turn analysis: labels of any text, the dashboard's aggregates, the labeller's state."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from analysis import TurnAnalyzer
from errors import AppError, BadRequest
from json_body import read_json
from web import parse_day, services

router = APIRouter(prefix="/api")


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)


def _analyzer(request: Request) -> TurnAnalyzer:
    app = services(request)
    if app.analyzer is None:
        raise AppError("turn analysis is off: set AIONE_EMOTION__ENABLED=true and restart", code="analysis_off",
                       status=503)
    return app.analyzer


@router.post("/analyze")
async def analyze(request: Request) -> dict:
    """Emotion, intent and keywords of any text (not stored)."""
    analyzer = _analyzer(request)
    body = await read_json(request, AnalyzeRequest)
    limit = services(request).settings.emotion.max_text_chars
    if not body.text.strip():
        raise BadRequest("text must not be empty", code="empty_text")
    if len(body.text) > limit:
        raise AppError(f"text is too long: {len(body.text)} characters, at most {limit}", code="text_too_long",
                       status=413)
    return await analyzer.analyze(body.text)


@router.get("/analysis")
async def analysis_state(request: Request) -> dict:
    """What labels the turns, how many are labelled, and a re-label's progress."""
    analyzer = _analyzer(request)
    return await analyzer.status()


@router.post("/analysis/relabel")
async def relabel(request: Request) -> dict:
    """Re-label the turns another classifier labelled (after the classifier was changed)."""
    analyzer = _analyzer(request)
    return await analyzer.relabel()


@router.get("/stats")
async def stats(request: Request, from_: str | None = Query(None, alias="from"), to: str | None = None,
                session_id: str | None = None, bucket: Literal["day", "week"] = "day") -> dict:
    """The dashboard's aggregates for a period (dates inclusive, UTC) and optionally one session."""
    app = services(request)
    start, end = parse_day(from_, "from"), parse_day(to, "to")
    if start and end and start > end:
        raise BadRequest("from is after to", code="invalid_date")
    if session_id:
        await app.store.get_session(session_id)  # 404 for an unknown session
    result = await app.labels.stats(start, end, session_id, bucket)
    result["analysis"] = await app.analyzer.status() if app.analyzer is not None else None
    return result


@router.get("/stats/sessions")
async def stats_sessions(request: Request, from_: str | None = Query(None, alias="from"), to: str | None = None,
                         emotion: str | None = Query(None, max_length=40),
                         intent: str | None = Query(None, max_length=40),
                         keyword: str | None = Query(None, max_length=100), day: str | None = None) -> dict:
    """The sessions behind a chart's slice or bar (the dashboard's click-through)."""
    app = services(request)
    return {"sessions": await app.labels.sessions_for(parse_day(from_, "from"), parse_day(to, "to"), emotion, intent, keyword,
                                                  parse_day(day, "day"))}
