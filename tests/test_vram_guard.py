"""The model slot with fake engines: FIFO, swaps, release on error/cancel, failed loads."""
from __future__ import annotations

import asyncio

import pytest

from errors import ModelLoadError, NotFound
from tests.fakes import FakeEngine
from vram_guard import ModelSlot

pytestmark = pytest.mark.anyio


def make_slot(**load_seconds: float) -> tuple[ModelSlot, list[str], dict[str, FakeEngine]]:
    log: list[str] = []
    engines = {name: FakeEngine(name, log, load_seconds.get(name, 0.0)) for name in ("chat", "vision")}
    return ModelSlot(engines), log, engines


async def statuses(lease) -> list[tuple]:
    return [(s["state"], s.get("model", s.get("position"))) async for s in lease.acquire()]


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
    assert slot.resident == "vision" and slot.swaps == 2


async def test_waiters_are_served_first_come_first_served_with_positions():
    slot, log, _ = make_slot()
    granted: list[str] = []
    positions: dict[str, list[int]] = {}

    async def request(tag: str, engine: str) -> None:
        async with slot.lease(engine) as lease:
            async for status in lease.acquire():
                if status["state"] == "queued":
                    positions.setdefault(tag, []).append(status["position"])
            granted.append(tag)
            await asyncio.sleep(0.01)

    holder = slot.lease("chat")
    await statuses(holder)
    tasks = []
    for tag, engine in (("1-vision", "vision"), ("2-chat", "chat"), ("3-vision", "vision")):
        tasks.append(asyncio.create_task(request(tag, engine)))
        await asyncio.sleep(0.01)  # arrival order is creation order
    assert slot.state()["queue"] == 3
    await holder.__aexit__(None, None, None)
    await asyncio.gather(*tasks)
    assert granted == ["1-vision", "2-chat", "3-vision"]
    assert positions["1-vision"][0] == 1 and positions["3-vision"][0] == 3
    assert positions["3-vision"][-1] == 1  # moved up as the line moved
    assert log == ["load chat", "unload chat", "load vision", "unload vision", "load chat", "unload chat", "load vision"]
    assert slot.state() == {"resident": "vision", "busy": False, "holder": None, "queue": 0, "swaps": 4}


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

    async def waiter():
        async with slot.lease("vision") as lease:
            await statuses(lease)

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)
    assert slot.state()["queue"] == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slot.state()["queue"] == 0
    await holder.__aexit__(None, None, None)
    assert slot.state()["busy"] is False
    assert "load vision" not in log  # the cancelled request never caused a swap


async def test_cancel_while_holding_frees_the_slot():
    slot, _, _ = make_slot()
    running = asyncio.Event()

    async def long_answer():
        async with slot.lease("chat") as lease:
            await statuses(lease)
            running.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(long_answer())
    await running.wait()
    assert slot.state()["busy"] is True
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slot.state()["busy"] is False
    async with slot.lease("chat") as lease:
        assert await statuses(lease) == [("ready", "chat")]


async def test_failed_load_leaves_the_slot_consistent_and_the_previous_model_comes_back():
    slot, log, engines = make_slot()
    async with slot.lease("chat") as lease:
        await statuses(lease)
    engines["vision"].fail_next_load = True
    with pytest.raises(ModelLoadError):
        async with slot.lease("vision") as lease:
            await statuses(lease)
    assert slot.state()["resident"] is None and slot.state()["busy"] is False
    assert not engines["vision"].loaded and not engines["chat"].loaded
    async with slot.lease("chat") as lease:
        assert await statuses(lease) == [("loading", "chat"), ("ready", "chat")]
    assert log[-3:] == ["load vision", "unload vision", "load chat"]


async def test_cancel_during_a_load_waits_for_the_load_and_keeps_state_true():
    slot, _, engines = make_slot(chat=0.2)

    async def request():
        async with slot.lease("chat") as lease:
            await statuses(lease)

    task = asyncio.create_task(request())
    await asyncio.sleep(0.05)  # inside load()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The load finished in its thread and stays: the next request does not load again.
    assert engines["chat"].loaded and slot.resident == "chat"
    assert slot.state()["busy"] is False
    async with slot.lease("chat") as lease:
        assert await statuses(lease) == [("ready", "chat")]


async def test_unknown_engine_is_refused():
    slot, _, _ = make_slot()
    with pytest.raises(NotFound):
        slot.lease("image")


async def test_close_unloads_the_resident_model():
    slot, log, engines = make_slot()
    async with slot.lease("chat") as lease:
        await statuses(lease)
    await slot.close()
    assert not engines["chat"].loaded and slot.resident is None and log[-1] == "unload chat"
