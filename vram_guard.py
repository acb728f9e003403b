"""The model slot: the only door to a heavy model.

One slot holds one heavy model at a time (the 8 GB card cannot hold two). A request names
the engine it needs and leases the slot; leases are granted first come, first served; when
the granted request needs another engine than the resident one, the slot unloads the
resident engine and loads the requested one. The lease is released in a `finally` on
success, error, Stop and client disconnect alike.

    async with slot.lease("chat") as lease:
        async for status in lease.acquire():   # queued / unloading / loading / ready
            ...                                # forward to the client
        lease.engine.stream(...)

Later this class grows into the budget-aware scheduler; its one job stays the same.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from errors import AppError, NotFound
from thread_bridge import run_blocking

log = logging.getLogger(__name__)


class Engine(Protocol):
    """What the slot needs from a heavy model."""

    name: str

    @property
    def loaded(self) -> bool: ...

    def load(self) -> None: ...  # blocking; may raise ModelMissing / ModelLoadError

    def unload(self) -> None: ...  # close(), drop references; must not raise

    def estimate_vram(self) -> int: ...  # bytes, from the model files


@dataclass(eq=False)
class _Ticket:
    engine: str
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    granted: bool = False


class ModelSlot:
    def __init__(self, engines: dict[str, Engine]) -> None:
        self._engines = engines
        self._resident: str | None = None
        self._holder: _Ticket | None = None
        self._queue: deque[_Ticket] = deque()
        self.swaps = 0  # loads caused by a request for a different engine

    # ---- public -------------------------------------------------------------------------
    def lease(self, engine: str) -> Lease:
        if engine not in self._engines:
            raise NotFound(f"unknown engine: {engine}", code="unknown_engine")
        return Lease(self, engine)

    def engine(self, name: str) -> Engine:
        return self._engines[name]

    @property
    def resident(self) -> str | None:
        return self._resident

    def state(self) -> dict:
        return {
            "resident": self._resident,
            "busy": self._holder is not None,
            "holder": self._holder.engine if self._holder else None,
            "queue": len(self._queue),
            "swaps": self.swaps,
        }

    async def close(self) -> None:
        """Unload whatever is resident (server shutdown)."""
        if self._resident is not None:
            engine = self._engines[self._resident]
            self._resident = None
            await run_blocking(engine.unload)

    # ---- queue ----------------------------------------------------------------------------
    def _enqueue(self, ticket: _Ticket) -> None:
        self._queue.append(ticket)
        self._grant_next()

    def _position(self, ticket: _Ticket) -> int:
        """1 = next in line."""
        return self._queue.index(ticket) + 1

    def _grant_next(self) -> None:
        if self._holder is None and self._queue:
            ticket = self._queue.popleft()
            ticket.granted = True
            self._holder = ticket
        for waiting in (self._holder, *self._queue):
            if waiting is not None:
                waiting.changed.set()

    def _release(self, ticket: _Ticket) -> None:
        """Synchronous on purpose: safe to call from any finally, even while cancelled."""
        if self._holder is ticket:
            self._holder = None
        elif ticket in self._queue:
            self._queue.remove(ticket)
        self._grant_next()

    # ---- swap -----------------------------------------------------------------------------
    async def _make_resident(self, name: str) -> AsyncIterator[dict]:
        if self._resident == name and self._engines[name].loaded:
            return
        if self._resident is not None:
            old = self._engines[self._resident]
            yield {"type": "status", "state": "unloading", "model": old.name}
            self._resident = None
            # Not cancellable: a half-unloaded model would leave the slot inconsistent.
            await run_blocking(old.unload)
        engine = self._engines[name]
        yield {"type": "status", "state": "loading", "model": name}
        started = time.perf_counter()
        self._resident = name
        try:
            await run_blocking(engine.load)
        except Exception:
            # A failed load: drop anything half-loaded. (A cancel arrives only after the load
            # thread finished, so the model is then fully loaded and stays resident.)
            self._resident = None
            await run_blocking(engine.unload)
            raise
        self.swaps += 1
        log.info("loaded %s in %.2f s", name, time.perf_counter() - started)


class Lease:
    """One request's claim on the slot; use as `async with`."""

    def __init__(self, slot: ModelSlot, engine: str) -> None:
        self._slot = slot
        self._ticket = _Ticket(engine)
        self.engine_name = engine

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._slot._release(self._ticket)

    @property
    def engine(self) -> Engine:
        if not self._ticket.granted:
            raise AppError("the model slot was not acquired", code="slot_not_acquired", status=500)
        return self._slot.engine(self.engine_name)

    async def acquire(self) -> AsyncIterator[dict]:
        """Wait for the slot, swapping models if needed; yields status frames meanwhile."""
        slot, ticket = self._slot, self._ticket
        slot._enqueue(ticket)
        last_position = None
        while True:
            ticket.changed.clear()  # before reading state, so no change is missed
            if ticket.granted:
                break
            position = slot._position(ticket)
            if position != last_position:
                last_position = position
                yield {"type": "status", "state": "queued", "position": position}
            await ticket.changed.wait()
        async for status in slot._make_resident(self.engine_name):
            yield status
        yield {"type": "status", "state": "ready", "model": self.engine_name}
