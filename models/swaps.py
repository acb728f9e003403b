"""How the slot changes what is on the GPU: unload, load with progress, the failure ladder
and cooldowns. The slot (vram_guard.ModelSlot) decides *who* goes next; the swapper owns
*what is resident* (the records it changes: residents, the swap under way, the estimates) and
keeps them true whatever happens to a swap (cancel, failure).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

from core.contracts import Engine
from core.errors import AppError, ModelLoadError
from core.events import Loading, Retrying, SlotEvent, Unloading
from core.threads import MODEL_THREAD, run_blocking, wait_through_cancel
from models.gpu_probe import GpuMemory, GpuProbe
from settings import Slot as SlotSettings

log = logging.getLogger(__name__)
MIB = 1 << 20



def moving_average(previous: float | None, value: float, weight: float = 0.3) -> float:
    """The slot's running estimates (load times, hold times): the new value weighs 30 %."""
    return value if previous is None else (1 - weight) * previous + weight * value

@dataclass
class Cooldown:
    failures: int
    until: float


@dataclass
class Resident:
    estimate: int
    measured: int | None = None  # NVML: used memory after load minus before
    last_used: float = 0.0
    loaded: bool = False  # False while its load is under way
    evicting: bool = False


@dataclass
class SwapPlan:
    """A granted request's swap: unload `evict`, then load `engine`."""

    engine: str
    evict: list[str] = field(default_factory=list)
    started: bool = False  # its acquire() got to run it


class Swapper:
    def __init__(self, engines: dict[str, Engine], settings: SlotSettings, gpu: GpuProbe,
                 clock: Callable[[], float] = time.monotonic, in_use: Callable[[str], bool] = lambda name: False,
                 on_swap_end: Callable[[], None] = lambda: None) -> None:
        """`in_use(name)`: a request holds that model (never evicted); `on_swap_end`: the slot's
        scheduler, run when a swap ends however it ends."""
        self.engines, self.settings, self.gpu, self.clock = engines, settings, gpu, clock
        self._in_use, self._on_swap_end = in_use, on_swap_end
        self.residents: dict[str, Resident] = {}
        self.swapping = False  # one load at a time
        self._estimates: dict[str, int] = {}
        self.cooldowns: dict[str, Cooldown] = {}
        self.load_ema: dict[str, float] = {}  # seconds a load takes, per model
        self.swaps = 0  # loads
        self.evictions = 0

    # ---- what is resident ------------------------------------------------------------------
    def estimate(self, name: str) -> int:
        """Bytes the model needs on the GPU (from its files and settings; kept once known)."""
        if name not in self._estimates:
            try:
                self._estimates[name] = int(self.engines[name].estimate_vram())
            except AppError:
                return 0  # files missing: the load itself will say so
        return self._estimates[name]

    def forget_estimate(self, name: str) -> None:
        """The model's settings changed: estimate it again at its next use."""
        self._estimates.pop(name, None)
        self.cooldowns.pop(name, None)

    def is_ready(self, name: str) -> bool:
        """Loaded and staying: a request for it needs no swap."""
        resident = self.residents.get(name)
        return resident is not None and resident.loaded and not resident.evicting

    def held_bytes(self) -> int:
        """What our residents hold on the GPU (measured where NVML could tell)."""
        return sum(r.measured if r.measured is not None else r.estimate for r in self.residents.values())

    def used(self, name: str, now: float) -> None:
        resident = self.residents.get(name)
        if resident is not None:
            resident.last_used = now

    def begin(self, plan: SwapPlan) -> None:
        """A swap is granted: nothing else loads meanwhile, its victims are on their way out, and
        the model it loads has a place (not yet loaded) in the records."""
        self.swapping = True
        for name in plan.evict:
            self.residents[name].evicting = True
        self.residents[plan.engine] = Resident(estimate=self.estimate(plan.engine))

    async def swap_in(self, plan: SwapPlan) -> AsyncGenerator[SlotEvent, None]:
        """Unload what the plan evicts, then load its engine."""
        plan.started = True
        try:
            for victim in list(plan.evict):
                async for event in self.unload(victim):
                    yield event
            async for event in self._load_with_ladder(plan.engine):
                yield event
        finally:
            self.end_swap(plan)
            self._on_swap_end()

    def end_swap(self, plan: SwapPlan) -> None:
        """Whatever became of the planned swap, leave the state true: one swap at a time again,
        what was not unloaded usable again, and no placeholder for a model that did not load."""
        self.swapping = False
        for victim in plan.evict:
            if victim in self.residents:
                self.residents[victim].evicting = False
        resident = self.residents.get(plan.engine)
        if resident is not None and not resident.loaded:
            self.residents.pop(plan.engine)

    async def unload(self, name: str) -> AsyncGenerator[SlotEvent, None]:
        yield Unloading(name)
        try:
            await run_blocking(self.engines[name].unload, executor=MODEL_THREAD)  # runs to the end even if cancelled
        finally:
            self.residents.pop(name, None)
            self.evictions += 1

    async def reload(self, name: str) -> AsyncGenerator[SlotEvent, None]:
        """A resident engine unloaded and loaded again, for its holder to time the load (PKC Mark);
        nothing while another swap runs (co-residence)."""
        if self.swapping or name not in self.residents:
            return
        async for event in self.unload(name):
            yield event
        plan = SwapPlan(name, [])
        self.begin(plan)
        async for event in self.swap_in(plan):
            yield event

    async def unload_all(self) -> None:
        """Server shutdown: every resident unloaded."""
        for name in list(self.residents):
            self.residents.pop(name)
            await run_blocking(self.engines[name].unload, executor=MODEL_THREAD)

    async def _load_with_ladder(self, name: str) -> AsyncGenerator[SlotEvent, None]:
        """Load; after out of memory retry with a smaller context, then with everything else
        unloaded; a model that still fails cools down."""
        engine = self.engines[name]
        attempts = 0
        while True:
            attempts += 1
            try:
                async for event in self._load_once(name):
                    yield event
            except ModelLoadError as exc:
                if exc.oom and attempts == 1 and engine.shrink_context():
                    self._estimates.pop(name, None)
                    self.residents[name].estimate = self.estimate(name)
                    yield Retrying(name, "smaller context")
                    continue
                idle = [n for n in self.residents if n != name and not self._in_use(n)]
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

    async def _load_once(self, name: str) -> AsyncGenerator[SlotEvent, None]:
        engine = self.engines[name]
        loop = asyncio.get_running_loop()
        progress: asyncio.Queue[float] = asyncio.Queue()
        yield Loading(name, 0.0)
        before = self.gpu.memory()
        started = self.clock()
        forwarded = [0.0]

        def on_progress(fraction: float) -> None:  # on the load thread, once per tensor
            # Wake the event loop only for what becomes an event (each 10 %): a wake-up takes the
            # GIL from the load's own Python work (bench/swap.py (a) measured it).
            if fraction - forwarded[0] >= 0.1 and fraction < 1.0:
                forwarded[0] = fraction
                loop.call_soon_threadsafe(progress.put_nowait, fraction)

        load = asyncio.ensure_future(run_blocking(engine.load, on_progress, executor=MODEL_THREAD))
        try:
            while not load.done():
                getter = asyncio.ensure_future(progress.get())
                await asyncio.wait({load, getter}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                yield Loading(name, round(getter.result(), 2))
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

    def _mark_loaded(self, name: str, before: GpuMemory | None, started: float) -> None:
        resident = self.residents[name]
        resident.loaded, resident.last_used = True, self.clock()
        after = self.gpu.memory()
        if before is not None and after is not None:
            resident.measured = max(0, after.used - before.used)
            log.info("%s: estimate %d MiB, measured %d MiB", name, resident.estimate // MIB, resident.measured // MIB)
        took = self.clock() - started
        self.load_ema[name] = moving_average(self.load_ema.get(name), took)
        self.swaps += 1

    def _start_cooldown(self, name: str) -> None:
        settings = self.settings
        failures = self.cooldowns[name].failures + 1 if name in self.cooldowns else 1
        pause = min(settings.cooldown_max_s, settings.cooldown_base_s * 2 ** (failures - 1))
        self.cooldowns[name] = Cooldown(failures, self.clock() + pause)


class EarlySwap:
    """A swap started before its request reached acquire() (the turn runner starts it while the
    request saves itself): it runs in a task, and acquire() follows its events from the start.
    A request that ends first leaves it to finish (the swap's own end keeps the state true)."""

    def __init__(self, swap: AsyncIterator[SlotEvent]) -> None:
        self._queue: asyncio.Queue[SlotEvent | BaseException | None] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._run(swap))

    async def _run(self, swap: AsyncIterator[SlotEvent]) -> None:
        try:
            async for event in swap:
                self._queue.put_nowait(event)
            self._queue.put_nowait(None)
        except BaseException as exc:  # the load failed (or the server stops): acquire() raises it
            self._queue.put_nowait(exc)

    async def events(self) -> AsyncGenerator[SlotEvent, None]:
        while (item := await self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
