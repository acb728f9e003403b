"""One owner of a lease from taken to released, for every route that uses a heavy model.

    lease = slot.lease(...)                      # refuses unknown / wrong-kind models
    work = await take(lease, setup)              # queue place first (404 / 429 / 503 now, before
                                                 # anything is stored), then the route's setup
    return TurnStream(frames, lease)             # the response releases it when it ends ...
    result = await run_to_end(lease, events, f)  # ... or one complete answer does

Between `take` and one of the two, nothing can raise: the lease is never lost.
"""
from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import TypeVar

from sse_starlette import EventSourceResponse

from core.contracts import Engine, SlotLease
from core.events import Event

T = TypeVar("T")


async def take(lease: SlotLease, setup: Callable[[], Awaitable[T] | T]) -> T:
    """A place in the line, then the route's setup (validate further, store the upload, make
    the session); the place is given back if the setup fails."""
    lease.enqueue()
    try:
        made = setup()
        return await made if inspect.isawaitable(made) else made
    except BaseException:
        lease.release()
        raise


async def run_to_end(lease: SlotLease[Engine], events: AsyncGenerator[Event, None], on_event: Callable[[Event], None]) -> None:
    """A request answered in one piece: every event to `on_event` (which may raise to stop),
    the lease released however it ends."""
    try:
        async with aclosing(events):
            async for event in events:
                on_event(event)
    finally:
        lease.release()


class TurnStream(EventSourceResponse):
    """A turn's SSE stream (`frames`: the page's, or the OpenAI API's). Its lease (and queue
    place) was taken by the route; whatever becomes of the response, even one whose stream never
    started because the client left first, the place is given back when it ends."""

    def __init__(self, frames: AsyncIterator[bytes], lease: SlotLease,
                 on_end: Callable[[], Awaitable[None]] | None = None) -> None:
        """`on_end`: what else must end with the response (a runner already started by the route)."""
        super().__init__(frames, ping=15, sep="\r\n")
        self._lease, self._on_end = lease, on_end

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                if self._on_end is not None:
                    await self._on_end()
            finally:
                self._lease.release()
