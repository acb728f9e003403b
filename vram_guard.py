"""The model slot: the only door to a heavy model, and the one owner of what is on the GPU.

A request leases an engine; one scheduler (`schedule`) decides who goes next:

- one request per engine at a time; a request for a resident, idle model starts at once;
- a request for a model that is not resident needs room: by default one heavy model at a
  time (the 8 GB card), or, with `coresidence`, beside others while the estimates fit the
  budget. Room is made by unloading idle models, least recently used first; a busy
  (streaming) model is never evicted;
- among waiting requests, the order of the waiting line (models/waiting_line.py): priority
  (chat > vision > image > background), then no swap needed, then arrival, with bounded jumps;
- a failed load is retried along a ladder (smaller context, then everything else evicted)
  when it looks like out-of-memory; a model that still fails cools down (doubling, capped).

Which engines exist, and which one serves a role, is the registry's (models/registry.py:
`slot.registry.explain("chat")` says why a request goes where it goes); swapping itself
(unload, load with progress, the failure ladder, cooldowns) is models/swaps.py. A lease is the
only door to a model, and a turn (turns/runner.py) its one owner:

    lease = slot.lease("chat", Priority.CHAT, ChatEngine)   # 404 / 422 for an unknown or wrong-kind model
    turn = await Turn.start(lease, setup)    # its place in the line: 429 / 503 / 507 before anything starts
    async for event in turn.events():        # Queued / Unloading / Loading / Retrying / Ready, then the work
        ...                                  # (the engine, typed ChatEngine, runs inside the turn)
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from enum import IntEnum
from typing import Any, Generic, TypeVar, cast, overload

from core.contracts import Engine, SlotLease, refuse_images
from core.errors import AppError, ModelCoolingDown, ModelTooLarge, NotFound, SlotBusy
from core.events import Queued, Ready, SlotEvent
from models.gpu_probe import GpuProbe
from models.registry import ROLES, ModelRegistry
from models.remote import RemoteGate, RemoteLease, RemoteModel
from models.swaps import EarlySwap, Resident, Swapper, SwapPlan
from models.waiting_line import Ticket, WaitingLine
from settings import Slot as SlotSettings
from settings import env_name

log = logging.getLogger(__name__)
MIB = 1 << 20
E = TypeVar("E", bound=Engine)
KIND_NAMES = {"ChatEngine": "chat", "ImageGenerator": "image-generation"}


class Priority(IntEnum):
    CHAT = 0
    VISION = 1
    IMAGE = 2
    BACKGROUND = 3


class ModelSlot:
    def __init__(self, engines: dict[str, Engine], settings: SlotSettings | None = None,
                 gpu: GpuProbe | None = None, clock: Callable[[], float] = time.monotonic,
                 remote: dict[str, RemoteModel] | None = None) -> None:
        # Which engines exist and which serves a role (remote ones: no VRAM, no swaps, only their
        # own concurrency limit); the slot only schedules them.
        self.registry = ModelRegistry(engines, remote)
        self.settings = settings or SlotSettings()
        self._gpu = gpu or GpuProbe()
        self._clock = clock
        self._holders: dict[str, Ticket] = {}
        self._last_busy = clock()  # when a request last gave the slot back or a swap ended
        self._line = WaitingLine(self.settings, clock)
        self._swapper = Swapper(engines, self.settings, self._gpu, clock, in_use=lambda name: name in self._holders,
                                on_swap_end=self._swap_ended)
        self._gates = {name: RemoteGate(engine.concurrency, self.settings.queue_limit)
                       for name, engine in self.registry.remote.items()}

    def forget_estimate(self, name: str) -> None:
        self._swapper.forget_estimate(self.registry.resolve(name))

    # ---- public ---------------------------------------------------------------------------
    @overload
    def lease(self, engine: str, priority: int = ..., *, images: bool = ...) -> SlotLease[Engine]: ...
    @overload
    def lease(self, engine: str, priority: int, kind: type[E], images: bool = ...) -> SlotLease[E]: ...
    def lease(self, engine: str, priority: int = Priority.CHAT, kind: type[Any] = Engine,
              images: bool = False) -> SlotLease[Any]:
        """A claim on `engine`, whose run contract is `kind` (ChatEngine, ImageGenerator); with
        `images`, a chat engine that cannot be shown images is refused (its contract says so)."""
        engine = self.registry.resolve(engine)
        if not self.registry.has(engine):
            raise NotFound(f"unknown model: {engine}", code="unknown_model")
        model = self.registry.engine(engine)
        if not isinstance(model, kind):
            wanted = KIND_NAMES.get(kind.__name__, kind.__name__)
            raise AppError(f"{engine!r} is not a {wanted} model", code=f"not_a_{wanted.replace('-', '_')}_model",
                           status=422)
        if images and not model.accepts_images:
            raise refuse_images(engine)
        if engine in self.registry.remote:
            return RemoteLease(self.registry.remote[engine], self._gates[engine])
        return Lease(self, engine, int(priority))

    def engine_of(self, ticket: Ticket) -> Engine:
        """The engine a granted ticket holds (the lease's only way to it)."""
        if not ticket.granted:
            raise AppError("the model slot was not acquired", code="slot_not_acquired", status=500)
        return self.registry.local[ticket.engine]

    swaps = property(lambda self: self._swapper.swaps, doc="Models loaded so far.")
    evictions = property(lambda self: self._swapper.evictions, doc="Models unloaded to make room.")

    @property
    def resident(self) -> str | None:
        """The most recently used loaded model (the only one unless co-residence is on)."""
        loaded = [(r.last_used, n) for n, r in self._swapper.residents.items() if r.loaded]
        return max(loaded)[1] if loaded else None

    def admit(self, engine: str) -> None:
        """Refuse at once what cannot be served: unknown, never fits, cooling down, queue full."""
        engine = self.registry.resolve(engine)
        if engine not in self.registry.local:
            raise NotFound(f"unknown model: {engine}", code="unknown_model")
        need, budget = self.estimate(engine), self.budget()
        if need > budget:
            raise ModelTooLarge(
                f"{engine} needs about {need // MIB} MiB of VRAM but the budget is {budget // MIB} MiB: "
                f"lower its n_gpu_layers or n_ctx, or raise {env_name('slot', 'vram_budget_mb')}"
            )
        cooldown = self._swapper.cooldowns.get(engine)
        now = self._clock()
        if cooldown and cooldown.until > now:
            wait = cooldown.until - now
            raise ModelCoolingDown(f"{engine} failed to load {cooldown.failures} time(s); next try in {wait:.0f} s",
                                   retry_after=wait)
        waiting = self._line.count(engine)
        if waiting >= self.settings.queue_limit:
            raise SlotBusy(f"{waiting} requests already wait for {engine}; try again shortly",
                           retry_after=max(1.0, self._line.eta(waiting + 1, self._load_s(engine))))

    def waiting_before(self, priority: int) -> bool:
        """Whether a request of a higher priority than `priority` waits (background work yields to it)."""
        return self._line.waiting_before(priority)

    def budget(self) -> int:
        """The setting, capped by measured free VRAM plus what our own models hold."""
        setting = self.settings.vram_budget_mb * MIB
        memory = self._gpu.memory()
        if memory is None:
            return setting
        return min(setting, memory.free + self._swapper.held_bytes())

    def estimate(self, engine: str) -> int:
        return self._swapper.estimate(self.registry.resolve(engine))

    @property
    def busy(self) -> bool:
        """A model is held by a request (loading or generating) or a swap runs."""
        return bool(self._holders) or self._swapper.swapping

    def quiet_for(self) -> float:
        """Seconds since the slot was last busy (0 while it is). Background CPU work waits for a
        pause of its own length, so it never meets a user who sends the next message (or asks
        for another model) right after an answer: on a small CPU it slowed that swap by ~10 %."""
        return 0.0 if self.busy else max(0.0, self._clock() - self._last_busy)

    def state(self) -> dict[str, Any]:
        now = self._clock()
        waiting, residents = self._line, self._swapper.residents
        return {
            "resident": self.resident,
            "busy": bool(self._holders),
            "holders": sorted(self._holders),
            "queue": len(waiting),
            "queued": {name: waiting.count(name) for name in self.registry.local},
            "swapping": self._swapper.swapping,
            "swaps": self.swaps,
            "evictions": self.evictions,
            "budget_mb": round(self.budget() / MIB),
            "vram_estimate_mb": round(sum(r.estimate for r in residents.values()) / MIB),
            "gpu_measured": self._gpu.available,
            "residents": {name: _resident_view(r, name in self._holders, now) for name, r in residents.items()},
            "cooldowns": {name: round(c.until - now, 1) for name, c in self._swapper.cooldowns.items()
                          if c.until > now},
            "routes": {role: self.registry.explain(role) for role in ROLES if self.registry.has(self.registry.resolve(role))},
            "remote": {name: {"url": self.registry.remote[name].base_url, "running": gate.running,
                              "waiting": gate.waiting} for name, gate in self._gates.items()},
        }

    async def close(self) -> None:
        """Unload everything (server shutdown)."""
        await self._swapper.unload_all()

    # ---- what a lease asks of the slot ---------------------------------------------------------
    def enqueue(self, ticket: Ticket) -> None:
        """Take a place in the line, or refuse at once (404 / 429 / 503 / 507)."""
        self.admit(ticket.engine)
        self._line.add(ticket)
        self.schedule()

    def release(self, ticket: Ticket) -> None:
        """Give the place or the engine back. Synchronous on purpose: safe in any finally, even
        while cancelled; idempotent."""
        if self._holders.get(ticket.engine) is ticket:
            del self._holders[ticket.engine]
            now = self._last_busy = self._clock()
            self._swapper.used(ticket.engine, now)
            self._line.held(ticket.engine, now - ticket.granted_at)
            if ticket.swap is not None and not ticket.swap.started:
                self._swapper.end_swap(ticket.swap)  # cancelled between its grant and its turn to swap
        elif ticket in self._line:
            self._line.remove(ticket)
        self.schedule()

    def place(self, ticket: Ticket) -> Queued:
        """Where a waiting ticket stands, and a rough wait."""
        return self._line.place(ticket, self._load_s(ticket.engine))

    async def wait_for_turn(self, ticket: Ticket) -> None:
        """Until the ticket's place changes, or its fairness deadline passes (so an overdue
        request is not forgotten). asyncio.timeout, not wait_for: on 3.11 wait_for can swallow
        a cancel that arrives as the event is set, and the cancelled request would carry on."""
        try:
            async with asyncio.timeout(self.settings.max_wait_s + 0.05):
                await ticket.changed.wait()
        except TimeoutError:
            self.schedule()

    def swap_in(self, ticket: Ticket) -> AsyncIterator[SlotEvent]:
        """The swap planned at the grant (unload, load with retries), or the one started early."""
        assert ticket.swap is not None
        return ticket.early.events() if ticket.early is not None else self._swapper.swap_in(ticket.swap)

    def reload(self, ticket: Ticket) -> AsyncGenerator[SlotEvent, None]:
        """A granted ticket's resident engine unloaded and loaded again (PKC Mark times the load)."""
        return self._swapper.reload(ticket.engine)

    def start_swap(self, ticket: Ticket) -> None:
        """A granted ticket's swap begun now, while its request does its own work (EarlySwap)."""
        if ticket.swap is not None and not ticket.swap.started and ticket.early is None:
            ticket.swap.started = True  # now: a release before the task's first step leaves it be
            ticket.early = EarlySwap(self._swapper.swap_in(ticket.swap))

    # ---- scheduling -------------------------------------------------------------------------
    def _plan(self, ticket: Ticket) -> SwapPlan | bool:
        """The swap to make if the ticket can start after it; True if it can start as it is;
        False if it cannot start now."""
        name, residents = ticket.engine, self._swapper.residents
        if name in self._holders:
            return False  # one request per engine at a time
        if name in residents:
            return self._swapper.is_ready(name)
        if self._swapper.swapping:
            return False  # one load at a time
        others = {n: r for n, r in residents.items() if not r.evicting}
        if not self.settings.coresidence:
            if any(n in self._holders for n in others):
                return False  # never evict a busy model
            return SwapPlan(name, list(others))
        free = self.budget() - sum(r.estimate for r in others.values())
        evict = []
        for n, r in sorted(others.items(), key=lambda item: item[1].last_used):  # least recently used first
            if free >= self.estimate(name):
                break
            if n not in self._holders:
                evict.append(n)
                free += r.estimate
        return SwapPlan(name, evict) if free >= self.estimate(name) else False

    def _swap_ended(self) -> None:
        self._last_busy = self._clock()
        self.schedule()

    def schedule(self) -> None:
        """Grant every ticket that can start now, then wake the waiting ones (their places moved)."""
        while True:
            chosen = None
            for ticket in self._line.order(self._swapper.is_ready):
                plan = self._plan(ticket)
                if plan is not False:
                    chosen = ticket
                    ticket.swap = plan if isinstance(plan, SwapPlan) else None
                    break
            if chosen is None:
                break
            self._line.granted(chosen)
            self._holders[chosen.engine] = chosen
            if chosen.swap is not None:
                self._swapper.begin(chosen.swap)
        self._line.wake()

    def _load_s(self, engine: str) -> float:
        """How long a request for `engine` waits for its load: none when resident."""
        return 0.0 if engine in self._swapper.residents else self._swapper.load_ema.get(engine, 5.0)


def _resident_view(resident: Resident, busy: bool, now: float) -> dict[str, Any]:
    return {"loaded": resident.loaded, "busy": busy, "estimate_mb": round(resident.estimate / MIB),
            "measured_mb": None if resident.measured is None else round(resident.measured / MIB),
            "idle_s": None if busy else round(now - resident.last_used, 1)}


class Lease(Generic[E]):
    """One request's claim on the slot; use as `async with`. Released on exit (and by
    `release()`, which is idempotent and safe in any finally)."""

    def __init__(self, slot: ModelSlot, engine: str, priority: int) -> None:
        self._slot = slot
        self._ticket = Ticket(engine, priority)
        self.engine_name = engine
        self._enqueued = False

    async def __aenter__(self) -> Lease[E]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def enqueue(self) -> None:
        """Take a place in the queue now: refuses with 404 / 429 / 503 / 507 at once, so a route
        can say no before it starts a stream or stores anything."""
        if not self._enqueued:
            self._slot.enqueue(self._ticket)
            self._enqueued = True

    def release(self) -> None:
        self._slot.release(self._ticket)

    def start_swap(self) -> None:
        """Granted already and a model to load first: start loading it now (see ModelSlot.start_swap)."""
        if self._ticket.granted:
            self._slot.start_swap(self._ticket)

    @property
    def engine(self) -> E:
        return cast(E, self._slot.engine_of(self._ticket))  # its kind was checked in slot.lease()

    def check_files(self) -> None:
        """The leased engine's files are there (raises ModelMissing); loads nothing."""
        self._slot.registry.named(self.engine_name).check_files()

    async def acquire(self, reload: bool = False) -> AsyncGenerator[SlotEvent, None]:
        """Wait for the slot, swapping models if needed; yields slot events meanwhile. `reload`:
        a model already resident is unloaded and loaded again (to time its load)."""
        slot, ticket = self._slot, self._ticket
        self.enqueue()
        last_position = None
        while True:
            ticket.changed.clear()  # before reading state, so no change is missed
            if ticket.granted:
                break
            place = slot.place(ticket)
            if place.position != last_position:
                last_position = place.position
                yield place
            await slot.wait_for_turn(ticket)
        swap = slot.swap_in(ticket) if ticket.swap is not None else slot.reload(ticket) if reload else None
        if swap is not None:
            async for event in swap:
                yield event
        yield Ready(self.engine_name)
