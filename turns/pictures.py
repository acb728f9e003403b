"""One image-generation request: validation, then a stream of frames.

    SessionStarted -> [ImagesStored] -> slot events -> Generating
                   -> StepProgress (per sampling step) -> PictureMade (per picture) ... -> PicturesDone

The request turn is saved first; every finished picture is saved at once (PNG with its
parameters in text chunks, plus a row in SQLite), so a Stop or a disconnect keeps what was
made. The chat history leaves these turns out ("image" kind).
"""
from __future__ import annotations

import json
import math
import secrets
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from core.contracts import (
    FamilyDefaults,
    GenerationParams,
    ImageGenerator,
    Picture,
    Step,
)
from core.errors import AppError
from core.events import (
    Event,
    Generating,
    ImagesStored,
    PictureMade,
    PicturesDone,
    StepProgress,
    TurnSaved,
)
from core.threads import run_blocking, stream_events
from image_engine import SAMPLERS, SCHEDULERS
from settings import ImageModel
from store.image_files import ImageStore, StoredImage, encode_png
from turns.recorder import PictureRecorder

if TYPE_CHECKING:
    from PIL import Image

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


class ImageTurn:
    """An image-generation request as runner work (turns/runner.py): the request turn, then each
    picture kept the moment it is made (PNG + SQLite), then the result turn. `recorder` None: a
    stateless request (/v1): the pictures are made in memory and nothing is stored."""

    def __init__(self, params: GenerationParams, images: ImageStore, recorder: PictureRecorder | None = None,
                 uploaded: StoredImage | None = None) -> None:
        """`images`: where an init image is read; `uploaded`: an init image sent with this
        request (already validated and stored)."""
        self.params, self.images, self.recorder, self.uploaded = params, images, recorder, uploaded
        self.started = time.perf_counter()
        self.model = ""
        self.made: list[tuple[StoredImage, int, dict[str, Any]]] = []  # picture, seed, timings
        self.wait_ms: float | None = None

    async def begin(self) -> AsyncGenerator[Event, None]:
        if self.recorder is not None:
            placed = await self.recorder.save_request(self.params.prompt, self.uploaded)
            yield TurnSaved(placed | {"kind": "image"})
        if self.uploaded:
            yield ImagesStored((self.uploaded.id,))

    async def run(self, engine: ImageGenerator, stop: threading.Event) -> AsyncGenerator[Event, None]:
        params = self.params
        self.wait_ms = round((time.perf_counter() - self.started) * 1000, 1)
        self.model = engine.model_label
        yield Generating(self.model, images=params.batch_count, steps=params.steps)
        init_id = self.uploaded.id if self.uploaded else params.init_image_id
        init_image = await run_blocking(_open_image, self.images.path(init_id)) if init_id else None

        def work(emit: Callable[[object], None]) -> None:
            engine.generate(params, init_image, emit, stop)

        async with aclosing(stream_events(work, stop)) as made:
            async for item in made:
                if isinstance(item, Step):
                    yield StepProgress(item.step, item.steps, item.index + 1, params.batch_count)
                elif isinstance(item, Picture):
                    yield await self._keep(item)

    async def _keep(self, picture: Picture) -> PictureMade:
        """The picture as PNG with its parameters inside: stored at once when recorded (a Stop
        or a disconnect keeps what was made), else only encoded for the response."""
        text = png_text(self.params, picture.seed, self.model)
        if self.recorder is not None:
            stored, png = await run_blocking(self.images.save_generated, picture.image, text)
        else:
            png = await run_blocking(encode_png, picture.image, text)
            stored = StoredImage(uuid.uuid4().hex, picture.image.width, picture.image.height, "generated", len(png))
        self.made.append((stored, picture.seed, picture.timings))
        return PictureMade(stored.id, picture.index, picture.seed, stored.width, stored.height, png)

    async def _save(self, finish: str) -> int | None:
        if self.recorder is None:
            return None
        return await self.recorder.save_result(self.made, finish, self.model, self.params)

    async def finish(self) -> Event:
        finish = "done" if len(self.made) == self.params.batch_count else "stopped"
        turn_id = await self._save(finish)
        timings = {"wait_ms": self.wait_ms, "pictures": [picture_timings for _, _, picture_timings in self.made],
                   "total_ms": round((time.perf_counter() - self.started) * 1000, 1)}
        return PicturesDone(turn_id, finish, self.model, tuple(image.id for image, _, _ in self.made),
                            tuple(seed for _, seed, _ in self.made), timings)

    async def save_partial(self, reason: str) -> None:
        if self.recorder is not None and self.recorder.request_saved:  # keep the pictures already made
            await self._save(reason)


def _open_image(path: Path) -> Image.Image:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")
