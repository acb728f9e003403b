"""How the web layer hands a turn (turns/runner.py: the one owner of a lease) to a response.

    return await page_turn(lease, setup)         # the page's SSE frames of the turn
    return TurnStream(frames, turn, on_end)      # another wire form of its events (/v1)

Whatever becomes of the response, even one whose stream never started because the client left
first, the turn is closed (its lease given back) when the response ends.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send

from core.contracts import SlotLease
from turns.runner import Setup, Turn
from web.sse import sse_stream


class TurnStream(EventSourceResponse):
    """A turn's SSE stream (`frames`: the page's, or the OpenAI API's)."""

    def __init__(self, frames: AsyncIterator[bytes], turn: Turn[Any],
                 on_end: Callable[[], Awaitable[None]] | None = None) -> None:
        """`on_end`: what else must end with the response (the turn's events, already started by
        the route)."""
        super().__init__(frames, ping=15, sep="\r\n")
        self._turn, self._on_end = turn, on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                if self._on_end is not None:
                    await self._on_end()
            finally:
                self._turn.close()


async def page_turn(lease: SlotLease[Any], setup: Setup[Any]) -> TurnStream:
    """A turn for the page: its place in the line first (404 / 429 / 503 / 507 as HTTP errors,
    before `setup` stores anything), then its events as the page's SSE frames."""
    turn = await Turn.start(lease, setup)
    return TurnStream(sse_stream(turn.events()), turn)
