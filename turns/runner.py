"""One owner for every request that uses a heavy model (a chat answer, a vision answer, pictures,
a summary, a benchmark item, the preload): a `Turn`. It owns the skeleton they share, so each
kind only brings its work, and it owns the lease from its place in the line to its end:

    turn = await Turn.start(lease, setup)   # a place in the line now (404 / 429 / 503 / 507 before
                                            # anything is stored), then the caller's setup, which
                                            # says the session and the work; then the swap begins
    turn.events():
      SessionStarted -> work.begin()  (save the request; sources, images ...)
                     -> the lease: slot events until Ready
                     -> work.run(engine, stop)  (tokens / steps and pictures)
                     -> work.finish()  (save what was made, under a shield)  -> the Done event
      any failure    -> an Error event (never a broken stream)
      stopped / disconnected / failed -> work.save_partial(reason): what was made is kept
    turn.close()                            # the lease back, also for events() never started

The Done event goes out only after what it reports is saved, so a disconnect at that moment
cannot save the answer twice. Between `start` and `events()`/`close()` nothing can raise: the
caller hands the turn to its response at once.
"""
from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Generic, Protocol, TypeVar

import anyio

from core.contracts import Engine, SlotLease
from core.errors import AppError
from core.events import Error, Event, Ready, SessionStarted

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Engine)
E_contra = TypeVar("E_contra", bound=Engine, contravariant=True)


class TurnWork(Protocol[E_contra]):
    """What one kind of request brings to the turn."""

    def begin(self) -> AsyncGenerator[Event, None]: ...  # save the request; what comes before the slot

    def run(self, engine: E_contra, stop: threading.Event) -> AsyncGenerator[Event, None]: ...  # with the model

    async def finish(self) -> Event: ...  # save the result; the Done event

    async def save_partial(self, reason: str) -> None: ...  # "stopped" or "error": keep what was made


Setup = Callable[[], "Awaitable[tuple[str | None, TurnWork[E]]] | tuple[str | None, TurnWork[E]]"]


class Turn(Generic[E]):
    def __init__(self, lease: SlotLease[E], session_id: str | None, work: TurnWork[E],
                 reload: bool = False, missing: AppError | None = None) -> None:
        """`session_id` None: a request outside the page's sessions (/v1, background work);
        `missing`: what is wrong with the model's files (said once the request is saved)."""
        self.lease, self.session_id, self.work, self.reload = lease, session_id, work, reload
        self._missing = missing

    @classmethod
    async def start(cls, lease: SlotLease[E], setup: Setup[E], reload: bool = False) -> Turn[E]:
        """A place in the line, then the caller's setup (validate further, store the upload, make
        the session); the place is given back if the setup fails. Then, when granted with a
        model to load, its swap begins at once, while the response starts and the request saves
        itself (a request refused by its setup loads nothing). `reload`: a resident model is
        loaded again (PKC Mark times the load)."""
        lease.enqueue()
        try:
            made = setup()
            session_id, work = await made if inspect.isawaitable(made) else made
        except BaseException:
            lease.release()
            raise
        missing = _missing_files(lease)
        if missing is None:
            lease.start_swap()
        return cls(lease, session_id, work, reload, missing)

    def close(self) -> None:
        """The lease back (idempotent): the end of `events()` does it too."""
        self.lease.release()

    async def events(self) -> AsyncGenerator[Event, None]:
        work, lease = self.work, self.lease
        stop = threading.Event()
        ended, reason = False, "stopped"  # until it finishes or fails
        if self.session_id is not None:
            yield SessionStarted(self.session_id)
        try:
            async with aclosing(work.begin()) as before:  # the model loads meanwhile
                async for event in before:
                    yield event
            if self._missing is not None:
                raise self._missing  # said after the request is saved: an error event, never a load attempt
            async with lease:  # released as soon as the model is done: the saving below needs no slot
                async with aclosing(lease.acquire(self.reload)) as waiting:
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
                await _save_partial(work, reason)

    async def run_to_end(self, on_event: Callable[[Event], None] | None = None) -> list[Event]:
        """A request answered in one piece: every event to `on_event` (which may raise to stop)
        and into the list returned; the lease released however it ends."""
        seen: list[Event] = []
        try:
            async with aclosing(self.events()) as events:
                async for event in events:
                    seen.append(event)
                    if on_event is not None:
                        on_event(event)
        finally:
            self.close()
        return seen


def _missing_files(lease: SlotLease[E]) -> AppError | None:
    """The engine's files, checked once per turn (a file read): what is wrong, or None."""
    try:
        lease.check_files()
        return None
    except AppError as exc:
        return exc


async def _save_partial(work: TurnWork[E], reason: str) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await work.save_partial(reason)
        except Exception:  # e.g. the disk is still full: the error event said so
            log.exception("could not save what the request made")


class LoadOnly:
    """A turn that only brings its model in: the chat model's preload, PKC Mark's load time."""

    def __init__(self, model: str) -> None:
        self.model = model

    async def begin(self) -> AsyncGenerator[Event, None]:
        return
        yield

    async def run(self, engine: Engine, stop: threading.Event) -> AsyncGenerator[Event, None]:
        return
        yield

    async def finish(self) -> Event:
        return Ready(self.model)

    async def save_partial(self, reason: str) -> None:
        """Nothing was made."""
