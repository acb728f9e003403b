"""How the slot changes what is on the GPU: unload, load with progress, the failure ladder
and cooldowns. The slot (vram_guard.ModelSlot) decides *who* goes next; this helper does the
swap it planned and keeps the slot's records true whatever happens (cancel, failure).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from errors import ModelLoadError
from events import Loading, Retrying, SlotEvent, Unloading
from thread_bridge import MODEL_THREAD, run_blocking, wait_through_cancel

if TYPE_CHECKING:
    from vram_guard import ModelSlot, _Ticket

log = logging.getLogger(__name__)
MIB = 1 << 20


@dataclass
class Cooldown:
    failures: int
    until: float


class Swapper:
    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot
        self.cooldowns: dict[str, Cooldown] = {}
        self.load_ema: dict[str, float] = {}  # seconds a load takes, per model
        self.swaps = 0  # loads
        self.evictions = 0

    async def swap_in(self, ticket: _Ticket) -> AsyncIterator[SlotEvent]:
        """Unload what the plan evicts, then load the ticket's engine."""
        ticket.swap_started = True
        try:
            for victim in list(ticket.evict):
                async for event in self.unload(victim):
                    yield event
            async for event in self._load_with_ladder(ticket.engine):
                yield event
        finally:
            self.end_swap(ticket)
            self.slot._schedule()

    def end_swap(self, ticket: _Ticket) -> None:
        """Whatever became of the planned swap, leave the state true: one swap at a time again,
        what was not unloaded usable again, and no placeholder for a model that did not load."""
        residents = self.slot._residents
        self.slot._swapping = False
        for victim in ticket.evict:
            if victim in residents:
                residents[victim].evicting = False
        resident = residents.get(ticket.engine)
        if resident is not None and not resident.loaded:
            residents.pop(ticket.engine)

    async def unload(self, name: str) -> AsyncIterator[SlotEvent]:
        yield Unloading(name)
        try:
            await run_blocking(self.slot._engine(name).unload, executor=MODEL_THREAD)  # runs to the end even if cancelled
        finally:
            self.slot._residents.pop(name, None)
            self.evictions += 1

    async def _load_with_ladder(self, name: str) -> AsyncIterator[SlotEvent]:
        """Load; after out of memory retry with a smaller context, then with everything else
        unloaded; a model that still fails cools down."""
        slot, engine = self.slot, self.slot._engine(name)
        attempts = 0
        while True:
            attempts += 1
            try:
                async for event in self._load_once(name):
                    yield event
            except ModelLoadError as exc:
                if exc.oom and attempts == 1 and engine.shrink_context():
                    slot._estimates.pop(name, None)
                    slot._residents[name].estimate = slot.estimate(name)
                    yield Retrying(name, "smaller context")
                    continue
                idle = [n for n in slot._residents if n != name and n not in slot._holders]
                if exc.oom and attempts <= 2 and idle:
                    for victim in idle:
                        async for event in self.unload(victim):
                            yield event
                    yield Retrying(name, "everything else unloaded")
                    continue
                self._start_cooldown(name)
                if exc.oom:
                    raise ModelLoadError(
                        f"{exc.message} (out of memory after retrying with a smaller context and an empty GPU)",
                        oom=True) from exc
                raise
            self.cooldowns.pop(name, None)
            return

    async def _load_once(self, name: str) -> AsyncIterator[SlotEvent]:
        slot, engine = self.slot, self.slot._engine(name)
        loop = asyncio.get_running_loop()
        progress: asyncio.Queue[float] = asyncio.Queue()
        yield Loading(name, 0.0)
        before = slot._gpu.memory()
        started = slot._clock()
        forwarded = [0.0]

        def on_progress(fraction: float) -> None:  # on the load thread, once per tensor
            if fraction - forwarded[0] >= 0.01:  # wake the event loop at most 100 times
                forwarded[0] = fraction
                loop.call_soon_threadsafe(progress.put_nowait, fraction)

        load = asyncio.ensure_future(run_blocking(engine.load, on_progress, executor=MODEL_THREAD))
        last = 0.0
        try:
            while not load.done():
                getter = asyncio.ensure_future(progress.get())
                await asyncio.wait({load, getter}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                fraction = getter.result()
                if fraction - last >= 0.1 and fraction < 1.0:  # an event per 10 %
                    last = fraction
                    yield Loading(name, round(fraction, 2))
            load.result()
        except BaseException:
            if not load.done():
                try:
                    await wait_through_cancel(load)  # the engine must finish before the slot moves on
                except BaseException:
                    pass
                if not load.cancelled() and load.exception() is None:
                    self._mark_loaded(name, before, started)
            raise
        self._mark_loaded(name, before, started)

    def _mark_loaded(self, name: str, before, started: float) -> None:
        slot = self.slot
        resident = slot._residents[name]
        resident.loaded, resident.last_used = True, slot._clock()
        after = slot._gpu.memory()
        if before is not None and after is not None:
            resident.measured = max(0, after.used - before.used)
            log.info("%s: estimate %d MiB, measured %d MiB", name, resident.estimate // MIB, resident.measured // MIB)
        took = slot._clock() - started
        self.load_ema[name] = 0.7 * self.load_ema.get(name, took) + 0.3 * took
        self.swaps += 1

    def _start_cooldown(self, name: str) -> None:
        settings = self.slot.settings
        failures = self.cooldowns[name].failures + 1 if name in self.cooldowns else 1
        pause = min(settings.cooldown_max_s, settings.cooldown_base_s * 2 ** (failures - 1))
        self.cooldowns[name] = Cooldown(failures, self.slot._clock() + pause)
