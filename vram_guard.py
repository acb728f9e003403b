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

    lease = slot.lease("chat", Priority.CHAT, ChatEngine)   # the only door to a model
    lease.enqueue()                          # 404 / 429 / 503 / 507 now, before any stream starts
    async with lease:
        async for event in lease.acquire():  # Queued / Unloading / Loading / Retrying / Ready
            ...                              # forward to the client
        lease.engine.stream(...)             # typed: ChatEngine

Swapping itself (unload, load with progress, the failure ladder, cooldowns) is slot_swaps.py.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Generic, TypeVar, cast

from engine_contracts import Engine
from errors import AppError, ModelCoolingDown, ModelTooLarge, NotFound, SlotBusy
from events import Queued, Ready, SlotEvent
from gpu_probe import GpuProbe
from settings import Slot as SlotSettings
from remote_engine import RemoteModel, RemoteGate, RemoteLease
from slot_swaps import Swapper
from thread_bridge import MODEL_THREAD, run_blocking

log = logging.getLogger(__name__)
MIB = 1 << 20
E = TypeVar("E", bound=Engine)
KIND_NAMES = {"ChatEngine": "chat", "VisionEngine": "vision", "ImageGenerator": "image-generation"}


class Priority(IntEnum):
    CHAT = 0
    VISION = 1
    IMAGE = 2
    BACKGROUND = 3


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


class ModelSlot:
    def __init__(self, engines: dict[str, Engine], settings: SlotSettings | None = None,
                 gpu: GpuProbe | None = None, clock: Callable[[], float] = time.monotonic,
                 remote: dict[str, RemoteModel] | None = None) -> None:
        self._engines = engines
        # Roles served by another machine: no VRAM, no swaps, only their own concurrency limit.
        self._remote = remote or {}
        self.settings = settings or SlotSettings()
        self._gpu = gpu or GpuProbe()
        self._clock = clock
        self._residents: dict[str, _Resident] = {}
        self._holders: dict[str, _Ticket] = {}
        self._queue: list[_Ticket] = []  # waiting tickets only: a granted one leaves it
        self._swapping = False
        self._estimates: dict[str, int] = {}
        self._seq = 0
        self._hold_ema: dict[str, float] = {}
        self._swapper = Swapper(self)
        self._gates = {name: RemoteGate(engine.concurrency, self.settings.queue_limit)
                       for name, engine in self._remote.items()}

    # ---- public ---------------------------------------------------------------------------
    def lease(self, engine: str, priority: int = Priority.CHAT, kind: type[E] = Engine) -> Lease[E] | RemoteLease:
        """A claim on `engine`, whose run contract is `kind` (ChatEngine, VisionEngine, ...)."""
        if engine not in self._engines and engine not in self._remote:
            raise NotFound(f"unknown model: {engine}", code="unknown_model")
        if not isinstance(self._engine(engine), kind):
            wanted = KIND_NAMES.get(kind.__name__, kind.__name__)
            raise AppError(f"{engine!r} is not a {wanted} model", code=f"not_a_{wanted.replace('-', '_')}_model",
                           status=422)
        if engine in self._remote:
            return RemoteLease(self._remote[engine], self._gates[engine])
        return Lease(self, engine, int(priority))

    def _engine(self, name: str) -> Engine:
        return self._engines[name] if name in self._engines else self._remote[name]

    def is_remote(self, name: str) -> bool:
        return name in self._remote

    def check_files(self, name: str) -> None:
        """The engine's files are there and of the right kind (raises ModelMissing); loads nothing."""
        self._engine(name).check_files()

    def model_label(self, name: str) -> str:
        return self._engine(name).model_label

    @property
    def swaps(self) -> int:
        return self._swapper.swaps

    @property
    def evictions(self) -> int:
        return self._swapper.evictions

    @property
    def engine_names(self) -> list[str]:
        return [*self._engines, *self._remote]

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
        cooldown = self._swapper.cooldowns.get(engine)
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

    @property
    def busy(self) -> bool:
        """A model is loaded for someone or generating (the CPU labeller waits meanwhile)."""
        return bool(self._holders) or self._swapping

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
            "cooldowns": {name: round(c.until - now, 1) for name, c in self._swapper.cooldowns.items()
                          if c.until > now},
            "remote": {name: {"url": engine.base_url, "running": self._gates[name].running,
                              "waiting": self._gates[name].waiting} for name, engine in self._remote.items()},
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
                self._swapper.end_swap(ticket)  # cancelled between its grant and its turn to swap
        elif ticket in self._queue:
            self._queue.remove(ticket)
        self._schedule()

    def _position(self, ticket: _Ticket) -> int:
        key = lambda t: (t.priority, t.seq)  # noqa: E731
        return 1 + sum(1 for t in self._queue if key(t) < key(ticket))

    def _eta(self, engine: str, position: int) -> float:
        """A rough wait: requests ahead times the usual hold, plus a load if not resident."""
        hold = sum(self._hold_ema.values()) / len(self._hold_ema) if self._hold_ema else 5.0
        swap = 0.0 if engine in self._residents else self._swapper.load_ema.get(engine, 5.0)
        return round(position * hold + swap, 1)

class Lease(Generic[E]):
    """One request's claim on the slot; use as `async with`. Released on exit (and by
    `release()`, which is idempotent and safe in any finally)."""

    def __init__(self, slot: ModelSlot, engine: str, priority: int) -> None:
        self._slot = slot
        self._ticket = _Ticket(engine, priority, 0, 0.0)
        self.engine_name = engine
        self._enqueued = False

    async def __aenter__(self) -> Lease[E]:
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.release()

    def enqueue(self) -> None:
        """Take a place in the queue now: refuses with 404 / 429 / 503 / 507 at once, so a route
        can say no before it starts a stream or stores anything."""
        if not self._enqueued:
            self._slot._enqueue(self._ticket)
            self._enqueued = True

    def release(self) -> None:
        self._slot._release(self._ticket)

    @property
    def engine(self) -> E:
        if not self._ticket.granted:
            raise AppError("the model slot was not acquired", code="slot_not_acquired", status=500)
        return cast(E, self._slot._engine(self.engine_name))  # its kind was checked in slot.lease()

    async def acquire(self) -> AsyncIterator[SlotEvent]:
        """Wait for the slot, swapping models if needed; yields slot events meanwhile."""
        slot, ticket = self._slot, self._ticket
        self.enqueue()
        last_position = None
        while True:
            ticket.changed.clear()  # before reading state, so no change is missed
            if ticket.granted:
                break
            position = slot._position(ticket)
            if position != last_position:
                last_position = position
                yield Queued(position, slot._eta(ticket.engine, position))
            try:
                # Wake up at the fairness deadline too, so an overdue request is not forgotten.
                # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # arrives as the event is set, and the cancelled request would carry on.)
                async with asyncio.timeout(slot.settings.max_wait_s + 0.05):
                    await ticket.changed.wait()
            except TimeoutError:
                slot._schedule()
        if ticket.needs_load:
            async for event in slot._swapper.swap_in(ticket):
                yield event
        yield Ready(self.engine_name)
