"""Blocking iterators and calls crossing into async: order, errors, and cancellation."""
from __future__ import annotations

import asyncio
import threading
import time
from contextlib import aclosing

import pytest

from core.threads import iterate_in_thread, run_blocking

pytestmark = pytest.mark.anyio


async def test_items_arrive_in_order_from_a_worker_thread():
    caller = threading.get_ident()
    seen_threads = set()

    def numbers():
        for i in range(50):
            seen_threads.add(threading.get_ident())
            yield i

    got = [i async for i in iterate_in_thread(numbers, threading.Event())]
    assert got == list(range(50))
    assert caller not in seen_threads


async def test_an_error_in_the_iterator_reaches_the_consumer():
    def broken():
        yield 1
        raise ValueError("bad model output")

    got = []
    with pytest.raises(ValueError, match="bad model output"):
        async for item in iterate_in_thread(broken, threading.Event()):
            got.append(item)
    assert got == [1]


async def test_stopping_early_sets_the_flag_and_waits_for_the_worker():
    stop = threading.Event()
    finished = threading.Event()

    def slow():
        try:
            for i in range(1000):
                if stop.is_set():
                    return
                time.sleep(0.005)
                yield i
        finally:
            finished.set()

    async with aclosing(iterate_in_thread(slow, stop)) as items:
        async for item in items:
            if item == 3:
                break
    # The worker has ended by the time the loop is left: nothing runs behind the caller's back.
    assert stop.is_set() and finished.is_set()


async def test_cancelling_the_consumer_waits_for_the_current_item():
    stop = threading.Event()
    finished = threading.Event()

    def slow():
        try:
            while not stop.is_set():
                time.sleep(0.05)
                yield "token"
        finally:
            finished.set()

    async def consume():
        async for _ in iterate_in_thread(slow, stop):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set()


async def test_run_blocking_finishes_the_call_even_when_cancelled():
    done = threading.Event()

    def load():
        time.sleep(0.2)
        done.set()
        return "loaded"

    assert await run_blocking(lambda: "ok") == "ok"
    task = asyncio.create_task(run_blocking(load))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done.is_set()  # the cancel was delivered only after the call ended
