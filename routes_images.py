"""Image generation (POST /api/images/generate, the page's SSE stream), stored pictures and a
session's gallery."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from conversation import ChatServices
from engine_contracts import ImageGenerator
from errors import AppError, ModelMissing, NotFound
from image_engine import family_defaults
from image_generation import GenerateRequest, ImageTurn, validate_request
from json_body import MAX_JSON_BYTES, read_json
from thread_bridge import run_blocking
from sse_frames import sse_stream
from turn_runner import TurnRunner
from vram_guard import Priority
from web import TurnStream, services

router = APIRouter()


def _check_generation_on(app: ChatServices) -> None:
    if "image" not in app.slot.engine_names:
        raise AppError("image generation is off: set AIONE_IMAGE__MODEL_PATH to a checkpoint (or for SD3.5 "
                       "AIONE_IMAGE__DIFFUSION_MODEL_PATH and its text encoders) and restart",
                       code="image_not_configured", status=409)
    try:
        app.slot.check_files("image")
    except ModelMissing as exc:  # a setting to fix, before anything is queued or stored
        raise AppError(exc.message, code="model_missing", status=409) from exc


async def _check_init_image(app: ChatServices, body: GenerateRequest) -> None:
    if body.session_id is not None:
        await app.store.get_session(body.session_id)
    if body.init_image_id is not None and (
            body.session_id is None or await app.store.image_session(body.init_image_id) != body.session_id):
        raise NotFound(f"image not found in this session: {body.init_image_id[:64]}", code="image_not_found")


@router.post("/api/images/generate")
async def generate(request: Request) -> TurnStream:
    app = services(request)
    body = await read_json(request, GenerateRequest, MAX_JSON_BYTES + app.settings.vision.max_image_bytes * 4 // 3 + 1024)
    _check_generation_on(app)
    params = validate_request(body, app.settings.image, family_defaults(app.settings.image))
    lease = app.slot.lease("image", Priority.IMAGE, ImageGenerator)
    lease.enqueue()  # 429 / 503 / 507 now: a refused request creates nothing
    try:
        await _check_init_image(app, body)
        uploaded = None
        if body.init_image is not None:
            uploaded = (await run_blocking(app.images.save_all, [body.init_image]))[0]
        session_id = body.session_id or (await app.store.create_session())["id"]
    except BaseException:
        lease.release()
        raise
    work = ImageTurn(app, session_id, params, uploaded)
    return TurnStream(sse_stream(TurnRunner(app.slot, lease, session_id, work).events()), lease)


@router.get("/api/images/{image_id}")
async def image(image_id: str, request: Request, download: bool = False) -> FileResponse:
    """A stored picture, only ever as image/png (never sniffed as anything else)."""
    path = services(request).images.path(image_id)
    if not path.is_file():
        raise NotFound("image not found", code="image_not_found")
    headers = {"Cache-Control": "private, max-age=86400"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="aione-{image_id[:12]}.png"'
    return FileResponse(path, media_type="image/png", headers=headers)


@router.get("/api/sessions/{session_id}/images")
async def gallery(session_id: str, request: Request) -> dict:
    """The session's generated pictures with their parameters, oldest first."""
    generations = await services(request).store.list_generations(session_id)
    return {"images": [g | {"id": g["image_id"], "url": f"/api/images/{g['image_id']}"} for g in generations]}
