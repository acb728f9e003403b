"""What every router shares: the app's services, and how a turn becomes the page's stream."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date

from fastapi import Request
from sse_starlette import EventSourceResponse

from conversation import ChatServices
from errors import BadRequest
from remote_engine import RemoteLease
from vram_guard import Lease


def services(request: Request) -> ChatServices:
    return request.app.state.services


class TurnStream(EventSourceResponse):
    """A turn's SSE stream (`frames`: the page's, or the OpenAI API's). Its lease (and queue
    place) was taken by the route; whatever becomes of the response, even one whose stream never
    started because the client left first, the place is given back when it ends."""

    def __init__(self, frames: AsyncIterator[bytes], lease: Lease | RemoteLease,
                 on_end: Callable[[], Awaitable[None]] | None = None) -> None:
        """`on_end`: what else must end with the response (a runner already started by the route)."""
        super().__init__(frames, ping=15, sep="\r\n")
        self._lease, self._on_end = lease, on_end

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._on_end is not None:
                await self._on_end()
            self._lease.release()


def clean_title(title: str, limit: int) -> str:
    """One line, no control characters, at most `limit` characters (else an error)."""
    title = " ".join("".join(ch if ch.isprintable() else " " for ch in title).split())
    if len(title) > limit:
        raise BadRequest(f"title is too long: {len(title)} characters, at most {limit}", code="title_too_long")
    return title


def parse_day(value: str | None, name: str) -> str | None:
    """A YYYY-MM-DD query parameter (None when absent); a clear 400 for anything else."""
    if value is None or value == "":
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise BadRequest(f"{name} must be a date like 2026-11-29 (got {value[:40]!r})", code="invalid_date")
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{name} is not a real date: {value}", code="invalid_date") from exc
    return value
