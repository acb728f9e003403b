"""Conversations: list, create, rename, delete, and a conversation's turns."""
from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from errors import AppError
from json_body import read_json
from web import clean_title, services

router = APIRouter(prefix="/api/sessions")


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
