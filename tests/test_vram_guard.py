"""The model slot with fake engines: swaps, grouping, fairness, priorities, cancellation,
the failure ladder, cooldown, budget decisions and 429s."""
from __future__ import annotations

import asyncio

import pytest

from core.errors import (
    ModelCoolingDown,
    ModelLoadError,
    ModelTooLarge,
    NotFound,
    SlotBusy,
)
from core.events import Loading
from models.gpu_probe import GpuMemory
from settings import Slot as SlotSettings
from tests.fakes import GIB, FakeEngine
from vram_guard import ModelSlot, Priority
from web.sse import frame

pytestmark = pytest.mark.anyio


class NoGpu:
    available = False

    def memory(self):
        return None


def make_slot(names=("chat", "vision"), gpu=None, clock=None, **settings) -> tuple[ModelSlot, list[str], dict[str, FakeEngine]]:
    log: list[str] = []
    engines = {name: FakeEngine(name, log) for name in names}
    options = {"max_wait_s": 30.0} | settings
    slot = ModelSlot(engines, SlotSettings(**options), gpu=gpu or NoGpu(), **({"clock": clock} if clock else {}))
    return slot, log, engines


async def statuses(lease) -> list[tuple]:
    """(state, model or position) per event, repeated loading-progress events folded."""
    seen: list[tuple] = []
    async for event in lease.acquire():
        s = frame(event)  # the page's wire form of the slot's typed events
        item = (s["state"], s.get("model", s.get("position")))
        if not seen or seen[-1] != item:
            seen.append(item)
    return seen


async def hold(slot: ModelSlot, engine: str, order: list[str], tag: str, seconds: float = 0.01,
               priority: int = Priority.CHAT) -> None:
    async with slot.lease(engine, priority) as lease:
        await statuses(lease)
        order.append(tag)
        await asyncio.sleep(seconds)


async def start_in_order(*coroutines) -> list[asyncio.Task]:
    tasks = []
    for coroutine in coroutines:
        tasks.append(asyncio.create_task(coroutine))
        await asyncio.sleep(0.005)  # arrival order is creation order
    return tasks


async def test_loads_on_first_use_and_swaps_when_engines_differ():
    slot, log, _ = make_slot()
    async with slot.lease("chat") as lease:
        assert await statuses(lease) == [("loading", "chat"), ("ready", "chat")]
        assert lease.engine.loaded
    async with slot.lease("chat") as lease:
        assert await statuses(lease) == [("ready", "chat")]  # resident: no reload
    async with slot.lease("vision") as lease:
        assert await statuses(lease) == [("unloading", "chat"), ("loading", "vision"), ("ready", "vision")]
    assert log == ["load chat", "unload chat", "load vision"]
    assert slot.resident == "vision" and slot.swaps == 2 and slot.evictions == 1


async def test_a_resident_model_is_loaded_again_on_request_and_stays_usable():
    """PKC Mark times a model's load through the slot even when the model is already resident."""
    slot, log, _ = make_slot()
    async with slot.lease("chat") as lease:
        await statuses(lease)
    async with slot.lease("chat") as lease:
        seen = [(s["state"], s["model"]) for s in map(frame, [e async for e in lease.acquire(reload=True)])]
        assert seen[0] == ("unloading", "chat") and seen[-1] == ("ready", "chat") and ("loading", "chat") in seen
        assert lease.engine.loaded
    assert log == ["load chat", "unload chat", "load chat"] and slot.resident == "chat"
    async with slot.lease("vision") as lease:  # the slot's records stayed true: a swap works as before
        assert await statuses(lease) == [("unloading", "chat"), ("loading", "vision"), ("ready", "vision")]


async def test_load_progress_is_streamed():
    slot, _, engines = make_slot()
    engines["chat"].load_seconds = 0.2
    async with slot.lease("chat") as lease:
        events = [event async for event in lease.acquire()]
    progress = [event.progress for event in events if isinstance(event, Loading)]
    assert progress[0] == 0.0 and 0.25 in progress and 0.75 in progress and progress == sorted(progress)


async def test_strict_fifo_when_grouping_is_off():
    slot, _log, _ = make_slot(max_jumps=0)
    order: list[str] = []
    holder = slot.lease("chat")
    await statuses(holder)
    tasks = await start_in_order(hold(slot, "vision", order, "1-vision"), hold(slot, "chat", order, "2-chat"),
                                 hold(slot, "vision", order, "3-vision"))
    await holder.__aexit__(None, None, None)
    await asyncio.gather(*tasks)
    assert order == ["1-vision", "2-chat", "3-vision"]
    assert slot.swaps == 4


async def test_grouping_serves_the_resident_model_first():
    slot, log, _ = make_slot(max_jumps=10)
    order: list[str] = []
    holder = slot.lease("chat")
    await statuses(holder)
    tasks = await start_in_order(hold(slot, "vision", order, "B1"), hold(slot, "chat", order, "A1"),
                                 hold(slot, "vision", order, "B2"), hold(slot, "chat", order, "A2"))
    await holder.__aexit__(None, None, None)
    await asyncio.gather(*tasks)
    assert order == ["A1", "A2", "B1", "B2"]  # A B A B -> A A B B
    assert log == ["load chat", "unload chat", "load vision"]  # one swap instead of four


async def test_grouping_is_bounded_by_max_jumps():
    slot, _, _ = make_slot(max_jumps=1)
    order: list[str] = []
    holder = slot.lease("chat")
    await statuses(holder)
    tasks = await start_in_order(hold(slot, "vision", order, "B"), hold(slot, "chat", order, "A1"),
                                 hold(slot, "chat", order, "A2"), hold(slot, "chat", order, "A3"))
    await holder.__aexit__(None, None, None)
    await asyncio.gather(*tasks)
    assert order == ["A1", "B", "A2", "A3"]  # B was passed once, then went next


async def test_grouping_is_bounded_by_max_wait():
    slot, _, _ = make_slot(max_jumps=100, max_wait_s=0.15)
    order: list[str] = []

    async def stream_of_chats():
        for i in range(12):
            await hold(slot, "chat", order, f"A{i}", seconds=0.03)

    holder = slot.lease("chat")
    await statuses(holder)
    chats = asyncio.create_task(stream_of_chats())
    await asyncio.sleep(0.005)
    vision = asyncio.create_task(hold(slot, "vision", order, "B"))
    await asyncio.sleep(0.005)
    await holder.__aexit__(None, None, None)
    await asyncio.gather(chats, vision)
    assert 0 < order.index("B") < 11  # not starved until the chats ran out


async def test_priorities_chat_before_background():
    slot, _, _ = make_slot(max_jumps=10)
    order: list[str] = []
    holder = slot.lease("chat")
    await statuses(holder)
    tasks = await start_in_order(
        hold(slot, "chat", order, "title", priority=Priority.BACKGROUND),
        hold(slot, "vision", order, "image question", priority=Priority.VISION),
        hold(slot, "chat", order, "user chat", priority=Priority.CHAT),
    )
    await holder.__aexit__(None, None, None)
    await asyncio.gather(*tasks)
    assert order == ["user chat", "image question", "title"]


async def test_slot_is_released_when_the_request_fails():
    slot, _, _ = make_slot()
    with pytest.raises(RuntimeError):
        async with slot.lease("chat") as lease:
            await statuses(lease)
            raise RuntimeError("engine blew up mid-answer")
    assert slot.state()["busy"] is False
    async with slot.lease("vision") as lease:
        assert (await statuses(lease))[-1] == ("ready", "vision")


async def test_cancel_while_queued_leaves_the_queue_at_once():
    slot, log, _ = make_slot()
    holder = slot.lease("chat")
    await statuses(holder)
    task = asyncio.create_task(hold(slot, "vision", [], "never"))
    await asyncio.sleep(0.01)
    assert slot.state()["queue"] == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slot.state()["queue"] == 0
    await holder.__aexit__(None, None, None)
    assert slot.state()["busy"] is False and "load vision" not in log


async def test_cancel_while_holding_frees_the_slot():
    slot, _, _ = make_slot()
    task = asyncio.create_task(hold(slot, "chat", [], "long", seconds=30))
    await asyncio.sleep(0.05)
    assert slot.state()["busy"] is True
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slot.state()["busy"] is False
    async with slot.lease("chat") as lease:
        assert await statuses(lease) == [("ready", "chat")]


async def test_cancel_during_a_load_waits_for_it_and_keeps_the_model():
    slot, _, engines = make_slot()
    engines["chat"].load_seconds = 0.2
    task = asyncio.create_task(hold(slot, "chat", [], "x"))
    await asyncio.sleep(0.05)  # inside load()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engines["chat"].loaded and slot.resident == "chat" and slot.state()["busy"] is False
    async with slot.lease("chat") as lease:
        assert await statuses(lease) == [("ready", "chat")]


async def test_failed_load_leaves_the_slot_consistent_and_the_previous_model_comes_back():
    slot, log, engines = make_slot()
    async with slot.lease("chat") as lease:
        await statuses(lease)
    engines["vision"].fail_loads = 1  # not out of memory: no ladder, straight to the error
    with pytest.raises(ModelLoadError):
        async with slot.lease("vision") as lease:
            await statuses(lease)
    assert slot.state()["residents"] == {} and slot.state()["busy"] is False
    assert not engines["vision"].loaded and not engines["chat"].loaded
    async with slot.lease("chat") as lease:
        assert await statuses(lease) == [("loading", "chat"), ("ready", "chat")]
    assert log[-2:] == ["load vision", "load chat"]


async def test_out_of_memory_retries_with_a_smaller_context():
    slot, log, engines = make_slot()
    engines["chat"].fail_loads, engines["chat"].fail_oom = 1, True
    async with slot.lease("chat") as lease:
        frames = await statuses(lease)
    assert ("retrying", "chat") in frames and frames[-1] == ("ready", "chat")
    assert log == ["load chat", "shrink chat", "load chat"]


async def test_out_of_memory_ladder_evicts_everything_then_fails_with_a_cooldown():
    now = [1000.0]
    slot, log, engines = make_slot(names=("chat", "vision", "image"), clock=lambda: now[0], coresidence=True,
                                   vram_budget_mb=8192, cooldown_base_s=10, cooldown_max_s=25)
    for name in ("chat", "vision"):
        async with slot.lease(name) as lease:
            await statuses(lease)
    engines["image"].fail_loads, engines["image"].fail_oom = 3, True
    with pytest.raises(ModelLoadError, match="out of memory after retrying"):
        async with slot.lease("image") as lease:
            await statuses(lease)
    assert log[2:] == ["load image", "shrink image", "load image", "unload chat", "unload vision", "load image"]
    assert slot.state()["residents"] == {}
    with pytest.raises(ModelCoolingDown) as info:
        slot.admit("image")
    assert info.value.status == 503 and info.value.retry_after == pytest.approx(10)
    assert slot.state()["cooldowns"] == {"image": 10.0}
    slot.admit("chat")  # other models are unaffected
    # After the pause it may try again; a second failure doubles the pause, capped.
    now[0] += 11
    engines["image"].fail_loads, engines["image"].fail_oom = 1, False
    with pytest.raises(ModelLoadError):
        async with slot.lease("image") as lease:
            await statuses(lease)
    assert slot.state()["cooldowns"] == {"image": 20.0}
    now[0] += 21
    engines["image"].fail_loads = 1
    with pytest.raises(ModelLoadError):
        async with slot.lease("image") as lease:
            await statuses(lease)
    assert slot.state()["cooldowns"] == {"image": 25.0}  # capped
    now[0] += 26
    async with slot.lease("image") as lease:  # success clears the record
        await statuses(lease)
    assert slot.state()["cooldowns"] == {} and "image" not in slot._swapper.cooldowns


async def test_budget_coresidence_fit_evict_lru_and_never_fits():
    slot, log, engines = make_slot(names=("a", "b", "c", "huge"), coresidence=True, vram_budget_mb=4096)
    engines["a"].vram, engines["b"].vram, engines["c"].vram, engines["huge"].vram = GIB, 2 * GIB, 2 * GIB, 5 * GIB
    for name in ("a", "b"):
        async with slot.lease(name) as lease:
            await statuses(lease)
    assert set(slot.state()["residents"]) == {"a", "b"} and slot.evictions == 0  # 3 GiB fit in 4
    async with slot.lease("b") as lease:  # b is now the most recently used
        await statuses(lease)
    async with slot.lease("c") as lease:
        assert ("unloading", "a") in await statuses(lease)  # least recently used goes
    assert set(slot.state()["residents"]) == {"b", "c"}
    with pytest.raises(ModelTooLarge, match="AIONE_SLOT__VRAM_BUDGET_MB") as info:
        async with slot.lease("huge") as lease:
            await statuses(lease)
    assert info.value.status == 507 and "load huge" not in log  # refused before any load


async def test_a_busy_model_is_never_evicted():
    slot, log, engines = make_slot(names=("a", "b"), coresidence=True, vram_budget_mb=2048)
    engines["a"].vram, engines["b"].vram = 1536 << 20, GIB
    order: list[str] = []
    streaming = asyncio.create_task(hold(slot, "a", order, "a streams", seconds=0.2))
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(hold(slot, "b", order, "b"))
    await asyncio.sleep(0.05)
    assert "unload a" not in log and slot.state()["queued"]["b"] == 1
    await asyncio.gather(streaming, waiting)
    assert order == ["a streams", "b"] and log == ["load a", "unload a", "load b"]


async def test_a_full_queue_is_refused_with_retry_after():
    slot, _, _ = make_slot(queue_limit=2)
    holder = slot.lease("chat")
    await statuses(holder)
    tasks = await start_in_order(hold(slot, "chat", [], "1"), hold(slot, "chat", [], "2"))
    with pytest.raises(SlotBusy) as info:
        slot.admit("chat")
    assert info.value.status == 429 and info.value.retry_after >= 1
    slot.admit("vision")  # the limit is per model
    await holder.__aexit__(None, None, None)
    await asyncio.gather(*tasks)
    slot.admit("chat")


async def test_queue_frames_report_position_and_an_estimated_wait():
    slot, _, _ = make_slot()
    holder = slot.lease("chat")
    await statuses(holder)
    frames: list = []

    async def waiter():
        async with slot.lease("vision") as lease:
            async for event in lease.acquire():
                frames.append(frame(event))

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)
    await holder.__aexit__(None, None, None)
    await task
    assert frames[0]["state"] == "queued" and frames[0]["position"] == 1 and frames[0]["eta_s"] > 0


class FakeGpu:
    available = True

    def __init__(self, total: int) -> None:
        self.total, self.used = total, 0

    def memory(self) -> GpuMemory:
        return GpuMemory(self.total, self.total - self.used, self.used)


async def test_measured_vram_caps_the_budget_and_is_recorded_per_model():
    gpu = FakeGpu(total=6 * GIB)
    gpu.used = GIB  # another program holds 1 GiB
    slot, _, engines = make_slot(gpu=gpu, vram_budget_mb=8192)
    assert slot.budget() == 5 * GIB  # measured free beats the 8 GiB setting

    real_load = engines["chat"].load

    def load_and_take_memory(progress=None):
        real_load(progress)
        gpu.used += 3 * GIB // 2

    engines["chat"].load = load_and_take_memory
    async with slot.lease("chat") as lease:
        await statuses(lease)
    resident = slot.state()["residents"]["chat"]
    assert resident["estimate_mb"] == 1024 and resident["measured_mb"] == 1536
    assert slot.budget() == 5 * GIB  # what we hold counts as ours


async def test_unknown_engine_is_refused():
    slot, _, _ = make_slot()
    with pytest.raises(NotFound):
        slot.lease("image")


async def test_close_unloads_everything():
    slot, log, engines = make_slot()
    async with slot.lease("chat") as lease:
        await statuses(lease)
    await slot.close()
    assert not engines["chat"].loaded and slot.resident is None and log[-1] == "unload chat"


async def test_a_request_cancelled_right_after_its_grant_leaves_no_swap_half_started():
    """Granted (with a swap planned) but cancelled before it resumed: the plan is undone."""
    slot, log, _ = make_slot()
    holder = slot.lease("chat")
    await statuses(holder)
    waiter = asyncio.create_task(hold(slot, "vision", [], "never runs"))
    await asyncio.sleep(0.01)
    await holder.__aexit__(None, None, None)  # grants the waiter: unload chat, load vision planned
    waiter.cancel()  # before the waiter's task got to run again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    state = slot.state()
    assert state["swapping"] is False and state["busy"] is False
    assert state["residents"] == {"chat": {"loaded": True, "busy": False, "estimate_mb": 1024, "measured_mb": None,
                                           "idle_s": state["residents"]["chat"]["idle_s"]}}
    async with slot.lease("vision") as lease:  # the slot still works
        assert await statuses(lease) == [("unloading", "chat"), ("loading", "vision"), ("ready", "vision")]
    assert log == ["load chat", "unload chat", "load vision"]


async def test_a_granted_swap_starts_early_and_acquire_follows_it():
    """The turn runner starts the swap before the request's own work (saving it, memories,
    passages): the model loads meanwhile, and acquire() still reports every step once."""
    slot, log, engines = make_slot()
    async with slot.lease("chat") as lease:
        await statuses(lease)
    engines["vision"].load_seconds = 0.2
    async with slot.lease("vision") as lease:
        lease.enqueue()
        lease.start_swap()
        await asyncio.sleep(0.05)
        log.append("the request's own work")  # meanwhile
        assert await statuses(lease) == [("unloading", "chat"), ("loading", "vision"), ("ready", "vision")]
        assert lease.engine.loaded
    assert log == ["load chat", "unload chat", "load vision", "the request's own work"]


async def test_an_early_swap_that_fails_is_an_error_at_acquire_and_a_release_lets_it_finish():
    slot, log, engines = make_slot()
    engines["chat"].fail_loads = 1
    lease = slot.lease("chat")
    lease.enqueue()
    lease.start_swap()
    with pytest.raises(ModelLoadError):
        await statuses(lease)
    lease.release()
    engines["vision"].load_seconds = 0.1
    gone = slot.lease("vision")
    gone.enqueue()
    gone.start_swap()
    gone.release()  # the client left: the load already under way completes, the slot stays sound
    async with slot.lease("vision") as again:
        seen = await statuses(again)
        assert seen[-1] == ("ready", "vision") and ("loading", "vision") not in seen  # it waited, loaded once
    assert engines["vision"].loaded and log.count("load vision") == 1


async def test_quiet_for_counts_from_the_last_release_or_swap_end():
    """Background CPU work (the labeller) waits for a pause: quiet_for is 0 while a model is held
    or loading, and counts from the moment the slot was given back, not from the last poll."""
    now = [100.0]
    slot, _, _ = make_slot(clock=lambda: now[0])
    now[0] = 103.0
    assert slot.quiet_for() == 3.0  # nothing happened since the server started
    async with slot.lease("chat") as lease:
        async for _ in lease.acquire():
            assert slot.quiet_for() == 0.0  # loading
        now[0] = 110.0
        assert slot.quiet_for() == 0.0  # held
    assert slot.quiet_for() == 0.0  # given back just now
    now[0] = 110.4
    assert slot.quiet_for() == pytest.approx(0.4)
    lease = slot.lease("vision")
    lease.enqueue()  # granted at once: busy from its place in the line, before its swap starts
    assert slot.quiet_for() == 0.0
    lease.release()
    now[0] = 111.0
    assert slot.quiet_for() == pytest.approx(0.6)
