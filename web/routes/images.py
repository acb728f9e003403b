"""Image generation (POST /api/images/generate, the page's SSE stream), stored pictures and a
session's gallery."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from core.contracts import ImageGenerator
from core.errors import AppError, ModelMissing, NotFound
from core.threads import run_blocking
from models.image_families import family_defaults
from settings import env_name
from store.sessions import SessionStore
from turns.pictures import GenerateRequest, ImageTurn, validate_request
from turns.recorder import PictureRecorder
from vram_guard import ModelSlot, Priority
from web.chat_input import one_picture_body
from web.json_body import read_json
from web.leases import TurnStream, page_turn
from web.services import AppSettings, Images, Sessions, Slot

router = APIRouter()


def _check_generation_on(slot: ModelSlot) -> None:
    if "image" not in slot.registry.names:
        raise AppError(f"image generation is off: set {env_name('image', 'model_path')} to a checkpoint (or for SD3.5 "
                       f"{env_name('image', 'diffusion_model_path')} and its text encoders) and restart",
                       code="image_not_configured", status=409)
    try:
        slot.registry.check_files("image")
    except ModelMissing as exc:  # a setting to fix, before anything is queued or stored
        raise AppError(exc.message, code="model_missing", status=409) from exc


async def _check_init_image(sessions: SessionStore, body: GenerateRequest) -> None:
    if body.session_id is not None:
        await sessions.get_session(body.session_id)
    if body.init_image_id is not None and (
            body.session_id is None or await sessions.image_session(body.init_image_id) != body.session_id):
        raise NotFound(f"image not found in this session: {body.init_image_id[:64]}", code="image_not_found")


@router.post("/api/images/generate")
async def generate(request: Request, settings: AppSettings, slot: Slot, sessions: Sessions,
                   images: Images) -> TurnStream:
    body = await read_json(request, GenerateRequest, one_picture_body(images))
    _check_generation_on(slot)
    params = validate_request(body, settings.image, family_defaults(settings.image))
    lease = slot.lease("image", Priority.IMAGE, ImageGenerator)

    async def setup() -> tuple[str, ImageTurn]:
        await _check_init_image(sessions, body)
        uploaded = None
        if body.init_image is not None:
            uploaded = (await run_blocking(images.save_all, [body.init_image]))[0]
        session_id = body.session_id or (await sessions.create_session())["id"]
        return session_id, ImageTurn(params, images, PictureRecorder(sessions, session_id), uploaded)

    return await page_turn(lease, setup)  # 429 / 503 / 507 first: a refused request creates nothing


@router.get("/api/images/{image_id}")
async def image(image_id: str, images: Images, download: bool = False) -> FileResponse:
    """A stored picture, only ever as image/png (never sniffed as anything else)."""
    path = images.path(image_id)
    if not path.is_file():
        raise NotFound("image not found", code="image_not_found")
    headers = {"Cache-Control": "private, max-age=86400"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="aione-{image_id[:12]}.png"'
    return FileResponse(path, media_type="image/png", headers=headers)


@router.get("/api/sessions/{session_id}/images")
async def gallery(session_id: str, sessions: Sessions) -> dict:
    """The session's generated pictures with their parameters, oldest first."""
    generations = await sessions.generations.of_session(session_id)
    return {"images": [g | {"id": g["image_id"], "url": f"/api/images/{g['image_id']}"} for g in generations]}
