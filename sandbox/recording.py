"""A code run recorded as it ends: its pictures re-encoded into the image store and the run
saved with its session (and the answer its code came from), before its exit event goes out."""
from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, replace

from core.events import RunFinished, RunPicture
from sandbox.runs import RunEvent
from store.image_files import ImageStore
from store.runs import RunStore

log = logging.getLogger("aione.sandbox")


@dataclass(frozen=True)
class RunOwner:
    """Where a run belongs: its conversation, the answer and which of its code blocks (none for a
    run of the sandbox's own page)."""

    session_id: str | None = None
    turn_id: int | None = None
    block: int | None = None


async def recorded(runs: RunStore, images: ImageStore, isolation: str, events: AsyncGenerator[RunEvent, None], code: str,
                   owner: RunOwner) -> AsyncGenerator[RunEvent, None]:
    """The run's events; the finished run is stored (pictures as images) before its exit goes out."""
    async with aclosing(events):
        async for event in events:
            yield (await _record(runs, images, isolation, event, code, owner) if isinstance(event, RunFinished)
                   else event)


async def _record(runs: RunStore, images: ImageStore, isolation: str, event: RunFinished, code: str,
                  owner: RunOwner) -> RunFinished:
    """The finished run with its pictures stored. If storing fails (a full disk, its session
    deleted meanwhile) the result still goes out, pictures inline only, and nothing is left behind."""
    result, image_ids = event.result, list[str]()
    try:
        pictures = await asyncio.to_thread(_store_pictures, images, result.pictures, image_ids)
        await runs.save({
            "id": event.run_id, "session_id": owner.session_id, "turn_id": owner.turn_id, "block": owner.block,
            "language": "python",
            "code": code, "stdout": result.stdout, "stderr": result.stderr, "exit_code": result.exit_code,
            "timed_out": result.timed_out, "killed": result.killed, "reason": result.reason,
            "duration_ms": result.duration_ms, "images": image_ids, "isolation": isolation})
    except Exception as exc:
        log.warning("code run %s not saved: %s", event.run_id, exc)
        images.delete(image_ids)
        return event
    return replace(event, result=replace(result, pictures=pictures))


def _store_pictures(images: ImageStore, pictures: tuple[RunPicture, ...], image_ids: list[str]) -> tuple[RunPicture, ...]:
    """Each picture re-encoded by PIL into the image store (what the page shows is a clean PNG);
    `image_ids` collects the stored ids as they are written (to remove them if saving fails)."""
    from PIL import Image

    stored = []
    for picture in pictures:
        with Image.open(io.BytesIO(picture.png)) as image:
            record, png = images.save_generated(image.convert("RGBA"), {"aione-source": "sandbox run"})
        image_ids.append(record.id)
        stored.append(replace(picture, image_id=record.id, png=png))
    return tuple(stored)
