"""How blocking model code (token streams, image steps, loads) crosses into async: the model
thread, `run_blocking`, and a blocking iterator consumed from the event loop.

The whole iteration runs in one worker thread and hands items to the event loop, so a token
costs one thread-safe callback instead of one thread hop. When the consumer stops (Stop,
client disconnect, error) the stop flag is set and we wait for the worker to finish its
current item: the caller's slot lease must not be released while the engine still runs.
Consume it inside `contextlib.aclosing(...)`: leaving an `async for` early does not close
an async generator by itself.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import aclosing
from typing import TypeVar, cast

import anyio

T = TypeVar("T")
_END = object()


async def wait_through_cancel(future: asyncio.Future[T]) -> T:
    """Await a thread's future to the end even if cancelled meanwhile, then re-raise the cancel.

    Whatever the thread does (load, unload, the last token) must finish before the caller
    moves on, or the slot would describe a model that is still changing. anyio's shield
    holds back anyio cancellations; the loop holds back a plain task.cancel().
    """
    cancelled: BaseException | None = None
    with anyio.CancelScope(shield=True):
        while True:
            try:
                result = await asyncio.shield(future)
                break
            except asyncio.CancelledError as exc:
                if future.cancelled():
                    raise
                cancelled = exc
    if cancelled is not None:
        raise cancelled
    return result


# Model loads and unloads all run on this one thread: glibc gives each thread its own malloc
# arena, and memory freed by an unload on one thread is not reused by a load on another, so
# spreading them over a pool grew the server's RSS by ~80 MB over 30 swaps.
MODEL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-lifecycle")


def lowest_priority() -> None:
    """Lower the calling thread to nice 19 (Linux nices threads one by one; elsewhere a no-op):
    for background CPU work that must never slow a user's tokens."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass


async def run_blocking(fn: Callable[..., T], *args: object, executor: Executor | None = None) -> T:
    """Run a blocking call in a worker thread; it always runs to completion (see above)."""
    loop = asyncio.get_running_loop()
    return await wait_through_cancel(loop.run_in_executor(executor, fn, *args))


async def iterate_in_thread(make_iterator: Callable[[], Iterator[T]], stop: threading.Event) -> AsyncGenerator[T, None]:
    def work(emit: Callable[[T], None]) -> None:
        iterator = make_iterator()
        try:
            for item in iterator:
                emit(item)
                if stop.is_set():
                    break
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    async with aclosing(stream_events(work, stop)) as items:
        async for item in items:
            yield item


async def stream_events(work: Callable[[Callable[[T], None]], None], stop: threading.Event) -> AsyncGenerator[T, None]:
    """Run `work(emit)` in a worker thread and yield what it emits, as it emits it.

    For blocking calls that report through callbacks (a picture's sampling steps) rather than
    by yielding. On exit the stop flag is set and the worker is awaited to its end, as above.
    """
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()  # an item or _END

    def emit(item: T) -> None:
        loop.call_soon_threadsafe(items.put_nowait, (item, None))

    def run() -> None:
        try:
            work(emit)
        except BaseException as exc:  # handed to the consumer, raised there
            loop.call_soon_threadsafe(items.put_nowait, (_END, exc))
            return
        loop.call_soon_threadsafe(items.put_nowait, (_END, None))

    worker = loop.run_in_executor(None, run)
    try:
        while True:
            item, error = await items.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield cast("T", item)
    finally:
        stop.set()
        await wait_through_cancel(worker)
