"""What the page and scripts ask about the server: /health, the slot, the page's limits."""
from __future__ import annotations

from fastapi import APIRouter, Request

from catalog.health import model_health
from image_engine import SAMPLERS, SCHEDULERS
from models.image_families import family_defaults, guess_family
from settings import ImageModel
from web.services import AppSettings, Library, MaybeAnalyzer, SandboxDep, Slot

router = APIRouter()


@router.get("/health")
async def health(request: Request, slot: Slot, settings: AppSettings, sandbox: SandboxDep, library: Library) -> dict:
    return {"status": "ok", "models": model_health(settings), "slot": slot.state(),
            "sandbox": sandbox.describe() if sandbox is not None else None, "ocr": library.ocr_status()}


@router.get("/api/slot")
async def slot_state(request: Request, slot: Slot) -> dict:
    return slot.state() | {"models": {name: slot.registry.label(name) for name in slot.registry.names}}


@router.get("/api/config")
async def config(request: Request, slot: Slot, settings: AppSettings, sandbox: SandboxDep, analyzer: MaybeAnalyzer) -> dict:
    """What the page needs to check input before sending it."""
    vision, image_config = settings.vision, None
    if "image" in slot.registry.names:
        cfg = slot.registry.config("image")  # the model chosen in the library, if any
        assert isinstance(cfg, ImageModel)
        image_config = {"model": slot.registry.label("image"), "family": guess_family(cfg),
                        "defaults": vars(family_defaults(cfg)), "max_width": cfg.max_width,
                        "max_height": cfg.max_height, "max_steps": cfg.max_steps, "max_batch": cfg.max_batch,
                        "samplers": SAMPLERS, "schedulers": SCHEDULERS}
    return {"vision": "vision" in slot.registry.names, "max_images": vision.max_images,
            "max_image_bytes": vision.max_image_bytes, "max_message_chars": settings.server.max_message_chars,
            "image": image_config,
            "analysis": {"enabled": analyzer is not None, "show_badges": settings.analysis.show_badges},
            "sandbox": sandbox.describe() if sandbox is not None else None}
