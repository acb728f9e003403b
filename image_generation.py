"""One image-generation request: validation, then a stream of frames.

    session -> [images] -> status (queued / unloading / loading / ready / generating)
            -> progress (per sampling step) -> image (per picture) ... -> done (or error)

The request turn is saved first; every finished picture is saved at once (PNG with its
parameters in text chunks, plus a row in SQLite), so a Stop or a disconnect keeps what was
made. The chat history leaves these turns out ("image" kind).
"""
from __future__ import annotations

import base64
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict

from conversation import ChatServices, error_frame
from errors import AppError
from image_engine import SAMPLERS, SCHEDULERS, FamilyDefaults, GenerationParams, ImageEngine, Picture, Step
from image_store import StoredImage
from settings import ImageModel
from thread_bridge import run_blocking, stream_events
from vram_guard import Priority

log = logging.getLogger(__name__)
MAX_SEED = 2**32 - 1  # what other tools accept, so a seed can be reused there
MAX_CFG = 30.0


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt option is an error, not silently ignored
    prompt: str
    negative_prompt: str = ""
    width: int | None = None  # None: the model family's default
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    seed: int = -1  # -1: random; the seed used comes back with each picture
    sampler: str = "default"
    scheduler: str = "default"
    batch_count: int = 1
    mode: Literal["txt2img", "img2img"] | None = None  # None: img2img when an init image is given
    init_image: str | None = None  # a data URL (an upload)
    init_image_id: str | None = None  # an image of this session (generated or uploaded)
    strength: float = 0.75  # img2img: how much of the init image is replaced
    session_id: str | None = None


def _invalid(message: str, code: str) -> AppError:
    return AppError(message, code=code, status=422)


def validate_request(body: GenerateRequest, cfg: ImageModel, defaults: FamilyDefaults) -> GenerationParams:
    """Check every parameter against the settings' limits; fill in the family defaults."""
    prompt = body.prompt.strip()
    if not prompt:
        raise _invalid("prompt must not be empty", "empty_prompt")
    for name, text in (("prompt", prompt), ("negative_prompt", body.negative_prompt)):
        if len(text) > cfg.max_prompt_chars:
            raise _invalid(f"{name} is too long: {len(text)} characters, at most {cfg.max_prompt_chars}",
                           "prompt_too_long")
    width = body.width if body.width is not None else min(defaults.width, cfg.max_width)
    height = body.height if body.height is not None else min(defaults.height, cfg.max_height)
    for name, value, limit in (("width", width, cfg.max_width), ("height", height, cfg.max_height)):
        if value % 64 or not 64 <= value <= limit:
            raise _invalid(f"{name} must be a multiple of 64 from 64 to {limit} (got {value})", "invalid_size")
    steps = body.steps if body.steps is not None else min(defaults.steps, cfg.max_steps)
    if not 1 <= steps <= cfg.max_steps:
        raise _invalid(f"steps must be from 1 to {cfg.max_steps} (got {steps})", "invalid_steps")
    cfg_scale = body.cfg_scale if body.cfg_scale is not None else defaults.cfg_scale
    if not (math.isfinite(cfg_scale) and 0 <= cfg_scale <= MAX_CFG):
        raise _invalid(f"cfg_scale must be from 0 to {MAX_CFG:g} (got {cfg_scale})", "invalid_cfg")
    if not -1 <= body.seed <= MAX_SEED:
        raise _invalid(f"seed must be -1 (random) or from 0 to {MAX_SEED} (got {body.seed})", "invalid_seed")
    if body.sampler not in SAMPLERS:
        raise _invalid(f"unknown sampler {body.sampler[:40]!r}; one of: {', '.join(SAMPLERS)}", "unknown_sampler")
    if body.scheduler not in SCHEDULERS:
        raise _invalid(f"unknown scheduler {body.scheduler[:40]!r}; one of: {', '.join(SCHEDULERS)}",
                       "unknown_scheduler")
    if not 1 <= body.batch_count <= cfg.max_batch:
        raise _invalid(f"batch_count must be from 1 to {cfg.max_batch} (got {body.batch_count})", "invalid_batch")
    has_image = body.init_image is not None or body.init_image_id is not None
    if body.init_image is not None and body.init_image_id is not None:
        raise _invalid("send either init_image or init_image_id, not both", "two_init_images")
    if body.mode == "img2img" and not has_image:
        raise _invalid("img2img needs an image: send init_image (a data URL) or init_image_id", "missing_init_image")
    if body.mode == "txt2img" and has_image:
        raise _invalid("txt2img takes no init image; use mode img2img", "unexpected_init_image")
    if has_image and not (math.isfinite(body.strength) and 0 < body.strength <= 1):
        raise _invalid(f"strength must be above 0 and at most 1 (got {body.strength})", "invalid_strength")
    seed = body.seed if body.seed >= 0 else secrets.randbelow(MAX_SEED - cfg.max_batch)
    return GenerationParams(
        prompt=prompt, negative_prompt=body.negative_prompt.strip(), width=width, height=height, steps=steps,
        cfg_scale=cfg_scale, seed=seed, sampler=body.sampler, scheduler=body.scheduler,
        batch_count=body.batch_count, strength=body.strength if has_image else None,
        init_image_id=body.init_image_id)


def png_text(params: GenerationParams, seed: int, model: str) -> dict[str, str]:
    """The parameters as PNG text: "parameters" in the line format other SD tools read, and
    "aione" as JSON for us."""
    lines = [params.prompt]
    if params.negative_prompt:
        lines.append(f"Negative prompt: {params.negative_prompt}")
    settings = [f"Steps: {params.steps}", f"Sampler: {params.sampler}", f"Schedule type: {params.scheduler}",
                f"CFG scale: {params.cfg_scale:g}", f"Seed: {seed}", f"Size: {params.width}x{params.height}",
                f"Model: {model}"]
    if params.strength is not None:
        settings.append(f"Denoising strength: {params.strength:g}")
    lines.append(", ".join(settings))
    record = params.as_dict() | {"seed": seed, "model": model, "generator": "PKC AI-ONE / stable-diffusion.cpp"}
    return {"parameters": "\n".join(lines), "aione": json.dumps(record, ensure_ascii=False)}


async def generate_images(services: ChatServices, session_id: str, params: GenerationParams,
                          uploaded: StoredImage | None = None) -> AsyncIterator[dict]:
    """`uploaded`: an init image sent with this request (already validated and stored)."""
    store, slot, images = services.store, services.slot, services.images
    started = time.perf_counter()
    yield {"type": "session", "session_id": session_id}
    await store.add_turn(session_id, "user", params.prompt, images=[uploaded] if uploaded else [], kind="image")
    if uploaded:
        yield {"type": "images", "ids": [uploaded.id]}
    init_id = uploaded.id if uploaded else params.init_image_id
    engine: ImageEngine = slot.engine("image")  # type: ignore[assignment]
    made: list[tuple[StoredImage, int, dict]] = []  # picture, seed, timings
    finish = "stopped"
    saved = False
    stop = threading.Event()
    timings: dict = {"wait_ms": None}
    try:  # the route checked the model files before streaming
        async with slot.lease("image", Priority.IMAGE) as lease:
            async with aclosing(lease.acquire()) as waiting:
                async for status in waiting:
                    yield status
            timings["wait_ms"] = round((time.perf_counter() - started) * 1000, 1)
            yield {"type": "status", "state": "generating", "model": engine.model_label,
                   "images": params.batch_count, "steps": params.steps}
            init_image = await run_blocking(_open_image, images.path(init_id)) if init_id else None

            def work(emit) -> None:
                engine.generate(params, init_image, emit, stop)

            async with aclosing(stream_events(work, stop)) as events:
                async for event in events:
                    if isinstance(event, Step):
                        yield {"type": "progress", "step": event.step, "steps": event.steps,
                               "image": event.index + 1, "images": params.batch_count}
                    elif isinstance(event, Picture):
                        stored, png = await run_blocking(
                            images.save_generated, event.image, png_text(params, event.seed, engine.model_label))
                        made.append((stored, event.seed, event.timings))
                        yield {"type": "image", "id": stored.id, "index": event.index, "seed": event.seed,
                               "width": stored.width, "height": stored.height, "url": f"/api/images/{stored.id}",
                               "png_base64": base64.b64encode(png).decode("ascii")}
        finish = "done" if len(made) == params.batch_count else "stopped"
        turn = await _save_result(services, session_id, engine, params, made, finish)
        saved = True
        timings["pictures"] = [picture_timings for _, _, picture_timings in made]
        timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
        yield {"type": "done", "turn_id": turn["id"], "finish_reason": finish, "model": engine.model_label,
               "images": [image.id for image, _, _ in made], "seeds": [seed for _, seed, _ in made],
               "timings": timings}
    except Exception as exc:
        if not isinstance(exc, AppError):
            log.exception("image generation failed")
        finish = "error"
        yield error_frame(exc)
    finally:
        stop.set()
        if not saved:  # stopped, disconnected or failed: keep the pictures already made
            with anyio.CancelScope(shield=True):
                await _save_result(services, session_id, engine, params, made, finish)


def _open_image(path):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


async def _save_result(services: ChatServices, session_id: str, engine: ImageEngine, params: GenerationParams,
                       made: list[tuple[StoredImage, int, dict]], finish: str) -> dict:
    """The answer turn with its pictures, why the request ended, and each picture's parameters."""
    store = services.store
    turn = await store.add_turn(session_id, "assistant", "", images=[image for image, _, _ in made], kind="image",
                                model=engine.model_label, finish_reason=finish)
    for image, seed, picture_timings in made:
        await store.add_generation(image.id, session_id, params.prompt, seed, engine.model_label,
                                   params.as_dict() | {"seed": seed}, picture_timings)
    return turn
