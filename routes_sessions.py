"""Conversations: list, create, rename, delete, and a conversation's turns."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from errors import AppError, BadRequest
from json_body import read_json
from search_index import search
from web import clean_title, parse_day, services

router = APIRouter(prefix="/api/sessions")
turns_router = APIRouter(prefix="/api")
MAX_COMMENT_CHARS = 2000


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = ""


class RenameSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str  # cleaned and checked for emptiness by the route


@router.get("")
async def list_sessions(request: Request) -> dict:
    return {"sessions": await services(request).store.list_sessions()}


@router.post("", status_code=201)
async def new_session(request: Request) -> dict:
    body = await read_json(request, NewSession)
    app = services(request)
    return await app.store.create_session(clean_title(body.title, app.settings.server.max_title_chars))


@router.patch("/{session_id}")
async def rename_session(session_id: str, request: Request) -> dict:
    body = await read_json(request, RenameSession)
    app = services(request)
    title = clean_title(body.title, app.settings.server.max_title_chars)
    if not title:
        raise AppError("title must not be empty", code="invalid_request", status=422)
    return await app.store.rename_session(session_id, title)


@router.delete("/{session_id}")
async def delete_session(session_id: str, request: Request) -> dict:
    app = services(request)
    app.images.delete(await app.store.delete_session(session_id))
    return {"deleted": session_id}


@router.get("/{session_id}/turns")
async def session_turns(session_id: str, request: Request) -> dict:
    store = services(request).store
    return {"session": await store.get_session(session_id), "turns": await store.list_turns(session_id)}


class BranchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turn_id: int


@router.post("/{session_id}/branch")
async def branch(session_id: str, request: Request) -> dict:
    """Show the branch through a turn (a sibling picked with ‹ ›): its latest continuation."""
    body = await read_json(request, BranchRequest)
    store = services(request).store
    turns = await store.branch(session_id, body.turn_id)
    return {"session": await store.get_session(session_id), "turns": turns}


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: Literal[1, -1, 0]  # 👍, 👎, none
    comment: str = Field("", max_length=MAX_COMMENT_CHARS)


@turns_router.put("/turns/{turn_id}/feedback")
async def feedback(turn_id: int, request: Request) -> dict:
    body = await read_json(request, Feedback)
    return await services(request).store.set_feedback(turn_id, body.rating, body.comment.strip())


@turns_router.get("/search")
async def search_messages(request: Request, q: str = Query(..., max_length=200), session_id: str | None = None,
                          from_: str | None = Query(None, alias="from"), to: str | None = None,
                          emotion: str | None = Query(None, max_length=40), intent: str | None = Query(None, max_length=40),
                          limit: int = Query(30, ge=1, le=200)) -> dict:
    """Message text and session titles of every session (Korean particles attached are found)."""
    if not q.strip():
        raise BadRequest("q must not be empty", code="empty_query")
    store = services(request).store
    results = await search(store.connection, q.strip(), session_id, parse_day(from_, "from"), parse_day(to, "to"), emotion,
                           intent, limit)
    return {"query": q.strip(), "results": results}
