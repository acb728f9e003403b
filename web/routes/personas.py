"""Personas (도우미): list, create, read, edit, delete (store/personas.py). Every field is checked
here: a model must be one the library can run, documents must exist, tools must be chat tools."""
from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from core.errors import InvalidInput, NotFound
from documents.library import DocumentLibrary
from turns.chat_tools import BUILTIN
from web.json_body import read_json
from web.params import require_text
from web.services import Library, MaybeModels, Memories, Personas

router = APIRouter(prefix="/api/personas")
COLOR = re.compile(r"^(?:#[0-9a-fA-F]{6})?$")
MAX_PROMPT_CHARS = 8000


class PersonaFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    description: str = Field("", max_length=300)
    icon: str = Field("", max_length=8)
    color: str = Field("", max_length=7)
    system_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)  # None: the chat model's own
    model: str = Field("", max_length=200)  # a model library id; "": the configured chat model
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    documents: list[str] = Field(default_factory=list, max_length=200)
    tools: list[str] = Field(default_factory=list, max_length=8)
    memory: Literal["off", "shared", "own"] = "shared"


async def _checked(body: PersonaFields, fields: set[str], library: DocumentLibrary, models) -> dict:
    """The fields sent, each checked (422 or 404 naming the field)."""
    values = {name: getattr(body, name) for name in fields}
    if "name" in values:
        values["name"] = require_text((values["name"] or "").strip(), "name", 40, "name")
    if "color" in values and not COLOR.match(values["color"]):
        raise InvalidInput("color: a colour as #rrggbb (or empty)", code="invalid_color")
    if values.get("model") and (models is None or values["model"] not in models.catalog.models):
        raise NotFound(f"model: no model {values['model']!r} in the model library (모델)", code="model_not_found")
    for document_id in values.get("documents", []):
        try:
            await library.get(document_id)
        except NotFound as exc:
            raise NotFound(f"documents: no document {document_id[:64]!r}", code="document_not_found") from exc
    unknown = [name for name in values.get("tools", []) if name not in BUILTIN]
    if unknown:
        raise InvalidInput(f"tools: unknown {unknown[0]!r} (these exist: {', '.join(BUILTIN)})", code="invalid_tools")
    if "tools" in values:
        values["tools"] = list(dict.fromkeys(values["tools"]))
    return values


@router.get("")
async def list_personas(personas: Personas) -> dict:
    return {"personas": await personas.all()}


@router.post("", status_code=201)
async def create_persona(request: Request, personas: Personas, library: Library, models: MaybeModels) -> dict:
    body = await read_json(request, PersonaFields)
    if body.name is None:
        raise InvalidInput("name: Field required", code="empty_name")
    return await personas.create(await _checked(body, set(PersonaFields.model_fields), library, models))


@router.get("/{persona_id}")
async def get_persona(persona_id: str, personas: Personas) -> dict:
    return await personas.get(persona_id)


@router.put("/{persona_id}")
async def change_persona(persona_id: str, request: Request, personas: Personas, library: Library,
                         models: MaybeModels) -> dict:
    body = await read_json(request, PersonaFields)
    await personas.get(persona_id)  # 404 before any field's error
    return await personas.update(persona_id, await _checked(body, set(body.model_fields_set), library, models))


@router.delete("/{persona_id}")
async def delete_persona(persona_id: str, personas: Personas, memory: Memories) -> dict:
    """Its conversations go on with the plain assistant; its own memories go with it."""
    await personas.delete(persona_id)  # 404 / 409 for the default
    await memory.drop_scope(persona_id)
    return {"deleted": persona_id}
