"""Memories (memories/): list and search, add, edit, turn off, delete; the proposals the model
made in quiet conversations; a conversation's "이 대화에서 기억 사용 안 함" switch."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from core.errors import AppError, InvalidInput, NotFound
from core.tokens import tokenize
from memories.cues import MAX_FACT_CHARS
from store.personas import PersonaStore
from web.json_body import read_json
from web.params import require_text
from web.services import Memories, Personas, Sessions

router = APIRouter(prefix="/api/memories")
sessions_router = APIRouter(prefix="/api/sessions")


class NewMemory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=10_000)
    persona_id: str | None = Field(None, max_length=64)  # None: every chat


class MemoryChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, max_length=10_000)
    enabled: StrictBool | None = None
    persona_id: str | None = Field(None, max_length=64)


class Acceptance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, max_length=10_000)  # the proposal as the user edited it


class SessionMemory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    memory_off: StrictBool


def _text(text: str) -> str:
    return require_text(" ".join(text.split()), "text", MAX_FACT_CHARS, "memory")


async def _scope(personas: PersonaStore, persona_id: str | None) -> str | None:
    if persona_id in (None, ""):
        return None
    try:
        await personas.get(persona_id)
    except NotFound as exc:
        raise NotFound(f"persona_id: no persona {persona_id!r}", code="persona_not_found") from exc
    return persona_id


def _matches(memory: dict, q: str) -> bool:
    """A search of the list: the words (Korean bigrams) of `q` all in the memory, or `q` in it."""
    text = memory["text"].casefold()
    if q.casefold() in text:
        return True
    wanted = set(tokenize(q))
    return bool(wanted) and wanted <= set(tokenize(memory["text"]))


@router.get("")
async def list_memories(memory: Memories, q: str = Query("", max_length=200),
                        persona_id: str | None = Query(None, max_length=64)) -> dict:
    """`persona_id`: one persona's own memories ("" for the ones every chat shares)."""
    rows = await memory.store.all()
    if persona_id is not None:
        rows = [row for row in rows if (row["persona_id"] or "") == persona_id]
    if q.strip():
        rows = [row for row in rows if _matches(row, q.strip())]
    return {"memories": rows}


@router.post("", status_code=201)
async def add_memory(request: Request, memory: Memories, personas: Personas) -> dict:
    body = await read_json(request, NewMemory)
    return await memory.add(_text(body.text), await _scope(personas, body.persona_id))


@router.get("/proposals")
async def list_proposals(memory: Memories) -> dict:
    return {"proposals": await memory.store.proposals()}


@router.put("/{memory_id}")
async def change_memory(memory_id: int, request: Request, memory: Memories, personas: Personas) -> dict:
    body = await read_json(request, MemoryChange)
    changes: dict = {}
    if body.text is not None:
        changes["text"] = _text(body.text)
    if body.enabled is not None:
        changes["enabled"] = body.enabled
    if "persona_id" in body.model_fields_set:
        changes["persona_id"] = await _scope(personas, body.persona_id)
    if not changes:
        raise InvalidInput("send text, enabled or persona_id", code="empty_change")
    return await memory.edit(memory_id, changes)


@router.delete("/{memory_id}")
async def delete_memory(memory_id: int, memory: Memories) -> dict:
    await memory.delete(memory_id)
    return {"deleted": memory_id}


async def _open_proposal(memory: Memories, proposal_id: int) -> dict:
    proposal = await memory.store.proposal(proposal_id)  # 404
    if proposal["status"] != "open":
        raise AppError(f"proposal {proposal_id} was already {proposal['status']}", code="proposal_settled", status=409)
    return proposal


@router.post("/proposals/{proposal_id}/accept", status_code=201)
async def accept_proposal(proposal_id: int, request: Request, memory: Memories) -> dict:
    body = await read_json(request, Acceptance) if await request.body() else Acceptance()
    proposal = await _open_proposal(memory, proposal_id)
    saved = await memory.remember(_text(body.text if body.text is not None else proposal["text"]),
                                  proposal["persona_id"], (proposal["session_id"], proposal["turn_id"]))
    assert saved.memory is not None
    return {"proposal": await memory.store.settle(proposal_id, "accepted", saved.memory["id"]), "memory": saved.memory}


@router.post("/proposals/{proposal_id}/reject")
async def reject_proposal(proposal_id: int, memory: Memories) -> dict:
    await _open_proposal(memory, proposal_id)
    return {"proposal": await memory.store.settle(proposal_id, "rejected")}


@sessions_router.get("/{session_id}/memory")
async def session_memory(session_id: str, memory: Memories, sessions: Sessions) -> dict:
    await sessions.get_session(session_id)  # 404
    state = await memory.store.session_state(session_id)
    await memory.ready()
    return {"memory_off": state["memory_off"], "memories": [{"id": memory_id, "text": text} for memory_id, text in
                                                            memory.texts(state["memory_ids"]).items()]}


@sessions_router.put("/{session_id}/memory")
async def set_session_memory(session_id: str, request: Request, memory: Memories, sessions: Sessions) -> dict:
    body = await read_json(request, SessionMemory)
    await sessions.get_session(session_id)  # 404
    await memory.store.set_session(session_id, memory_off=body.memory_off)
    return {"memory_off": body.memory_off}
