"""The model slot: the only door to a heavy model, and the one owner of what is on the GPU.

A request leases an engine; one scheduler (`_schedule`) decides who goes next:

- one request per engine at a time; a request for a resident, idle model starts at once;
- a request for a model that is not resident needs room: by default one heavy model at a
  time (the 8 GB card), or, with `coresidence`, beside others while the estimates fit the
  budget. Room is made by unloading idle models, least recently used first; a busy
  (streaming) model is never evicted;
- among waiting requests: higher priority first (chat > vision > image > background), then
  requests the resident model can serve without a swap (A B A B -> A A B B), then arrival.
  The grouping is bounded: a request passed over `max_jumps` times, or waiting
  `max_wait_s`, goes next and nothing passes it;
- a failed load is retried along a ladder (smaller context, then everything else evicted)
  when it looks like out-of-memory; a model that still fails cools down (doubling, capped).

    async with slot.lease("chat") as lease:
        async for status in lease.acquire():   # queued / unloading / loading / ready
            ...                                # forward to the client
        lease.engine.stream(...)
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from errors import AppError, ModelCoolingDown, ModelLoadError, ModelTooLarge, NotFound, SlotBusy
from gpu_probe import GpuProbe
from settings import Slot as SlotSettings
from thread_bridge import MODEL_THREAD, run_blocking, wait_through_cancel

log = logging.getLogger(__name__)
MIB = 1 << 20


class Priority(IntEnum):
    CHAT = 0
    VISION = 1
    IMAGE = 2
    BACKGROUND = 3


class Engine(Protocol):
    """What the slot needs from a heavy model."""

    name: str

    @property
    def loaded(self) -> bool: ...

    def load(self, progress: Callable[[float], None] | None = None) -> None: ...  # may raise ModelLoadError

    def unload(self) -> None: ...  # close(), drop references; must not raise

    def estimate_vram(self) -> int: ...  # bytes on the GPU, from the model files and settings

    def shrink_context(self) -> bool: ...  # for the next load after out-of-memory; False if it cannot


@dataclass(eq=False)
class _Ticket:
    engine: str
    priority: int
    seq: int
    enqueued_at: float
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    granted: bool = False
    jumped: int = 0  # later requests served before this one
    evict: list[str] = field(default_factory=list)  # residents to unload before loading
    needs_load: bool = False
    swap_started: bool = False  # its acquire() got to run the planned swap
    granted_at: float = 0.0


@dataclass
class _Resident:
    estimate: int
    measured: int | None = None  # NVML: used memory after load minus before
    last_used: float = 0.0
    loaded: bool = False  # False while its load is under way
    evicting: bool = False


@dataclass
class _Cooldown:
    failures: int
    until: float


class ModelSlot:
    def __init__(self, engines: dict[str, Engine], settings: SlotSettings | None = None,
                 gpu: GpuProbe | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._engines = engines
        self.settings = settings or SlotSettings()
        self._gpu = gpu or GpuProbe()
        self._clock = clock
        self._residents: dict[str, _Resident] = {}
        self._holders: dict[str, _Ticket] = {}
        self._queue: list[_Ticket] = []  # waiting tickets only: a granted one leaves it
        self._swapping = False
        self._cooldowns: dict[str, _Cooldown] = {}
        self._estimates: dict[str, int] = {}
        self._seq = 0
        self._hold_ema: dict[str, float] = {}
        self._load_ema: dict[str, float] = {}
        self.swaps = 0  # loads
        self.evictions = 0

    # ---- public ---------------------------------------------------------------------------
    def lease(self, engine: str, priority: int = Priority.CHAT) -> Lease:
        if engine not in self._engines:
            raise NotFound(f"unknown model: {engine}", code="unknown_model")
        return Lease(self, engine, int(priority))

    def engine(self, name: str) -> Engine:
        return self._engines[name]

    @property
    def engine_names(self) -> list[str]:
        return list(self._engines)

    @property
    def resident(self) -> str | None:
        """The most recently used loaded model (the only one unless co-residence is on)."""
        loaded = [(r.last_used, n) for n, r in self._residents.items() if r.loaded]
        return max(loaded)[1] if loaded else None

    def admit(self, engine: str) -> None:
        """Refuse at once what cannot be served: unknown, never fits, cooling down, queue full."""
        if engine not in self._engines:
            raise NotFound(f"unknown model: {engine}", code="unknown_model")
        need, budget = self.estimate(engine), self.budget()
        if need > budget:
            raise ModelTooLarge(
                f"{engine} needs about {need // MIB} MiB of VRAM but the budget is {budget // MIB} MiB: "
                f"lower its n_gpu_layers or n_ctx, or raise AIONE_SLOT__VRAM_BUDGET_MB"
            )
        cooldown = self._cooldowns.get(engine)
        now = self._clock()
        if cooldown and cooldown.until > now:
            wait = cooldown.until - now
            raise ModelCoolingDown(f"{engine} failed to load {cooldown.failures} time(s); next try in {wait:.0f} s",
                                   retry_after=wait)
        waiting = sum(1 for t in self._queue if t.engine == engine)
        if waiting >= self.settings.queue_limit:
            raise SlotBusy(f"{waiting} requests already wait for {engine}; try again shortly",
                           retry_after=max(1.0, self._eta(engine, waiting + 1)))

    def budget(self) -> int:
        """The setting, capped by measured free VRAM plus what our own models hold."""
        setting = self.settings.vram_budget_mb * MIB
        memory = self._gpu.memory()
        if memory is None:
            return setting
        held = sum((r.measured if r.measured is not None else r.estimate) for r in self._residents.values())
        return min(setting, memory.free + held)

    def estimate(self, engine: str) -> int:
        if engine not in self._estimates:
            try:
                self._estimates[engine] = int(self._engines[engine].estimate_vram())
            except AppError:
                return 0  # files missing: the load itself will say so
        return self._estimates[engine]

    def state(self) -> dict:
        now = self._clock()
        waiting = self._queue
        return {
            "resident": self.resident,
            "busy": bool(self._holders),
            "holders": sorted(self._holders),
            "queue": len(waiting),
            "queued": {name: sum(1 for t in waiting if t.engine == name) for name in self._engines},
            "swapping": self._swapping,
            "swaps": self.swaps,
            "evictions": self.evictions,
            "budget_mb": round(self.budget() / MIB),
            "vram_estimate_mb": round(sum(r.estimate for r in self._residents.values()) / MIB),
            "gpu_measured": self._gpu.available,
            "residents": {
                name: {"loaded": r.loaded, "busy": name in self._holders, "estimate_mb": round(r.estimate / MIB),
                       "measured_mb": None if r.measured is None else round(r.measured / MIB),
                       "idle_s": None if name in self._holders else round(now - r.last_used, 1)}
                for name, r in self._residents.items()
            },
            "cooldowns": {name: round(c.until - now, 1) for name, c in self._cooldowns.items() if c.until > now},
        }

    async def close(self) -> None:
        """Unload everything (server shutdown)."""
        for name in list(self._residents):
            self._residents.pop(name)
            await run_blocking(self._engines[name].unload, executor=MODEL_THREAD)

    # ---- scheduling -------------------------------------------------------------------------
    def _enqueue(self, ticket: _Ticket) -> None:
        self.admit(ticket.engine)
        self._seq += 1
        ticket.seq, ticket.enqueued_at = self._seq, self._clock()
        self._queue.append(ticket)
        self._schedule()

    def _is_due(self, ticket: _Ticket, now: float) -> bool:
        return ticket.jumped >= self.settings.max_jumps or now - ticket.enqueued_at >= self.settings.max_wait_s

    def _order(self, waiting: list[_Ticket]) -> list[_Ticket]:
        """Who would go next, best first: priority, then no swap needed, then arrival."""
        def ready(t: _Ticket) -> bool:
            r = self._residents.get(t.engine)
            return r is not None and r.loaded and not r.evicting

        now = self._clock()
        due = [t for t in waiting if self._is_due(t, now)]
        if due:
            first = min(due, key=lambda t: t.seq)
            return [first]  # fairness: the overdue request goes next and nothing passes it
        return sorted(waiting, key=lambda t: (t.priority, not ready(t), t.seq))

    def _plan(self, ticket: _Ticket) -> tuple[list[str], bool] | None:
        """(residents to evict, needs a load) if the ticket can start now, else None."""
        name = ticket.engine
        if name in self._holders:
            return None  # one request per engine at a time
        resident = self._residents.get(name)
        if resident is not None:
            return ([], False) if resident.loaded and not resident.evicting else None
        if self._swapping:
            return None  # one load at a time
        others = {n: r for n, r in self._residents.items() if not r.evicting}
        if not self.settings.coresidence:
            if any(n in self._holders for n in others):
                return None  # never evict a busy model
            return list(others), True
        free = self.budget() - sum(r.estimate for r in others.values())
        evict = []
        for n, r in sorted(others.items(), key=lambda item: item[1].last_used):  # least recently used first
            if free >= self.estimate(name):
                break
            if n not in self._holders:
                evict.append(n)
                free += r.estimate
        return (evict, True) if free >= self.estimate(name) else None

    def _schedule(self) -> None:
        while True:
            waiting = list(self._queue)
            chosen = None
            for ticket in self._order(waiting):
                plan = self._plan(ticket)
                if plan is not None:
                    chosen = ticket
                    ticket.evict, ticket.needs_load = plan
                    break
            if chosen is None:
                break
            self._grant(chosen, waiting)
        for ticket in self._queue:
            ticket.changed.set()

    def _grant(self, ticket: _Ticket, waiting: list[_Ticket]) -> None:
        for other in waiting:
            if other.seq < ticket.seq:
                other.jumped += 1
        ticket.granted, ticket.granted_at = True, self._clock()
        self._queue.remove(ticket)
        ticket.changed.set()
        self._holders[ticket.engine] = ticket
        if ticket.needs_load:
            self._swapping = True
            for name in ticket.evict:
                self._residents[name].evicting = True
            self._residents[ticket.engine] = _Resident(estimate=self.estimate(ticket.engine))

    def _release(self, ticket: _Ticket) -> None:
        """Synchronous on purpose: safe to call from any finally, even while cancelled."""
        if self._holders.get(ticket.engine) is ticket:
            del self._holders[ticket.engine]
            now = self._clock()
            resident = self._residents.get(ticket.engine)
            if resident is not None:
                resident.last_used = now
            held = now - ticket.granted_at
            self._hold_ema[ticket.engine] = 0.7 * self._hold_ema.get(ticket.engine, held) + 0.3 * held
            if ticket.needs_load and not ticket.swap_started:
                self._end_swap(ticket)  # cancelled between its grant and its turn to swap
        elif ticket in self._queue:
            self._queue.remove(ticket)
        self._schedule()

    def _position(self, ticket: _Ticket) -> int:
        key = lambda t: (t.priority, t.seq)  # noqa: E731
        return 1 + sum(1 for t in self._queue if key(t) < key(ticket))

    def _eta(self, engine: str, position: int) -> float:
        """A rough wait: requests ahead times the usual hold, plus a load if not resident."""
        hold = sum(self._hold_ema.values()) / len(self._hold_ema) if self._hold_ema else 5.0
        swap = 0.0 if engine in self._residents else self._load_ema.get(engine, 5.0)
        return round(position * hold + swap, 1)

    # ---- swapping -------------------------------------------------------------------------
    async def _swap_in(self, ticket: _Ticket) -> AsyncIterator[dict]:
        """Unload what the plan evicts, then load the ticket's engine, with status frames."""
        ticket.swap_started = True
        try:
            for victim in list(ticket.evict):
                async for status in self._unload(victim):
                    yield status
            async for status in self._load_with_ladder(ticket.engine):
                yield status
        finally:
            self._end_swap(ticket)
            self._schedule()

    def _end_swap(self, ticket: _Ticket) -> None:
        """Whatever became of the planned swap, leave the state true: one swap at a time again,
        what was not unloaded usable again, and no placeholder for a model that did not load."""
        self._swapping = False
        for victim in ticket.evict:
            if victim in self._residents:
                self._residents[victim].evicting = False
        resident = self._residents.get(ticket.engine)
        if resident is not None and not resident.loaded:
            self._residents.pop(ticket.engine)

    async def _unload(self, name: str) -> AsyncIterator[dict]:
        yield {"type": "status", "state": "unloading", "model": name}
        try:
            await run_blocking(self._engines[name].unload, executor=MODEL_THREAD)  # runs to the end even if cancelled
        finally:
            self._residents.pop(name, None)
            self.evictions += 1

    async def _load_with_ladder(self, name: str) -> AsyncIterator[dict]:
        engine = self._engines[name]
        attempts = 0
        while True:
            attempts += 1
            try:
                async for status in self._load_once(name):
                    yield status
            except ModelLoadError as exc:
                if exc.oom and attempts == 1 and engine.shrink_context():
                    self._estimates.pop(name, None)
                    self._residents[name].estimate = self.estimate(name)
                    yield {"type": "status", "state": "retrying", "model": name, "reason": "smaller context"}
                    continue
                idle = [n for n in self._residents if n != name and n not in self._holders]
                if exc.oom and attempts <= 2 and idle:
                    for victim in idle:
                        async for status in self._unload(victim):
                            yield status
                    yield {"type": "status", "state": "retrying", "model": name, "reason": "everything else unloaded"}
                    continue
                self._start_cooldown(name)
                if exc.oom:
                    raise ModelLoadError(
                        f"{exc.message} (out of memory after retrying with a smaller context and an empty GPU)",
                        oom=True) from exc
                raise
            self._cooldowns.pop(name, None)
            return

    async def _load_once(self, name: str) -> AsyncIterator[dict]:
        engine = self._engines[name]
        loop = asyncio.get_running_loop()
        progress: asyncio.Queue[float] = asyncio.Queue()
        yield {"type": "status", "state": "loading", "model": name, "progress": 0.0}
        before = self._gpu.memory()
        started = self._clock()
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
                if fraction - last >= 0.1 and fraction < 1.0:  # a frame per 10 %
                    last = fraction
                    yield {"type": "status", "state": "loading", "model": name, "progress": round(fraction, 2)}
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
        resident = self._residents[name]
        resident.loaded, resident.last_used = True, self._clock()
        after = self._gpu.memory()
        if before is not None and after is not None:
            resident.measured = max(0, after.used - before.used)
            log.info("%s: estimate %d MiB, measured %d MiB", name, resident.estimate // MIB, resident.measured // MIB)
        took = self._clock() - started
        self._load_ema[name] = 0.7 * self._load_ema.get(name, took) + 0.3 * took
        self.swaps += 1

    def _start_cooldown(self, name: str) -> None:
        failures = self._cooldowns[name].failures + 1 if name in self._cooldowns else 1
        pause = min(self.settings.cooldown_max_s, self.settings.cooldown_base_s * 2 ** (failures - 1))
        self._cooldowns[name] = _Cooldown(failures, self._clock() + pause)


class Lease:
    """One request's claim on the slot; use as `async with`."""

    def __init__(self, slot: ModelSlot, engine: str, priority: int) -> None:
        self._slot = slot
        self._ticket = _Ticket(engine, priority, 0, 0.0)
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
                yield {"type": "status", "state": "queued", "position": position,
                       "eta_s": slot._eta(ticket.engine, position)}
            try:
                # Wake up at the fairness deadline too, so an overdue request is not forgotten.
                # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # arrives as the event is set, and the cancelled request would carry on.)
                async with asyncio.timeout(slot.settings.max_wait_s + 0.05):
                    await ticket.changed.wait()
            except TimeoutError:
                slot._schedule()
        if ticket.needs_load:
            async for status in slot._swap_in(ticket):
                yield status
        yield {"type": "status", "state": "ready", "model": self.engine_name}
