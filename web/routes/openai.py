"""The OpenAI-compatible API under /v1, through the same slot, queue and turn runner as the page:
models, chat completions (streamed or not, images to the vision model, JSON via grammar),
embeddings (the shared CPU embedder) and image generation. Stateless: nothing is stored in
the page's sessions. Errors in OpenAI's shape, never 200 with an error body.
"""
from __future__ import annotations

import base64
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from core.contracts import ChatEngine, ChatInput, ImageGenerator, MemoryPart, Window
from core.errors import AppError, InvalidInput, NotFound
from core.events import ChatDone, Error, Event, PictureMade, Token
from core.threads import run_blocking
from memories.book import MemoryBook
from models.image_families import family_defaults
from settings import env_name
from store.personas import PersonaStore
from turns.answer import AnswerTurn
from turns.persona_use import PERSONA_PREFIX, PersonaUse, persona_use, sampling_of
from turns.pictures import GenerateRequest, ImageTurn, validate_request
from turns.references import References
from turns.runner import Turn
from turns.turn_memory import memory_part
from vram_guard import ModelSlot, Priority
from web.chat_input import max_chat_body, vision_lease
from web.json_body import MAX_JSON_BYTES, read_json
from web.leases import TurnStream
from web.openai_format import (
    ChatCompletionRequest,
    CompletionEncoder,
    error_body,
    image_urls,
    sse,
    text_of,
)
from web.openai_tools import assistant_calls, tool_plan
from web.services import AppSettings, Embedder, Images, Library, MaybeModels, Memories, Personas, Slot

router = APIRouter(prefix="/v1")
OWNER = "pkc-ai-one"
ROLES = {"vision": "vision", "image": "image"}


def _models(slot: ModelSlot, embedder, library) -> list[dict]:
    """The slot's roles and engines, then every usable model of the library by its id."""
    models = [{"id": name, "object": "model", "created": 0, "owned_by": OWNER,
               "role": ROLES.get(name, ROLES.get(name.split("-")[0], "chat")), "label": slot.registry.label(name)}
              for name in slot.registry.names]
    models.append({"id": "embeddings", "object": "model", "created": 0, "owned_by": OWNER, "role": "embeddings",
                   "label": embedder.spec.kind})
    for model in (library.catalog.models.values() if library is not None else ()):
        roles = [role for role in model.roles if role in ("chat", "vision", "image")]
        if model.status == "ok" and roles:
            models.append({"id": model.id, "object": "model", "created": 0, "owned_by": OWNER,
                           "role": "chat" if "chat" in roles else roles[0], "label": model.name})
    return models


async def _all_models(slot: ModelSlot, embedder, library, personas: PersonaStore) -> list[dict]:
    """The models, then each persona as "persona:<id>" (its prompt, model and sampling apply)."""
    return _models(slot, embedder, library) + [
        {"id": PERSONA_PREFIX + persona["id"], "object": "model", "created": 0, "owned_by": OWNER, "role": "persona",
         "label": persona["name"], "description": persona["description"]} for persona in await personas.all()]


@router.get("/models")
async def list_models(slot: Slot, embedder: Embedder, library: MaybeModels, personas: Personas) -> dict:
    return {"object": "list", "data": await _all_models(slot, embedder, library, personas)}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, slot: Slot, embedder: Embedder, library: MaybeModels, personas: Personas) -> dict:
    for model in await _all_models(slot, embedder, library, personas):
        if model["id"] == model_id:
            return model
    raise NotFound(f"the model {model_id!r} does not exist; GET /v1/models lists them", code="model_not_found")


# ---- chat ----------------------------------------------------------------------------------------
def _split(body: ChatCompletionRequest) -> tuple[str, list[dict[str, Any]], str, list[str]]:
    """(system prompt, history, the last user message ("" when tool results end it), its image
    data URLs). Tool messages must answer a call made earlier in the conversation."""
    system = "\n\n".join(text_of(m) for m in body.messages if m.role in ("system", "developer"))
    turns = [(i, m) for i, m in enumerate(body.messages) if m.role in ("user", "assistant", "tool")]
    if not turns or turns[-1][1].role not in ("user", "tool"):
        raise InvalidInput("the last message must be from the user (or a tool result)", code="invalid_messages")
    history: list[dict[str, Any]] = []
    calls: set[str] = set()
    for index, message in turns:
        if message.role == "assistant" and message.tool_calls:
            made = assistant_calls(message.tool_calls, index)
            calls.update(c["id"] for c in made)
            history.append({"role": "assistant", "content": text_of(message), "tool_calls": made})
        elif message.role == "tool":
            if message.tool_call_id not in calls:
                raise InvalidInput(f"messages[{index}].tool_call_id {message.tool_call_id!r} answers no earlier "
                                   "tool call", code="invalid_messages", status=400)
            history.append({"role": "tool", "content": text_of(message), "tool_call_id": message.tool_call_id})
        else:
            history.append({"role": message.role, "content": text_of(message)})
    last = turns[-1][1]
    if last.role == "tool":
        return system, history, "", []
    text = text_of(last).strip()
    if not text:
        raise InvalidInput("the last user message has no text", code="empty_message")
    return system, history[:-1], text, image_urls(last)


def _chat_lease(slot: ModelSlot, settings, model: str, images: int):
    if model not in slot.registry.names and model != "vision" or model == "image":
        raise NotFound(f"the model {model!r} does not exist; GET /v1/models lists them", code="model_not_found")
    if images or model == "vision":
        return vision_lease(slot, settings, images)
    return slot.lease(model, Priority.CHAT, ChatEngine)


async def _persona(personas: PersonaStore, model: str, library) -> PersonaUse | None:
    """"persona:<id>": the persona (404 in OpenAI's shape for an unknown one); None for a model."""
    if not model.startswith(PERSONA_PREFIX):
        return None
    try:
        persona = await personas.get(model[len(PERSONA_PREFIX):])
    except NotFound as exc:
        raise NotFound(f"the model {model!r} does not exist; GET /v1/models lists them", code="model_not_found") from exc
    return persona_use(persona, library)


async def _memory_part(book: MemoryBook, cfg, use: PersonaUse | None, message: str) -> MemoryPart | None:
    """A persona's memories closest to the message (stateless: no conversation keeps a part)."""
    if use is None or not cfg.enabled or not message:
        return None
    found = await book.recall(message, book.scopes(use.persona))
    return memory_part([f["text"] for f in found], cfg, [message])


@router.post("/chat/completions")
async def chat_completions(request: Request, settings: AppSettings, slot: Slot, images: Images,
                           library: MaybeModels, personas: Personas, memory: Memories, documents: Library) -> Response:
    body = await read_json(request, ChatCompletionRequest, max_chat_body(settings))
    system, history, message, urls = _split(body)
    plan = tool_plan(body.tools, body.tool_choice, body.parallel_tool_calls)  # 400 before anything loads
    use = await _persona(personas, body.model, library)
    if use is not None:
        engine, sampling = use.engine, sampling_of(use.persona, body.sampling())
        system = "\n\n".join(part for part in (use.system_prompt, system) if part)
    else:  # a library id loads it
        engine = library.engine_for_request(body.model) if library is not None else body.model
        sampling = body.sampling()
    ids: list[str] = []  # the uploads of this request: stateless, they go with it

    async def setup() -> tuple[None, AnswerTurn]:
        ids.extend(image.id for image in await run_blocking(images.save_all, urls))
        window = Window(overflow="window" if settings.api.truncate else "refuse", low_water=settings.context.low_water)
        question = ChatInput(history, message, tuple(ids), system_prompt=system, sampling=sampling, tool_plan=plan,
                             window=window, memory=await _memory_part(memory, settings.memory, use, message))
        references = (References(documents, "all", settings.rag.context_chars, use.documents)
                      if use and use.documents else None)
        return None, AnswerTurn(question, references=references)

    try:
        turn = await Turn.start(_chat_lease(slot, settings, engine, len(urls)), setup)  # 404 / 429 / 503 first
    except BaseException:
        if ids:
            images.delete(ids)
        raise
    encoder = CompletionEncoder(body.model, include_usage=bool((body.stream_options or {}).get("include_usage")))
    cleanup = (lambda: images.delete(ids)) if ids else (lambda: None)
    if not body.stream:
        try:
            return await _complete(turn, encoder)
        finally:
            cleanup()
    return await _stream(turn, encoder, cleanup)


async def _complete(turn: Turn[ChatEngine], encoder: CompletionEncoder) -> JSONResponse:
    failed: list[Error] = []

    def on_event(event: Event) -> None:
        if isinstance(event, Error):
            failed.append(event)
        else:
            encoder.chunks(event)

    await turn.run_to_end(on_event)
    if failed:
        status, error = error_body(failed[0])
        return JSONResponse(error, status_code=status)
    return JSONResponse(encoder.completion())


async def _stream(turn: Turn[ChatEngine], encoder: CompletionEncoder, cleanup: Callable[[], None]) -> Response:
    """Read up to the first token before answering, so an early error (a prompt too long for
    the context, a model that cannot load) is an HTTP error, not a 200 stream."""
    first: list[bytes] = []
    events = turn.events()

    async def end() -> None:  # also when the client left before the stream started
        try:
            await events.aclose()
        finally:
            turn.close()
            cleanup()

    try:
        async for event in events:
            if isinstance(event, Error):  # before any token: an HTTP error, and nothing left behind
                await end()
                status, error = error_body(event)
                return JSONResponse(error, status_code=status)
            first += [sse(chunk) for chunk in encoder.chunks(event)]
            if isinstance(event, (Token, ChatDone)):
                break
    except BaseException:
        await end()
        raise

    async def frames() -> AsyncGenerator[bytes, None]:
        for frame in first:
            yield frame
        async for event in events:
            if isinstance(event, Error):
                yield sse(error_body(event)[1])
                break
            for chunk in encoder.chunks(event):
                yield sse(chunk)
        yield sse("[DONE]")

    return TurnStream(frames(), turn, on_end=end)


# ---- embeddings ------------------------------------------------------------------------------------
class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    input: str | list[str] = Field(...)
    model: str = "embeddings"
    encoding_format: Literal["float", "base64"] = "float"


@router.post("/embeddings")
async def embeddings(request: Request, shared: Embedder) -> dict:
    body = await read_json(request, EmbeddingsRequest, 8 * MAX_JSON_BYTES)
    if body.model not in ("embeddings", shared.spec.kind):
        raise NotFound(f"the model {body.model!r} does not exist; use 'embeddings'", code="model_not_found")
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or len(texts) > 2048 or any(not t.strip() for t in texts):
        raise InvalidInput("input must be one or up to 2048 non-empty strings", code="invalid_input")
    vectors = await run_blocking(lambda: shared.get().encode(texts))
    data = [{"object": "embedding", "index": i,
             "embedding": (base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
                           if body.encoding_format == "base64" else [float(x) for x in v])}
            for i, v in enumerate(vectors)]
    words = sum(len(t.split()) for t in texts)  # the embedder has no token count to report; words stand in
    return {"object": "list", "data": data, "model": shared.get().name,
            "usage": {"prompt_tokens": words, "total_tokens": words}}


# ---- images -----------------------------------------------------------------------------------------
class ImagesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str
    model: str = "image"
    n: int = 1
    size: str | None = None  # "WIDTHxHEIGHT"; None: the model family's default
    response_format: Literal["b64_json", "url"] = "b64_json"
    quality: str | None = None  # accepted for compatibility, not used
    style: str | None = None
    user: str | None = None
    # this product's extras
    negative_prompt: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    seed: int = -1
    sampler: str = "default"
    scheduler: str = "default"


def _size(size: str | None) -> tuple[int | None, int | None]:
    if size is None or size == "auto":
        return None, None
    try:
        width, height = (int(part) for part in size.lower().split("x"))
    except ValueError:
        raise AppError(f"size must be WIDTHxHEIGHT, e.g. 512x512 (got {size[:20]!r})", code="invalid_size",
                       status=400) from None
    return width, height


@router.post("/images/generations")
async def images_generations(request: Request, settings: AppSettings, slot: Slot, images: Images) -> dict:
    body = await read_json(request, ImagesRequest)
    if body.model != "image" or "image" not in slot.registry.names:
        raise NotFound(f"no image model: set {env_name('image', 'model_path')} (GET /v1/models lists the models)",
                       code="model_not_found")
    if body.response_format == "url":
        raise InvalidInput("response_format 'url' is not offered (nothing is stored); use b64_json",
                         code="unsupported_response_format")
    width, height = _size(body.size)
    request_body = GenerateRequest(prompt=body.prompt, negative_prompt=body.negative_prompt, width=width,
                                   height=height, steps=body.steps, cfg_scale=body.cfg_scale, seed=body.seed,
                                   sampler=body.sampler, scheduler=body.scheduler, batch_count=body.n)
    params = validate_request(request_body, settings.image, family_defaults(settings.image))
    lease = slot.lease("image", Priority.IMAGE, ImageGenerator)
    turn = await Turn.start(lease, lambda: (None, ImageTurn(params, images)))  # no recorder: nothing is stored
    pictures: list[PictureMade] = []

    def on_event(event: Event) -> None:
        if isinstance(event, Error):
            raise AppError(event.message, code=event.code, status=event.status)
        if isinstance(event, PictureMade):
            pictures.append(event)

    await turn.run_to_end(on_event)
    return {"created": int(time.time()),
            "data": [{"b64_json": base64.b64encode(p.png).decode("ascii"), "revised_prompt": None,
                      "seed": p.seed} for p in pictures]}
