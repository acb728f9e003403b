"""PKC AI-ONE web server: create_app(settings) wires the engines, the slot, the stores, the
access control and the routers (web/routes/: one per feature, each thin).

Run with `uvicorn chat:app` (start_server.sh does): `app` is resolved through the module's
`__getattr__`, which builds a new app from the environment / .env each time it is asked for
(uvicorn asks once); importing this module has no side effects.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from analytics.labeller import TurnAnalyzer, classifiers_from_settings
from catalog.library import ModelLibrary
from core.contracts import Engine
from core.errors import AppError, storage_error
from core.events import Error
from core.threads import run_blocking
from documents.library import DocumentLibrary
from image_engine import ImageEngine
from llm_engine import LlmEngine
from mark.runner import MarkRunner
from memories.book import MemoryBook
from models.embedder import SharedEmbedder, shared_embedder
from models.kv_store import KvStore
from models.remote import (
    RemoteChatEngine,
    RemoteImageGenerator,
    RemoteModel,
    RemoteVisionEngine,
)
from rag_engine import RagEngine
from sandbox.runs import Sandbox
from settings import Settings, env_name, renamed_variables
from store import open_stores
from store.image_files import ImageStore
from store.labels import LabelStore
from turns.chat_tools import Confirmations
from turns.context_memory import ConversationWindows
from turns.memory_proposals import Proposer
from turns.runner import LoadOnly, Turn
from vlm_engine import VlmEngine
from vram_guard import ModelSlot, Priority
from web.json_body import describe_invalid
from web.openai_format import error_body as openai_error
from web.openai_format import is_openai_path
from web.routes import ROUTERS
from web.security import (
    AccessPolicy,
    FailureLimiter,
    SecurityMiddleware,
    StartupRefused,
    auth_router,
    policy_from_settings,
)

log = logging.getLogger("aione")
ROOT = Path(__file__).resolve().parent
NO_CACHE = {"Cache-Control": "no-cache"}


# ---- app ----------------------------------------------------------------------------------
def build_engines(settings: Settings, images: ImageStore) -> tuple[dict[str, Engine], dict[str, RemoteModel]]:
    """The heavy models the slot guards (the chat LLM, extra named chat LLMs, the vision LLM, the
    image generator), and the chat roles another machine serves (their base_url is set)."""
    slot = settings.slot
    kv_store = KvStore(slot.kv_keep_sessions, slot.kv_keep_mb * 1024 * 1024)  # shared by the chat models
    headroom = slot.compute_headroom_mb * 1024 * 1024
    chat_models = {"chat": settings.chat} | settings.extra_chat_models
    remote: dict[str, RemoteModel] = {name: RemoteChatEngine(cfg, name, env_name('chat', 'base_url') if name == "chat"
                                     else f'{env_name("extra_chat_models")} ("{name}": base_url)')
              for name, cfg in chat_models.items() if cfg.base_url}
    engines: dict[str, Engine] = {name: LlmEngine(cfg, name=name, kv_store=kv_store, headroom_bytes=headroom)
                                  for name, cfg in chat_models.items() if name not in remote}
    if settings.vision.base_url:
        remote["vision"] = RemoteVisionEngine(settings.vision, images.read)
    elif settings.vision.model_path is not None:
        engines["vision"] = VlmEngine(settings.vision, read_image=images.read, headroom_bytes=headroom)
    if settings.image.base_url:
        remote["image"] = RemoteImageGenerator(settings.image)
    elif settings.image.model_path is not None or settings.image.diffusion_model_path is not None:
        engines["image"] = ImageEngine(settings.image, headroom_bytes=headroom)
    return engines, remote


def create_app(settings: Settings | None = None, engines: dict[str, Engine] | None = None) -> FastAPI:
    """Build the app. `engines` replaces the real ones (tests pass fakes for the HTTP layer)."""
    settings = settings or Settings()
    policy = policy_from_settings(settings.server)  # refuses to expose the server without a token
    images = ImageStore(settings.paths.uploads, settings.vision, settings.paths.generated_images)
    local, remote = (engines, {}) if engines is not None else build_engines(settings, images)
    slot = ModelSlot(local, settings.slot, remote=remote)
    # One sentence embedder per process (CPU), shared by everything that needs sentence vectors.
    embedder = shared_embedder(settings.rag)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background = await _start_services(app, settings, slot, embedder, images)
        try:
            yield
        finally:
            await _stop_services(app, slot, background)

    app = FastAPI(title="PKC AI-ONE", lifespan=lifespan)
    # What routes ask for through web/services.py (the rest is set as the app starts).
    app.state.settings, app.state.slot, app.state.embedder, app.state.images = settings, slot, embedder, images
    app.state.confirmations = Confirmations()  # code runs a chat answer waits on the user for
    for late in ("stores", "library", "sandbox", "analyzer", "models", "marks", "windows", "memories", "proposer"):
        setattr(app.state, late, None)  # set as the app starts
    _install_error_handlers(app)
    _install_access_control(app, policy)
    _add_page_routes(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


async def _start_services(app: FastAPI, settings: Settings, slot: ModelSlot, embedder: SharedEmbedder,
                         images: ImageStore) -> list[asyncio.Task[None]]:
    """Open the stores and start the services (their order matters: what needs another comes after
    it); returns the background tasks (the model scan, the chat model's preload)."""
    for folder in (settings.paths.data, settings.paths.uploads, settings.paths.generated_images):
        folder.mkdir(parents=True, exist_ok=True)
    stores = await open_stores(settings.paths.db, settings.paths.logs)
    rag = RagEngine(settings.rag, settings.paths.data / "rag_db", embedder)
    library = DocumentLibrary(stores.documents, rag, settings.paths.uploads / "documents", settings.rag, settings.ocr)
    await run_blocking(library.ocr.status)  # two short runs of tesseract, off the event loop, kept
    sandbox = Sandbox(settings.sandbox)
    await sandbox.probe()  # ~0.1 s: one print through the real sandbox decides whether Run is offered
    analyzer = _start_analyzer(settings, embedder, stores.labels, slot) if settings.analysis.enabled else None
    if analyzer is not None:
        stores.sessions.on_turn_saved = analyzer.turn_saved
    chat = slot.registry.own("chat")
    models = ModelLibrary(settings, slot, stores.models, images.read,
                          chat.kv_store if isinstance(chat, LlmEngine) else None)  # one KV store for every chat model
    app.state.stores, app.state.library, app.state.sandbox, app.state.analyzer, app.state.models = (
        stores, library, sandbox, analyzer, models)
    app.state.marks = MarkRunner(slot, stores.marks, settings, models, sandbox, embedder, images)
    _conversation_services(app, stores, slot, settings, embedder)
    if await library.has_documents():  # load the embedder now, not at the first question
        _warm_up(rag)
    # The scan reads headers (cached by size and mtime): in the background; the chosen models after it.
    scanned = asyncio.create_task(models.start() if settings.models.scan_on_start else asyncio.sleep(0))
    preload = [asyncio.create_task(_preload_chat(slot, scanned))] if settings.server.preload_chat else []
    return [scanned, *preload]


async def _stop_services(app: FastAPI, slot: ModelSlot, background: list[asyncio.Task[None]]) -> None:
    """Everything started above, stopped: users of a service before the service."""
    for task in background:
        task.cancel()
    state = app.state
    for service in (state.marks, state.windows, state.proposer, state.memories):
        await service.close()
    state.sandbox.close()
    if state.analyzer is not None:
        await state.analyzer.close()
    await state.library.close()
    await slot.close()
    await state.stores.close()


def _conversation_services(app: FastAPI, stores, slot: ModelSlot, settings: Settings, embedder) -> None:
    """What outlives a turn: windows and summaries, memories, their proposals."""
    app.state.windows = ConversationWindows(stores.summaries, slot, settings.context)
    app.state.memories = MemoryBook(stores.memories, embedder, settings.memory)
    app.state.memories.start()  # the index is built now (the embedder loads only when memories exist)
    app.state.proposer = Proposer(app.state.memories, stores.sessions, slot, settings.memory)


def _warm_up(rag: RagEngine) -> None:
    warm_up = asyncio.get_running_loop().run_in_executor(None, rag.open)

    def said(done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.warning("document search not ready: %s (it retries at the first question)", done.exception())

    warm_up.add_done_callback(said)


def _start_analyzer(settings: Settings, embedder, labels: LabelStore, slot: ModelSlot) -> TurnAnalyzer:
    """The background labeller: it waits until the models have been idle a moment (a token or a swap
    never waits for it)."""
    classifiers = classifiers_from_settings(settings.analysis, embedder, settings.paths.data / "classifiers")
    quiet_s = settings.analysis.quiet_s
    analyzer = TurnAnalyzer(labels, classifiers, busy=lambda: slot.quiet_for() < quiet_s,
                            batch_size=settings.analysis.batch_size, keywords_keep_s=settings.analysis.keywords_keep_s)
    analyzer.start()
    return analyzer


async def _preload_chat(slot: ModelSlot, scanned: asyncio.Task) -> None:
    """Load the chat model in the background so the first message does not wait for it (the one
    chosen in the model library, once the scan has put the choice back)."""
    await asyncio.wait([scanned])
    try:
        lease = slot.lease("chat", Priority.BACKGROUND)
        preload = await Turn.start(lease, lambda: (None, LoadOnly("chat")))
    except AppError as exc:
        log.warning("chat model not preloaded: %s", exc.message)
        return
    for event in await preload.run_to_end():
        if isinstance(event, Error):
            log.warning("chat model not preloaded: %s", event.message)


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
    async def app_error(request: Request, exc: AppError) -> JSONResponse:
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))} if exc.retry_after else None
        if is_openai_path(request.url.path):  # OpenAI clients read {"error": {message, type, param, code}}
            status, body = openai_error(Error(exc.code, exc.message, exc.status))
            return JSONResponse(body, status_code=status, headers=headers)
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await app_error(request, AppError(describe_invalid(exc), code="invalid_request", status=422))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return await app_error(request, AppError(str(exc.detail), code=code, status=exc.status_code))

    async def storage_or_unexpected(request: Request, exc: Exception) -> JSONResponse:
        typed = storage_error(exc)  # a full disk is the user's to fix: 507 with advice, not a 500
        if typed is not None:
            log.warning("%s %s: %s", request.method, request.url.path, typed.message)
        else:
            log.error("unhandled error", exc_info=exc)
            typed = AppError(Error.of(exc).message, code="internal_error", status=500)
        return await app_error(request, typed)

    # File and database errors outside the store (uploads, pictures) are handled like AppErrors,
    # so a full disk is a 507 and not "Exception in ASGI application"; anything else is a 500.
    for kind in (OSError, sqlite3.Error, Exception):
        app.add_exception_handler(kind, storage_or_unexpected)


PAGES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
         "/assets.css": ("assets.css", "text/css"), "/dashboard": ("ui/dashboard.html", "text/html"),
         "/models": ("ui/models.html", "text/html"), "/bench": ("ui/bench.html", "text/html"),
         "/memory": ("ui/memory.html", "text/html")}


def _add_page_routes(app: FastAPI) -> None:
    for path, (name, media) in PAGES.items():
        def serve(name: str = name, media: str = media) -> FileResponse:
            return FileResponse(ROOT / name, media_type=media, headers=NO_CACHE)

        app.add_api_route(path, serve, methods=["GET"], include_in_schema=False)
    app.mount("/ui", StaticFiles(directory=ROOT / "ui"), name="ui")


def __getattr__(name: str):
    """`uvicorn chat:app` asks for `app`: build it then, from the environment."""
    if name == "app":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for renamed in renamed_variables(dict(os.environ)):
            log.warning("%s: the old name no longer takes effect", renamed)
        try:
            return create_app()
        except StartupRefused as exc:
            log.error("not starting: %s", exc)
            raise SystemExit(2) from None
    raise AttributeError(name)
