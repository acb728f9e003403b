"""Proposals of memories when a conversation goes quiet (memories/proposals.py decides what may
be proposed). After each answer the conversation's timer restarts; when `quiet_s` pass without a
new turn, the chat model reads the user's new statements about themselves through the slot at
background priority (giving way the moment a user's request waits) and proposes at most a few
facts. They wait on the 기억 page for the user; nothing is stored unseen.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from core.contracts import ChatEngine, ChatInput, Sampling
from core.events import ChatDone, Event, Token, Usage
from core.threads import iterate_in_thread, run_blocking
from memories.book import MemoryBook
from memories.index import DUPLICATE
from memories.proposals import PROMPT, candidates, proposal_prompt, proposed_lines
from settings import Memory
from store.sessions import SessionStore
from turns.context_memory import language_of
from turns.runner import Turn
from vram_guard import ModelSlot, Priority

log = logging.getLogger(__name__)
PROPOSAL_TOKENS = 120


class Proposer:
    """One per app: a quiet timer per conversation."""

    def __init__(self, book: MemoryBook, sessions: SessionStore, slot: ModelSlot, cfg: Memory) -> None:
        self.book, self.sessions, self.slot, self.cfg = book, sessions, slot, cfg
        self._timers: dict[str, asyncio.Task[None]] = {}

    def went_on(self, session_id: str, engine_name: str, persona: dict[str, Any] | None) -> None:
        """An answer was saved: proposals wait until the conversation is quiet again."""
        if not (self.cfg.enabled and self.cfg.proposals) or self.book.scopes(persona) == set():
            return
        timer = self._timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()
        task = asyncio.ensure_future(self._when_quiet(session_id, engine_name, persona))
        self._timers[session_id] = task
        task.add_done_callback(lambda done: self._timers.get(session_id) is done and self._timers.pop(session_id))

    async def _when_quiet(self, session_id: str, engine_name: str, persona: dict[str, Any] | None) -> None:
        await asyncio.sleep(self.cfg.quiet_s)
        try:
            await self.propose(session_id, engine_name, persona)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("memory proposals for %s failed", session_id)

    async def propose(self, session_id: str, engine_name: str, persona: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The proposals for the user's statements since the last time (none: the model is not asked)."""
        state = await self.book.store.session_state(session_id)
        turns = [turn for turn in await self.sessions.list_turns(session_id, whole_tree=True)
                 if turn["role"] == "user" and turn["kind"] == "chat" and turn["id"] > (state["proposed_through"] or 0)]
        if not turns:
            return []
        statements = candidates([turn["text"] for turn in turns])
        lines: list[str] = []
        if statements:
            work = ProposalWork(self, statements, language_of(statements))
            lease = self.slot.lease(engine_name, Priority.BACKGROUND, ChatEngine)
            await (await Turn.start(lease, lambda: (None, work))).run_to_end()
            lines = proposed_lines(work.answer, statements)
        made = await self._keep(lines, persona, session_id, turns[-1]["id"])
        await self.book.store.set_session(session_id, proposed_through=turns[-1]["id"])
        return made

    async def _keep(self, lines: list[str], persona: dict[str, Any] | None, session_id: str, turn_id: int) -> list[dict[str, Any]]:
        """Store the lines not known already (as a memory or an open proposal)."""
        scope = self.book.scope_for_new(persona)
        open_texts = {proposal["text"] for proposal in await self.book.store.proposals()}
        made = []
        for line in lines:
            if line in open_texts or await self.book.closeness(line, {scope}) >= DUPLICATE:
                continue
            made.append(await self.book.store.propose(line, scope, session_id, turn_id))
        return made

    def gives_way(self) -> bool:
        return self.slot.waiting_before(Priority.BACKGROUND)

    async def close(self) -> None:
        for task in list(self._timers.values()):
            task.cancel()
        await asyncio.gather(*self._timers.values(), return_exceptions=True)


class ProposalWork:
    """Runner work (turns/runner.py): the model's lines for the statements, or "" when it gave way."""

    def __init__(self, proposer: Proposer, statements: list[str], language: str) -> None:
        self.proposer, self.statements, self.language = proposer, statements, language
        self.answer = ""

    async def begin(self) -> AsyncGenerator[Event, None]:
        return
        yield  # an async generator with nothing before the slot

    async def run(self, engine: ChatEngine, stop: threading.Event) -> AsyncGenerator[Event, None]:
        question = ChatInput([], proposal_prompt(self.statements, self.language), system_prompt=PROMPT[self.language],
                             sampling=Sampling(max_tokens=PROPOSAL_TOKENS, temperature=0.1, seed=1))
        prompt = await run_blocking(engine.prepare, question)
        flag, parts = threading.Event(), []
        async with aclosing(iterate_in_thread(lambda: engine.stream(prompt, flag), flag)) as items:
            async for item in items:
                if self.proposer.gives_way() or stop.is_set():
                    flag.set()
                    return
                if isinstance(item, Token):
                    parts.append(item.text)
        self.answer = "".join(parts)
        return
        yield

    async def finish(self) -> Event:
        return ChatDone(None, "done", "", Usage(None, None, 0), {})

    async def save_partial(self, reason: str) -> None:
        return None
