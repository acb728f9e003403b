"""PKC AI-ONE web server: create_app(settings) builds the FastAPI app; routes stay thin.

Run with `uvicorn chat:app` (start_server.sh does): `app` is built on first access from the
environment / .env, so importing this module has no side effects.
"""
from __future__ import annotations

import asyncio
import json
import math
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from conversation import ChatServices, chat_turn, error_frame
from errors import AppError, BadRequest, ModelMissing, NotFound, UnsupportedMediaType
from health import model_health
from json_body import MAX_JSON_BYTES, describe_invalid, read_json
from image_engine import SAMPLERS, SCHEDULERS, ImageEngine
from image_generation import GenerateRequest, generate_images, validate_request
from image_store import ImageStore
from document_service import DocumentService
from embedder import EmbedderSpec, SharedEmbedder
from kv_store import KvStore
from llm_engine import LlmEngine
from rag_engine import RagEngine
from security import (AccessPolicy, FailureLimiter, SecurityMiddleware, StartupRefused, auth_router,
                      policy_from_settings)
from session_store import SessionStore
from settings import Settings
from thread_bridge import run_blocking
from vlm_engine import VlmEngine
from vram_guard import Engine, ModelSlot, Priority

log = logging.getLogger("aione")
ROOT = Path(__file__).resolve().parent
NO_CACHE = {"Cache-Control": "no-cache"}
SSE_END = b"\r\n\r\n"


# ---- request bodies -----------------------------------------------------------------------
class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())  # later features add fields
    message: str
    session_id: str | None = None
    model: str = "chat"  # "chat" or a name from extra_chat_models
    images: list[str] = Field(default_factory=list, max_length=64)  # data URLs, as the OpenAI API carries them
    image_ids: list[str] = Field(default_factory=list, max_length=64)  # earlier images of this session, asked about again
    doc_scope: Literal["all", "session", "none"] = "all"  # which documents may answer


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(5, ge=1, le=50)


class AttachRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = ""


class RenameSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str  # cleaned and checked for emptiness by the route


def clean_title(title: str, limit: int) -> str:
    """One line, no control characters, at most `limit` characters (else an error)."""
    title = " ".join("".join(ch if ch.isprintable() else " " for ch in title).split())
    if len(title) > limit:
        raise BadRequest(f"title is too long: {len(title)} characters, at most {limit}", code="title_too_long")
    return title


# ---- app ----------------------------------------------------------------------------------
def build_engines(settings: Settings, images: ImageStore) -> dict[str, Engine]:
    """The heavy models the slot guards: the chat LLM, extra named chat LLMs, the vision LLM,
    the image generator."""
    slot = settings.slot
    kv_store = KvStore(slot.kv_keep_sessions, slot.kv_keep_mb * 1024 * 1024)  # shared by the chat models
    headroom = slot.compute_headroom_mb * 1024 * 1024
    chat_models = {"chat": settings.chat} | settings.extra_chat_models
    engines: dict[str, Engine] = {name: LlmEngine(cfg, name=name, kv_store=kv_store, headroom_bytes=headroom)
                                  for name, cfg in chat_models.items()}
    if settings.vision.model_path is not None:
        engines["vision"] = VlmEngine(settings.vision, read_image=images.read, headroom_bytes=headroom)
    if settings.image.model_path is not None or settings.image.diffusion_model_path is not None:
        engines["image"] = ImageEngine(settings.image, headroom_bytes=headroom)
    return engines


def create_app(settings: Settings | None = None, engines: dict[str, Engine] | None = None) -> FastAPI:
    """Build the app. `engines` replaces the real ones (tests pass fakes for the HTTP layer)."""
    settings = settings or Settings()
    policy = policy_from_settings(settings.server)  # refuses to expose the server without a token
    images = ImageStore(settings.paths.uploads, settings.vision, settings.paths.generated_images)
    slot = ModelSlot(engines or build_engines(settings, images), settings.slot)
    # One sentence embedder per process (CPU), shared by everything that needs sentence vectors.
    embedder = SharedEmbedder(EmbedderSpec(settings.rag.embedder, str(settings.rag.embedding_model or "")),
                              threads=settings.rag.embed_threads, batch_size=settings.rag.batch_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.paths.data.mkdir(parents=True, exist_ok=True)
        settings.paths.uploads.mkdir(parents=True, exist_ok=True)
        settings.paths.generated_images.mkdir(parents=True, exist_ok=True)
        store = await SessionStore.open(settings.paths.db, settings.paths.logs)
        rag = RagEngine(settings.rag, settings.paths.data / "rag_db", embedder)
        documents = DocumentService(store, rag, settings.paths.uploads / "documents", settings.rag)
        app.state.services = ChatServices(settings, store, slot, images, documents)
        if await documents.has_documents():  # load the embedder now, not at the first question
            warm_up = asyncio.get_running_loop().run_in_executor(None, rag.open)
            warm_up.add_done_callback(
                lambda f: f.cancelled() or f.exception() is None
                or log.warning("document search not ready: %s (it retries at the first question)", f.exception()))
        preload = asyncio.create_task(_preload_chat(slot)) if settings.server.preload_chat else None
        try:
            yield
        finally:
            if preload is not None:
                preload.cancel()
            await documents.close()
            await slot.close()
            await store.close()

    app = FastAPI(title="PKC AI-ONE", lifespan=lifespan)
    app.state.settings = settings
    app.state.slot = slot
    _install_error_handlers(app)
    _install_access_control(app, policy)
    _add_page_routes(app)
    _add_api_routes(app, settings)
    return app


async def _preload_chat(slot: ModelSlot) -> None:
    """Load the chat model in the background so the first message does not wait for it."""
    try:
        slot.engine("chat").check_files()
        async with slot.lease("chat", Priority.BACKGROUND) as lease, aclosing(lease.acquire()) as waiting:
            async for _ in waiting:
                pass
    except AppError as exc:
        log.warning("chat model not preloaded: %s", exc.message)


def _install_access_control(app: FastAPI, policy: AccessPolicy) -> None:
    """Host/Origin checks, the token and the security headers wrap everything (static files too);
    CORS only for origins the user named."""
    limiter = FailureLimiter()
    if policy.allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=sorted(policy.allowed_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(SecurityMiddleware, policy=policy, limiter=limiter)  # added last = outermost
    app.include_router(auth_router(policy, limiter))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> JSONResponse:
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))} if exc.retry_after else None
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(AppError(describe_invalid(exc), code="invalid_request").to_json(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        frame = error_frame(exc)
        return JSONResponse({"error": {"code": frame["code"], "message": frame["message"]}}, status_code=500)


def _add_page_routes(app: FastAPI) -> None:
    for name, media in (("index.html", "text/html"), ("app.js", "text/javascript"), ("assets.css", "text/css")):
        def serve(name: str = name, media: str = media) -> FileResponse:
            return FileResponse(ROOT / name, media_type=media, headers=NO_CACHE)

        app.add_api_route("/" if name == "index.html" else f"/{name}", serve, methods=["GET"], include_in_schema=False)
    app.mount("/ui", StaticFiles(directory=ROOT / "ui"), name="ui")


def _check_images_allowed(services: ChatServices, body: ChatRequest) -> None:
    vision = services.settings.vision
    count = len(body.images) + len(body.image_ids)
    if count > vision.max_images:
        raise AppError(f"too many images: {count}, at most {vision.max_images} per message",
                       code="too_many_images", status=422)
    if "vision" not in services.slot.engine_names:
        raise AppError("image understanding is off: set AIONE_VISION__MODEL_PATH and AIONE_VISION__MMPROJ_PATH",
                       code="vision_not_configured", status=503)


def _image_engine(services: ChatServices) -> ImageEngine:
    if "image" not in services.slot.engine_names:
        raise AppError("image generation is off: set AIONE_IMAGE__MODEL_PATH to a checkpoint (or for SD3.5 "
                       "AIONE_IMAGE__DIFFUSION_MODEL_PATH and its text encoders) and restart",
                       code="image_not_configured", status=409)
    return services.slot.engine("image")  # type: ignore[return-value]


def _services(request: Request) -> ChatServices:
    return request.app.state.services


def _add_api_routes(app: FastAPI, settings: Settings) -> None:
    @app.get("/health")
    async def health(request: Request) -> dict:
        return {"status": "ok", "models": model_health(settings), "slot": request.app.state.slot.state()}

    @app.get("/api/slot")
    async def slot_state(request: Request) -> dict:
        slot: ModelSlot = request.app.state.slot
        return slot.state() | {"models": {name: getattr(slot.engine(name), "model_label", name)
                                          for name in slot.engine_names}}

    vision = settings.vision
    max_chat_body = MAX_JSON_BYTES + vision.max_images * (vision.max_image_bytes * 4 // 3 + 1024)

    @app.post("/chat_stream_sse_fetch")
    async def chat_stream(request: Request) -> Response:
        body = await read_json(request, ChatRequest, max_chat_body)
        message = body.message.strip()
        if not message:
            raise AppError("message must not be empty", code="empty_message", status=422)
        limit = settings.server.max_message_chars
        if len(message) > limit:
            raise AppError(f"message is too long: {len(message)} characters, at most {limit}",
                           code="message_too_long", status=422)
        services = _services(request)
        if body.model in ("image", "vision"):  # not chat models: each has its own request
            raise AppError(f"{body.model!r} is not a chat model: generate pictures with POST /api/images/generate; "
                           f"ask about images by sending them with the message", code="not_a_chat_model", status=422)
        wants_vision = bool(body.images or body.image_ids)
        engine = "vision" if wants_vision else body.model
        if wants_vision:
            _check_images_allowed(services, body)
        services.slot.admit(engine)  # 404 / 429 / 503 / 507 before the stream starts
        # Everything that can refuse the request runs before anything is created or stored.
        if body.session_id is not None:
            await services.store.get_session(body.session_id)
        for image_id in body.image_ids:
            if body.session_id is None or await services.store.image_session(image_id) != body.session_id:
                raise NotFound(f"image not found in this session: {image_id[:64]}", code="image_not_found")
        stored = await run_blocking(services.images.save_all, body.images)
        session_id = body.session_id or (await services.store.create_session())["id"]
        turn = chat_turn(services, session_id, message, engine, images=stored, image_refs=body.image_ids,
                         doc_scope=body.doc_scope)
        return EventSourceResponse(_sse(turn), ping=15, sep="\r\n")

    @app.post("/api/documents", status_code=201)
    async def upload_document(request: Request) -> Response:
        documents = _services(request).documents
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > documents.max_bytes + 64 * 1024:
            raise AppError(f"upload too large: {declared} bytes, at most {documents.max_bytes}",
                           code="file_too_large", status=413)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise UnsupportedMediaType("send the file as multipart/form-data in the field 'file'")
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception as exc:  # malformed multipart bodies
            raise BadRequest(f"malformed upload: {exc}", code="malformed_upload") from exc
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest("no file: send it in the multipart field 'file'", code="missing_file")
        data = await upload.read(documents.max_bytes + 1)
        session_id = form.get("session_id") or None
        document, created = await documents.upload(upload.filename or "", data, session_id)
        return JSONResponse(document | {"duplicate": not created}, status_code=201 if created else 200)

    @app.get("/api/documents")
    async def list_documents(request: Request) -> dict:
        documents = _services(request).documents
        return {"documents": await documents.list(), "reindex": documents.reindex_state()}

    @app.delete("/api/documents/{document_id}")
    async def delete_document(document_id: str, request: Request) -> dict:
        await _services(request).documents.delete(document_id)
        return {"deleted": document_id}

    @app.post("/api/documents/{document_id}/attach")
    async def attach_document(document_id: str, request: Request) -> dict:
        body = await read_json(request, AttachRequest)
        services = _services(request)
        await services.store.attach_document(document_id, body.session_id)
        return await services.documents.get(document_id)

    @app.post("/api/rag/search")
    async def rag_search(request: Request) -> dict:
        body = await read_json(request, SearchRequest)
        if not body.query.strip():
            raise AppError("query must not be empty", code="empty_query", status=422)
        hits = await _services(request).documents.search(body.query.strip(), body.k)
        return {"hits": [{"document_id": h.document_id, "name": h.name, "page": h.page, "text": h.text,
                          "score": h.score, "similarity": h.similarity, "keyword_score": h.keyword_score,
                          "chunk_id": h.chunk_id} for h in hits]}

    @app.get("/api/images/{image_id}")
    async def image(image_id: str, request: Request, download: bool = False) -> FileResponse:
        path = _services(request).images.path(image_id)
        if not path.is_file():
            raise NotFound("image not found", code="image_not_found")
        headers = {"Cache-Control": "private, max-age=86400"}
        if download:
            headers["Content-Disposition"] = f'attachment; filename="aione-{image_id[:12]}.png"'
        return FileResponse(path, media_type="image/png", headers=headers)

    max_generate_body = MAX_JSON_BYTES + vision.max_image_bytes * 4 // 3 + 1024

    @app.post("/api/images/generate")
    async def generate(request: Request) -> Response:
        body = await read_json(request, GenerateRequest, max_generate_body)
        services = _services(request)
        engine = _image_engine(services)
        params = validate_request(body, settings.image, engine.defaults)
        try:
            engine.check_files()
        except ModelMissing as exc:  # a setting to fix, before anything is queued or stored
            raise AppError(exc.message, code="model_missing", status=409) from exc
        services.slot.admit("image")  # 429 / 503 / 507 before the stream starts
        if body.session_id is not None:
            await services.store.get_session(body.session_id)
        if body.init_image_id is not None and (
                body.session_id is None or await services.store.image_session(body.init_image_id) != body.session_id):
            raise NotFound(f"image not found in this session: {body.init_image_id[:64]}", code="image_not_found")
        uploaded = None
        if body.init_image is not None:
            uploaded = (await run_blocking(services.images.save_all, [body.init_image]))[0]
        session_id = body.session_id or (await services.store.create_session())["id"]
        frames = generate_images(services, session_id, params, uploaded)
        return EventSourceResponse(_sse(frames), ping=15, sep="\r\n")

    @app.get("/api/sessions/{session_id}/images")
    async def gallery(session_id: str, request: Request) -> dict:
        """The session's generated pictures with their parameters, oldest first."""
        generations = await _services(request).store.list_generations(session_id)
        return {"images": [g | {"id": g["image_id"], "url": f"/api/images/{g['image_id']}"} for g in generations]}

    @app.get("/api/config")
    async def config(request: Request) -> dict:
        """What the page needs to check input before sending it."""
        slot: ModelSlot = request.app.state.slot
        image_config = None
        if "image" in slot.engine_names:
            engine: ImageEngine = slot.engine("image")  # type: ignore[assignment]
            cfg = settings.image
            image_config = {"model": engine.model_label, "family": engine.family, "defaults": vars(engine.defaults),
                            "max_width": cfg.max_width, "max_height": cfg.max_height, "max_steps": cfg.max_steps,
                            "max_batch": cfg.max_batch, "samplers": SAMPLERS, "schedulers": SCHEDULERS}
        return {"vision": "vision" in slot.engine_names, "max_images": vision.max_images,
                "max_image_bytes": vision.max_image_bytes, "max_message_chars": settings.server.max_message_chars,
                "image": image_config}

    @app.get("/api/sessions")
    async def list_sessions(request: Request) -> dict:
        return {"sessions": await _services(request).store.list_sessions()}

    @app.post("/api/sessions", status_code=201)
    async def new_session(request: Request) -> dict:
        body = await read_json(request, NewSession)
        title = clean_title(body.title, settings.server.max_title_chars)
        return await _services(request).store.create_session(title)

    @app.patch("/api/sessions/{session_id}")
    async def rename_session(session_id: str, request: Request) -> dict:
        body = await read_json(request, RenameSession)
        title = clean_title(body.title, settings.server.max_title_chars)
        if not title:
            raise AppError("title must not be empty", code="invalid_request", status=422)
        return await _services(request).store.rename_session(session_id, title)

    @app.delete("/api/sessions/{session_id}")
    async def delete_session(session_id: str, request: Request) -> dict:
        services = _services(request)
        services.images.delete(await services.store.delete_session(session_id))
        return {"deleted": session_id}

    @app.get("/api/sessions/{session_id}/turns")
    async def session_turns(session_id: str, request: Request) -> dict:
        store = _services(request).store
        return {"session": await store.get_session(session_id), "turns": await store.list_turns(session_id)}


async def _sse(frames: AsyncIterator[dict]) -> AsyncIterator[bytes]:
    """The seed's wire format: `data: {json}` frames, then `data: [DONE]`.

    Frames are encoded here as bytes (JSON has no raw newlines, so one `data:` line each);
    sse-starlette passes bytes through untouched, which keeps the per-token cost low.
    """
    async with aclosing(frames):  # a disconnect closes us; close the turn now, not at GC
        async for frame in frames:
            yield b"data: " + json.dumps(frame, ensure_ascii=False).encode() + SSE_END
    yield b"data: [DONE]" + SSE_END


def __getattr__(name: str):
    """`uvicorn chat:app` asks for `app`: build it then, from the environment."""
    if name == "app":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            return create_app()
        except StartupRefused as exc:
            log.error("not starting: %s", exc)
            raise SystemExit(2) from None
    raise AttributeError(name)
