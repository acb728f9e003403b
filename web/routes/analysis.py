"""Turn analysis: labels of any text, the dashboard's aggregates, the labeller's state."""
from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from core.errors import BadRequest, InvalidInput, NotFound
from settings import EMOTION_NAMES
from web.json_body import read_json
from web.params import parse_day, require_text
from web.services import Analyzer, AppSettings, Labels, MaybeAnalyzer, Sessions

router = APIRouter(prefix="/api")
LABEL_POLL_S = 0.2  # how often a waiting label request looks again (one indexed query)


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)


@router.post("/analyze")
async def analyze(request: Request, settings: AppSettings, analyzer: Analyzer) -> dict:
    """Emotion, intent and keywords of any text (not stored)."""
    body = await read_json(request, AnalyzeRequest)
    return await analyzer.analyze(require_text(body.text, "text", settings.analysis.max_text_chars, "text"))


@router.get("/analysis")
async def analysis_state(analyzer: Analyzer) -> dict:
    """What labels the turns, how many are labelled, and a re-label's progress."""
    return await analyzer.status()


@router.post("/analysis/relabel")
async def relabel(analyzer: Analyzer) -> dict:
    """Re-label the turns another classifier labelled (after the classifier was changed)."""
    return await analyzer.relabel()


@router.get("/stats")
async def stats(request: Request, sessions: Sessions, labels: Labels, analyzer: MaybeAnalyzer, from_: str | None = Query(None, alias="from"), to: str | None = None,
                session_id: str | None = None, bucket: Literal["day", "week"] = "day") -> dict:
    """The dashboard's aggregates for a period (dates inclusive, UTC) and optionally one session."""
    start, end = parse_day(from_, "from"), parse_day(to, "to")
    if start and end and start > end:
        raise InvalidInput("from is after to", code="invalid_date")
    if session_id:
        await sessions.get_session(session_id)  # 404 for an unknown session
    result = await labels.stats(start, end, session_id, bucket)
    result["analysis"] = await analyzer.status() if analyzer is not None else None
    # the emotions the page draws, in order: the classifier's (a user's model may name others)
    result["emotions"] = result["analysis"]["emotions"] if result["analysis"] else list(EMOTION_NAMES)
    return result


@router.get("/stats/sessions")
async def stats_sessions(request: Request, sessions: Sessions, labels: Labels, from_: str | None = Query(None, alias="from"), to: str | None = None,
                         emotion: str | None = Query(None, max_length=40),
                         intent: str | None = Query(None, max_length=40),
                         keyword: str | None = Query(None, max_length=100), day: str | None = None) -> dict:
    """The sessions behind a chart's slice or bar (the dashboard's click-through)."""
    return {"sessions": await labels.sessions_for(parse_day(from_, "from"), parse_day(to, "to"), emotion, intent, keyword,
                                                  parse_day(day, "day"))}


@router.get("/sessions/{session_id}/labels")
async def turn_labels(session_id: str, sessions: Sessions, labels: Labels, analyzer: MaybeAnalyzer,
                      turn_ids: str = Query(..., max_length=200), wait_s: float = Query(0, ge=0, le=15)) -> dict:
    """The labels of a few turns of the session, waiting up to `wait_s` for the ones the
    background labeller has not reached yet: the page asks once after an answer, instead of
    re-reading the session until they appear."""
    ids = _turn_ids(turn_ids)
    await sessions.get_session(session_id)
    for turn_id in ids:
        if (await sessions.get_turn(turn_id))["session_id"] != session_id:
            raise NotFound(f"turn not found in this session: {turn_id}", code="turn_not_found")
    deadline = asyncio.get_running_loop().time() + (wait_s if analyzer is not None else 0)
    found = await labels.of_turns(ids)
    while len(found) < len(ids) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(LABEL_POLL_S)
        found = await labels.of_turns(ids)
    return {"labels": {str(turn_id): found.get(turn_id) for turn_id in ids}}


def _turn_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadRequest("turn_ids must be turn ids separated by commas, e.g. 12,13", code="invalid_turn_ids") from None
    if not 1 <= len(ids) <= 20:
        raise InvalidInput("turn_ids: from 1 to 20 turn ids", code="invalid_turn_ids")
    return list(dict.fromkeys(ids))
