"""The OpenAI-compatible API under /v1, through the same slot, queue and turn runner as the page:
models, chat completions (streamed or not, images to the vision model, JSON via grammar),
embeddings (the shared CPU embedder) and image generation. Stateless: nothing is stored in
the page's sessions. Errors in OpenAI's shape, never 200 with an error body.
"""
from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from conversation import ChatServices
from engine_contracts import ChatEngine, ImageGenerator
from errors import AppError, BadRequest, NotFound
from events import ChatDone, Error, PictureMade, Token
from image_engine import Picture, family_defaults
from image_generation import GenerateRequest, ImageTurn, png_text, validate_request
from image_store import StoredImage, encode_png
from json_body import MAX_JSON_BYTES, read_json
from openai_api import ApiTurn, ChatCompletionRequest, CompletionEncoder, error_body, image_urls, sse, text_of
from routes_chat import max_chat_body, vision_lease
from thread_bridge import run_blocking
from turn_runner import TurnRunner
from vram_guard import Priority
from web import TurnStream, services

router = APIRouter(prefix="/v1")
OWNER = "pkc-ai-one"
ROLES = {"vision": "vision", "image": "image"}


def _models(app: ChatServices, request: Request) -> list[dict]:
    models = [{"id": name, "object": "model", "created": 0, "owned_by": OWNER,
               "role": ROLES.get(name, "chat"), "label": app.slot.model_label(name)} for name in app.slot.engine_names]
    embedder = request.app.state.embedder
    models.append({"id": "embeddings", "object": "model", "created": 0, "owned_by": OWNER, "role": "embeddings",
                   "label": embedder.spec.kind})
    return models


@router.get("/models")
async def list_models(request: Request) -> dict:
    return {"object": "list", "data": _models(services(request), request)}


@router.get("/models/{model_id}")
async def get_model(model_id: str, request: Request) -> dict:
    for model in _models(services(request), request):
        if model["id"] == model_id:
            return model
    raise NotFound(f"the model {model_id!r} does not exist; GET /v1/models lists them", code="model_not_found")


# ---- chat ----------------------------------------------------------------------------------------
def _split(body: ChatCompletionRequest) -> tuple[str, list[dict], str, list[str]]:
    """(system prompt, history, the last user message, its image data URLs)."""
    system = "\n\n".join(text_of(m) for m in body.messages if m.role in ("system", "developer"))
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise BadRequest("the last message must be from the user", code="invalid_messages")
    history = [{"role": m.role, "content": text_of(m)} for m in turns[:-1]]
    message = text_of(turns[-1]).strip()
    if not message:
        raise BadRequest("the last user message has no text", code="empty_message")
    return system, history, message, image_urls(turns[-1])


def _chat_lease(app: ChatServices, model: str, images: int):
    if model not in app.slot.engine_names and model != "vision" or model == "image":
        raise NotFound(f"the model {model!r} does not exist; GET /v1/models lists them", code="model_not_found")
    if images or model == "vision":
        return vision_lease(app, images)
    return app.slot.lease(model, Priority.CHAT, ChatEngine)


@router.post("/chat/completions")
async def chat_completions(request: Request) -> Response:
    app = services(request)
    body = await read_json(request, ChatCompletionRequest, max_chat_body(app.settings))
    system, history, message, urls = _split(body)
    sampling = body.sampling()
    lease = _chat_lease(app, body.model, len(urls))
    lease.enqueue()  # 404 / 429 / 503 now, as an HTTP error
    stored = []
    try:
        stored = await run_blocking(app.images.save_all, urls) if urls else []
    except BaseException:
        lease.release()
        raise
    ids = [image.id for image in stored]
    if lease.engine_name == "vision":
        work = ApiTurn(app, system, history, message, lambda e: e.prepare(system, history, message, ids, sampling))
    else:
        work = ApiTurn(app, system, history, message, lambda e: e.prepare(system, history, message, None, sampling))
    events = TurnRunner(app.slot, lease, None, work).events()
    encoder = CompletionEncoder(body.model, include_usage=bool((body.stream_options or {}).get("include_usage")))
    cleanup = (lambda: app.images.delete(ids)) if ids else (lambda: None)
    if not body.stream:
        try:
            return await _complete(events, encoder)
        finally:
            lease.release()
            cleanup()
    return await _stream(events, encoder, lease, cleanup)


async def _complete(events: AsyncIterator, encoder: CompletionEncoder) -> JSONResponse:
    async with aclosing(events):
        async for event in events:
            if isinstance(event, Error):
                status, error = error_body(event)
                return JSONResponse(error, status_code=status)
            encoder.chunks(event)
    return JSONResponse(encoder.completion())


async def _stream(events: AsyncIterator, encoder: CompletionEncoder, lease, cleanup) -> Response:
    """Read up to the first token before answering, so an early error (a prompt too long for
    the context, a model that cannot load) is an HTTP error, not a 200 stream."""
    first: list[bytes] = []
    try:
        async for event in events:
            if isinstance(event, Error):
                await events.aclose()
                status, error = error_body(event)
                return JSONResponse(error, status_code=status)
            first += [sse(chunk) for chunk in encoder.chunks(event)]
            if isinstance(event, (Token, ChatDone)):
                break
    except BaseException:
        await events.aclose()
        lease.release()
        cleanup()
        raise

    async def frames() -> AsyncIterator[bytes]:
        for frame in first:
            yield frame
        async for event in events:
            if isinstance(event, Error):
                yield sse(error_body(event)[1])
                break
            for chunk in encoder.chunks(event):
                yield sse(chunk)
        yield sse("[DONE]")

    async def end() -> None:  # also when the client left before the stream started
        await events.aclose()
        cleanup()

    return TurnStream(frames(), lease, on_end=end)


# ---- embeddings ------------------------------------------------------------------------------------
class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    input: str | list[str] = Field(...)
    model: str = "embeddings"
    encoding_format: Literal["float", "base64"] = "float"


@router.post("/embeddings")
async def embeddings(request: Request) -> dict:
    body = await read_json(request, EmbeddingsRequest, 8 * MAX_JSON_BYTES)
    shared = request.app.state.embedder
    if body.model not in ("embeddings", shared.spec.kind):
        raise NotFound(f"the model {body.model!r} does not exist; use 'embeddings'", code="model_not_found")
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or len(texts) > 2048 or any(not t.strip() for t in texts):
        raise BadRequest("input must be one or up to 2048 non-empty strings", code="invalid_input")
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


class ApiImageTurn(ImageTurn):
    """Pictures for /v1/images/generations: made in memory, nothing stored."""

    async def begin(self):
        return
        yield

    async def _keep(self, picture: Picture) -> PictureMade:
        png = await run_blocking(encode_png, picture.image, png_text(self.params, picture.seed, self.model))
        made = StoredImage(uuid.uuid4().hex, picture.image.width, picture.image.height, "generated", len(png))
        self.made.append((made, picture.seed, picture.timings))
        return PictureMade(made.id, picture.index, picture.seed, made.width, made.height, png)

    async def _save(self, finish: str) -> dict:
        return {"id": None}  # stateless: the pictures go back in the response only


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
async def images_generations(request: Request) -> dict:
    app = services(request)
    body = await read_json(request, ImagesRequest)
    if body.model != "image" or "image" not in app.slot.engine_names:
        raise NotFound("no image model: set AIONE_IMAGE__MODEL_PATH (GET /v1/models lists the models)",
                       code="model_not_found")
    if body.response_format == "url":
        raise BadRequest("response_format 'url' is not offered (nothing is stored); use b64_json",
                         code="unsupported_response_format")
    width, height = _size(body.size)
    request_body = GenerateRequest(prompt=body.prompt, negative_prompt=body.negative_prompt, width=width,
                                   height=height, steps=body.steps, cfg_scale=body.cfg_scale, seed=body.seed,
                                   sampler=body.sampler, scheduler=body.scheduler, batch_count=body.n)
    params = validate_request(request_body, app.settings.image, family_defaults(app.settings.image))
    app.slot.check_files("image")
    lease = app.slot.lease("image", Priority.IMAGE, ImageGenerator)
    lease.enqueue()
    pictures: list[PictureMade] = []
    try:
        events = TurnRunner(app.slot, lease, None, ApiImageTurn(app, "", params)).events()
        async with aclosing(events):
            async for event in events:
                if isinstance(event, Error):
                    raise AppError(event.message, code=event.code, status=event.status)
                if isinstance(event, PictureMade):
                    pictures.append(event)
    finally:
        lease.release()
    return {"created": int(time.time()),
            "data": [{"b64_json": base64.b64encode(p.png).decode("ascii"), "revised_prompt": None,
                      "seed": p.seed} for p in pictures]}
