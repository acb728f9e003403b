"""What a persona (store/personas.py) changes in a chat answer, for every path that answers
(the page's chat, /v1 with "model": "persona:<id>"): the system prompt, the model, sampling, the
documents it answers from and the tools it has on. A conversation's persona is read at each
turn, so an edit applies to its next turns and a deleted persona's prompt is never used again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog.library import ModelLibrary
from core.contracts import Sampling
from core.errors import AppError
from store.personas import DEFAULT_ID, PersonaStore

PERSONA_PREFIX = "persona:"  # /v1's model name for a persona


@dataclass(frozen=True)
class PersonaUse:
    persona: dict[str, Any]
    engine: str  # the slot's engine for its model ("chat": the configured one)
    system_prompt: str | None  # None: the chat model's own setting
    sampling: Sampling
    tools: tuple[str, ...]
    documents: frozenset[str]

    @property
    def is_default(self) -> bool:
        return bool(self.persona["id"] == DEFAULT_ID)


def sampling_of(persona: dict[str, Any], over: Sampling | None = None) -> Sampling:
    """The persona's sampling, under what the request itself asked for (/v1's client)."""
    over = over or Sampling()
    return Sampling(max_tokens=over.max_tokens if over.max_tokens is not None else persona["max_tokens"],
                    temperature=over.temperature if over.temperature is not None else persona["temperature"],
                    top_p=over.top_p if over.top_p is not None else persona["top_p"], seed=over.seed, stop=over.stop,
                    json_schema=over.json_schema, json_object=over.json_object)


def engine_for(persona: dict[str, Any], library: ModelLibrary | None, requested: str = "chat") -> str:
    """The engine that answers: a model the request named, else the persona's (a library id,
    made into an engine like any library model), else the configured chat model."""
    if requested != "chat" or not persona["model"]:
        return requested
    if library is None:
        raise AppError("the model library is not ready yet", code="models_unavailable", status=503)
    try:
        return library.engine_for_request(persona["model"])
    except AppError as exc:
        raise AppError(f"{persona['name']}: its model {persona['model']!r} cannot be used ({exc.message}); choose "
                       f"another in the persona's settings", code=exc.code, status=exc.status) from exc


def persona_use(persona: dict[str, Any], library: ModelLibrary | None, requested_model: str = "chat",
                sampling: Sampling | None = None) -> PersonaUse:
    return PersonaUse(persona, engine_for(persona, library, requested_model), persona["system_prompt"],
                      sampling_of(persona, sampling), tuple(persona["tools"]), frozenset(persona["documents"]))


async def persona_for_chat(personas: PersonaStore, session_id: str | None, persona_id: str | None) -> dict[str, Any]:
    """A new conversation's chosen persona (404 for an unknown one), or the one an existing
    conversation keeps."""
    if session_id is None:
        return await personas.get(persona_id or DEFAULT_ID)
    persona = await personas.of_session(session_id)
    if persona_id is not None and persona_id != persona["id"]:
        raise AppError("persona_id chooses the persona of a new conversation; this one keeps "
                       f"{persona['name']!r} (start a new chat for another)", code="persona_fixed", status=422)
    return persona
