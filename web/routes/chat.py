"""POST /chat_stream_sse_fetch: a chat message (with images: the vision model) as the page's
SSE stream. Everything that can refuse the request runs before anything is created or stored."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from core.contracts import ChatEngine, ChatInput
from core.errors import AppError, NotFound
from core.threads import run_blocking
from settings import Settings, env_name
from store.sessions import SessionStore
from turns.answer import AnswerTurn
from turns.chat_tools import ChatTools
from turns.persona_use import PersonaUse, persona_for_chat, persona_use
from turns.recorder import Branching, SessionRecorder
from turns.references import References
from turns.turn_memory import TurnMemory
from vram_guard import Priority
from web.chat_input import max_chat_body, vision_lease
from web.json_body import read_json
from web.leases import TurnStream, page_turn
from web.params import require_text
from web.services import (
    AppSettings,
    Images,
    Library,
    MaybeModels,
    MaybeSandbox,
    Memories,
    MemoryProposer,
    Personas,
    Sessions,
    Slot,
    ToolConfirmations,
    Windows,
)

router = APIRouter()


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())  # later features add fields
    message: str | None = None  # required, except with "regenerate"
    session_id: str | None = None
    model: str = "chat"  # "chat" or a name from extra_chat_models
    images: list[str] = Field(default_factory=list, max_length=64)  # data URLs, as the OpenAI API carries them
    image_ids: list[str] = Field(default_factory=list, max_length=64)  # earlier images of this session, asked about again
    doc_scope: Literal["all", "session", "none"] = "all"  # which documents may answer
    regenerate: int | None = None  # an answer's id: answer its question again (a sibling answer)
    edit: int | None = None  # a user turn's id: "message" replaces it (a sibling turn, then its answer)
    tools: list[str] = Field(default_factory=list, max_length=8)  # built-in tools this answer may use
    allow_run_python: bool = False  # run_python without asking (the user allowed it for the conversation)
    persona_id: str | None = Field(None, max_length=64)  # a new conversation's persona (store/personas.py)


def _checked_message(body: ChatRequest, settings: Settings) -> str:
    if body.regenerate is not None:
        return ""  # the question is the stored one
    if body.message is None:
        raise AppError("message: Field required", code="invalid_request", status=422)
    message = require_text(body.message.strip(), "message", settings.server.max_message_chars, "message")
    if body.model in ("image", "vision"):  # not chat models: each has its own request
        raise AppError(f"{body.model!r} is not a chat model: generate pictures with POST /api/images/generate; "
                       f"ask about images by sending them with the message", code="not_a_chat_model", status=422)
    return message


async def _branching(sessions: SessionStore, body: ChatRequest) -> tuple[Branching, str, str] | None:
    """For a regenerate or an edit: where the turn goes, its session and the message (422/404 else)."""
    if body.regenerate is None and body.edit is None:
        return None
    if body.regenerate is not None and body.edit is not None:
        raise AppError("send either regenerate or edit, not both", code="invalid_request", status=422)
    if body.images or body.image_ids:
        raise AppError("regenerate and edit take no images", code="invalid_request", status=422)
    turn_id = body.regenerate if body.regenerate is not None else body.edit
    assert turn_id is not None  # one of the two, checked above
    turn = await sessions.get_turn(turn_id)  # 404
    if body.session_id is not None and body.session_id != turn["session_id"]:
        raise NotFound(f"turn not found in this session: {turn['id']}", code="turn_not_found")
    wanted = "assistant" if body.regenerate is not None else "user"
    if turn["role"] != wanted or turn["kind"] != "chat":
        raise AppError(f"turn {turn['id']} is not a chat {'answer' if wanted == 'assistant' else 'message'}",
                       code="invalid_turn", status=422)
    if body.edit is not None:
        return Branching(turn["parent_id"]), turn["session_id"], (body.message or "").strip()
    question = await sessions.get_turn(turn["parent_id"]) if turn["parent_id"] is not None else None
    if question is None or question["role"] != "user":
        raise AppError(f"answer {turn['id']} has no question to answer again", code="invalid_turn", status=422)
    if await sessions.turn_has_images(question["id"]):
        raise AppError("an answer about images cannot be regenerated yet: ask again with the images",
                       code="invalid_turn", status=422)
    return Branching(question["parent_id"], answer_again=question["id"]), turn["session_id"], question["text"]


async def _check_session_images(sessions: SessionStore, body: ChatRequest) -> None:
    if body.session_id is not None:
        await sessions.get_session(body.session_id)
    for image_id in body.image_ids:
        if body.session_id is None or await sessions.image_session(image_id) != body.session_id:
            raise NotFound(f"image not found in this session: {image_id[:64]}", code="image_not_found")


async def _session_of(sessions: SessionStore, body: ChatRequest) -> str | None:
    """The conversation the request continues (a regenerate or an edit names it by its turn)."""
    turn_id = body.regenerate if body.regenerate is not None else body.edit
    if body.session_id is not None or turn_id is None:
        return body.session_id
    return (await sessions.get_turn(turn_id))["session_id"]  # 404 for an unknown turn


def _tools(body: ChatRequest, use: PersonaUse, wants_vision: bool, slot_engines: list[str]) -> list[str]:
    """The answer's tools: the request's and the persona's (a message with images takes none)."""
    if body.tools and wants_vision:
        raise AppError("tools work with text messages; send the images without tools", code="invalid_request",
                       status=422)
    if "generate_image" in body.tools and "image" not in slot_engines:
        raise AppError(f"generate_image needs an image model: choose one in 모델 or set {env_name('image', 'model_path')}",
                       code="image_not_configured", status=422)
    persona_tools = [name for name in use.tools if name != "generate_image" or "image" in slot_engines]
    tools = [] if wants_vision else list(dict.fromkeys([*body.tools, *persona_tools]))
    ChatTools(tools, "")  # unknown tool names: 422 now
    return tools


@router.post("/chat_stream_sse_fetch")
async def chat_stream(request: Request, settings: AppSettings, slot: Slot, sessions: Sessions, images: Images,
                      library: Library, sandbox: MaybeSandbox, confirmations: ToolConfirmations,
                      windows: Windows, personas: Personas, memory: Memories, proposer: MemoryProposer,
                      models: MaybeModels) -> TurnStream:
    body = await read_json(request, ChatRequest, max_chat_body(settings))
    message = _checked_message(body, settings)
    wants_vision = bool(body.images or body.image_ids)
    persona = await persona_for_chat(personas, await _session_of(sessions, body), body.persona_id)  # 404 / 422
    use = persona_use(persona, models, body.model)
    tools = _tools(body, use, wants_vision, slot.registry.names)
    lease = (vision_lease(slot, settings, len(body.images) + len(body.image_ids)) if wants_vision
             else slot.lease(use.engine, Priority.CHAT, ChatEngine))

    async def setup() -> tuple[str, AnswerTurn]:
        branch = await _branching(sessions, body)
        await _check_session_images(sessions, body)
        stored = await run_blocking(images.save_all, body.images)
        if branch is not None:
            branching, session_id, question = branch
        else:
            branching, session_id, question = None, body.session_id or (await sessions.create_session())["id"], message
        await personas.used_by(session_id, persona)  # a new chat starts with it
        shown = (*body.image_ids, *(image.id for image in stored))
        chat_tools = ChatTools(tools, session_id, library=library, sessions=sessions, sandbox=sandbox,
                               confirmations=confirmations, allow_run=body.allow_run_python) if tools else None
        return session_id, AnswerTurn(
            ChatInput([], question, shown, system_prompt=use.system_prompt, session_id=session_id,
                      sampling=use.sampling),
            SessionRecorder(sessions, session_id, branching),
            References(library, body.doc_scope, settings.rag.context_chars, use.documents), stored,
            settings.server.answer_checkpoint_s, chat_tools, windows,
            TurnMemory(memory, settings.memory, persona, proposer))

    return await page_turn(lease, setup)  # 404 / 429 / 503 / 507 first: a refused request creates nothing


class ToolDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: StrictBool


@router.post("/api/tools/{call_id}/decision")
async def decide_tool_call(call_id: str, request: Request, confirmations: ToolConfirmations) -> dict:
    """The user's yes or no to a code run a chat answer is waiting on."""
    body = await read_json(request, ToolDecision)
    if not confirmations.decide(call_id, body.run):
        raise NotFound(f"no tool call waits for a decision: {call_id[:64]}", code="tool_call_not_waiting")
    return {"id": call_id, "run": body.run}
