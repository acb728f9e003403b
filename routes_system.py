"""What the page and scripts ask about the server: /health, the slot, the page's limits."""
from __future__ import annotations

from fastapi import APIRouter, Request

from health import model_health
from image_engine import SAMPLERS, SCHEDULERS, family_defaults, guess_family
from web import services

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict:
    app = services(request)
    return {"status": "ok", "models": model_health(app.settings), "slot": app.slot.state(),
            "sandbox": app.sandbox.describe() if app.sandbox is not None else None}


@router.get("/api/slot")
async def slot_state(request: Request) -> dict:
    slot = services(request).slot
    return slot.state() | {"models": {name: slot.model_label(name) for name in slot.engine_names}}


@router.get("/api/config")
async def config(request: Request) -> dict:
    """What the page needs to check input before sending it."""
    app = services(request)
    vision, image_config = app.settings.vision, None
    if "image" in app.slot.engine_names:
        cfg = app.settings.image
        image_config = {"model": app.slot.model_label("image"), "family": guess_family(cfg),
                        "defaults": vars(family_defaults(cfg)), "max_width": cfg.max_width,
                        "max_height": cfg.max_height, "max_steps": cfg.max_steps, "max_batch": cfg.max_batch,
                        "samplers": SAMPLERS, "schedulers": SCHEDULERS}
    return {"vision": "vision" in app.slot.engine_names, "max_images": vision.max_images,
            "max_image_bytes": vision.max_image_bytes, "max_message_chars": app.settings.server.max_message_chars,
            "image": image_config,
            "analysis": {"enabled": app.analyzer is not None, "show_badges": app.settings.emotion.show_badges},
            "sandbox": app.sandbox.describe() if app.sandbox is not None else None}
