"""Conversations: list, create, rename, delete, and a conversation's turns."""
from __future__ import annotations

from dataclasses import replace
from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from core.errors import AppError, InvalidInput
from core.threads import run_blocking
from llm_engine import LlmEngine
from store.turn_search import search
from turns.context_view import context_view, conversation_for
from turns.persona_use import engine_for
from turns.turn_memory import stored_part
from web.json_body import read_json
from web.params import clean_title, parse_day
from web.services import AppSettings, Images, MaybeModels, Memories, Personas, Sessions, Slot, Windows

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
async def list_sessions(request: Request, sessions: Sessions) -> dict:
    return {"sessions": await sessions.list_sessions()}


@router.post("", status_code=201)
async def new_session(request: Request, sessions: Sessions, settings: AppSettings) -> dict:
    body = await read_json(request, NewSession)
    return await sessions.create_session(clean_title(body.title, settings.server.max_title_chars))


@router.patch("/{session_id}")
async def rename_session(session_id: str, request: Request, sessions: Sessions, settings: AppSettings) -> dict:
    body = await read_json(request, RenameSession)
    title = clean_title(body.title, settings.server.max_title_chars)
    if not title:
        raise AppError("title must not be empty", code="invalid_request", status=422)
    return await sessions.rename_session(session_id, title)


@router.delete("/{session_id}")
async def delete_session(session_id: str, request: Request, sessions: Sessions, images: Images) -> dict:
    images.delete(await sessions.delete_session(session_id))
    return {"deleted": session_id}


@router.get("/{session_id}/context")
async def session_context(session_id: str, request: Request, sessions: Sessions, slot: Slot, windows: Windows,
                          personas: Personas, memory: Memories, settings: AppSettings, models: MaybeModels,
                          turn_id: int | None = Query(None, ge=1)) -> dict:
    """What the next turn's prompt will hold on this branch (the active one, or the one down to
    `turn_id`): system (the persona's prompt), memories, summary, the kept turns, with token counts."""
    conversation = await conversation_for(windows, sessions, session_id, turn_id)  # 404s first
    persona = await personas.of_session(session_id)
    conversation = replace(conversation, system_prompt=persona["system_prompt"],
                           memory=await stored_part(memory, settings.memory, session_id, persona))
    engine = slot.registry.own(slot.registry.resolve(engine_for(persona, models)))  # the persona's model, or chat's
    if not isinstance(engine, LlmEngine) or engine.cfg.model_path is None:
        raise AppError("the context view needs a local chat model (GGUF); the chat model is remote or not set",
                       code="context_unavailable", status=409)
    view = await run_blocking(context_view, conversation, engine.cfg, engine.n_ctx)
    return view | {"persona": {"id": persona["id"], "name": persona["name"], "version": persona["version"]}}


@router.get("/{session_id}/turns")
async def session_turns(session_id: str, request: Request, sessions: Sessions) -> dict:
    return {"session": await sessions.get_session(session_id), "turns": await sessions.list_turns(session_id)}


class BranchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turn_id: int


@router.post("/{session_id}/branch")
async def branch(session_id: str, request: Request, sessions: Sessions) -> dict:
    """Show the branch through a turn (a sibling picked with ‹ ›): its latest continuation."""
    body = await read_json(request, BranchRequest)
    turns = await sessions.branch(session_id, body.turn_id)
    return {"session": await sessions.get_session(session_id), "turns": turns}


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: Literal[1, -1, 0]  # 👍, 👎, none
    comment: str = Field("", max_length=MAX_COMMENT_CHARS)


@turns_router.put("/turns/{turn_id}/feedback")
async def feedback(turn_id: int, request: Request, sessions: Sessions) -> dict:
    body = await read_json(request, Feedback)
    return await sessions.set_feedback(turn_id, body.rating, body.comment.strip())


@turns_router.get("/search")
async def search_messages(sessions: Sessions, q: str = Query(..., max_length=200), session_id: str | None = None,
                          from_: str | None = Query(None, alias="from"), to: str | None = None,
                          emotion: str | None = Query(None, max_length=40), intent: str | None = Query(None, max_length=40),
                          limit: int = Query(30, ge=1, le=200)) -> dict:
    """Message text and session titles of every session (Korean particles attached are found)."""
    if not q.strip():
        raise InvalidInput("q must not be empty", code="empty_query")
    results = await search(sessions.db.connection, q.strip(), session_id, parse_day(from_, "from"), parse_day(to, "to"), emotion,
                           intent, limit)
    return {"query": q.strip(), "results": results}
