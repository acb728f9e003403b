"""One runner for every request that makes something with a heavy model (a chat answer, a
vision answer, pictures). It owns the skeleton they share, so each kind only brings its work:

    SessionStarted -> work.begin()  (save the request; sources, images ...)
                   -> the lease: slot events until Ready
                   -> work.run(engine, stop)  (tokens / steps and pictures)
                   -> work.finish()  (save what was made, under a shield)  -> the Done event
    any failure    -> an Error event (never a broken stream)
    stopped / disconnected / failed -> work.save_partial(reason): what was made is kept

The Done event goes out only after what it reports is saved, so a disconnect at that moment
cannot save the answer twice. The route took the lease (and its queue place) before the
stream started, so a full queue is a 429, not an error frame.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Generic, Protocol, TypeVar

import anyio

from core.contracts import Engine, SlotLease
from core.errors import AppError
from core.events import Error, Event, SessionStarted
from vram_guard import ModelSlot

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Engine)
E_contra = TypeVar("E_contra", bound=Engine, contravariant=True)


class TurnWork(Protocol[E_contra]):
    """What one kind of request brings to the runner."""

    def begin(self) -> AsyncGenerator[Event, None]: ...  # save the request; what comes before the slot

    def run(self, engine: E_contra, stop: threading.Event) -> AsyncGenerator[Event, None]: ...  # with the model

    async def finish(self) -> Event: ...  # save the result; the Done event

    async def save_partial(self, reason: str) -> None: ...  # "stopped" or "error": keep what was made


class TurnRunner(Generic[E]):
    def __init__(self, slot: ModelSlot, lease: SlotLease[E], session_id: str | None,
                 work: TurnWork[E]) -> None:
        """`session_id` None: a stateless request (the OpenAI-compatible API): no session event."""
        self.slot, self.lease, self.session_id, self.work = slot, lease, session_id, work

    def _files_present(self, engine_name: str) -> bool:
        try:
            self.slot.registry.check_files(engine_name)
            return True
        except AppError:
            return False  # said after the request is saved (below), never a load attempt

    async def events(self) -> AsyncGenerator[Event, None]:
        work, lease = self.work, self.lease
        stop = threading.Event()
        ended, reason = False, "stopped"  # until it finishes or fails
        if self.session_id is not None:
            yield SessionStarted(self.session_id)
        try:
            if self._files_present(lease.engine_name):
                lease.start_swap()  # the model loads while begin() saves the request
            async with aclosing(work.begin()) as before:
                async for event in before:
                    yield event
            self.slot.registry.check_files(lease.engine_name)  # a missing model is an error event, not a load attempt
            async with lease:
                async with aclosing(lease.acquire()) as waiting:
                    async for event in waiting:
                        yield event
                async with aclosing(work.run(lease.engine, stop)) as made:
                    async for event in made:
                        yield event
            with anyio.CancelScope(shield=True):  # a disconnect now must not lose the result
                done = await work.finish()
            ended = True  # saved: nothing for the finally to do, whatever happens to the Done event
            yield done
        except Exception as exc:
            if not isinstance(exc, AppError):
                log.exception("request failed")
            reason = "error"
            yield Error.of(exc)
        finally:
            stop.set()
            lease.release()
            if not ended:
                with anyio.CancelScope(shield=True):
                    try:
                        await work.save_partial(reason)
                    except Exception:  # e.g. the disk is still full: the error event said so
                        log.exception("could not save what the request made")
