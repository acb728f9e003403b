"""A chat turn's memories (memories/): the remember/forget request in the message saved at once,
and the memory part of the prompt.

The part keeps its start from turn to turn: the memories a conversation's prompt already holds
stay, in the order they came, and the ones that become relevant now are added after them; when
the budget is full, the oldest that is not relevant now leaves first. So the prompt's prefix
(system, persona, memories) changes only on a turn that brings a new memory, and llama.cpp
reuses the rest of the time.
"""
from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

from core.contracts import MemoryPart
from core.events import Event, MemorySaved
from memories.book import MemoryBook
from memories.cues import parse_cue
from models.context_window import rough_tokens
from settings import Memory
from turns.context_memory import language_of
from turns.memory_proposals import Proposer

LABELS = {"ko": "사용자에 대해 기억하는 것", "en": "What you remember about the user"}
LABEL_TOKENS = 12  # the label line, from above


def keep_prefix(previous: Sequence[int], relevant: Sequence[int], cost: dict[int, int], budget: int) -> list[int]:
    """The part's memories: what it held, then the new relevant ones, within `budget`."""
    ids = [*previous, *(memory_id for memory_id in relevant if memory_id not in previous)]
    while ids and sum(cost.get(memory_id, 0) for memory_id in ids) > budget:
        stale = next((memory_id for memory_id in ids if memory_id not in relevant), None)
        ids.remove(stale if stale is not None else ids[-1])
    return ids


def memory_part(lines: Sequence[str], cfg: Memory, sample: Sequence[str]) -> MemoryPart | None:
    """The prompt's memory part for these lines, labelled in the language of `sample` (the message)."""
    if not lines:
        return None
    return MemoryPart(LABELS[language_of([*sample, *lines])], tuple(lines), cfg.budget_tokens)


class TurnMemory:
    """One turn's memory work; `persona` decides the scopes (None: the plain assistant)."""

    def __init__(self, book: MemoryBook, cfg: Memory, persona: dict[str, Any] | None, proposer: Proposer | None = None) -> None:
        self.book, self.store, self.cfg, self.persona, self.proposer = book, book.store, cfg, persona, proposer
        self.part: MemoryPart | None = None
        self.ids: list[int] = []
        self._texts: dict[int, str] = {}

    async def begin(self, session_id: str, message: str, turn_id: int | None) -> AsyncGenerator[Event, None]:
        """The cue saved (an event for the page's 되돌리기), then the part this turn's prompt holds."""
        cue = parse_cue(message) if self.cfg.enabled else None
        if cue is not None:
            if cue.action == "remember":
                saved = await self.book.remember(cue.fact, self.book.scope_for_new(self.persona), (session_id, turn_id))
            else:
                saved = await self.book.forget(cue.fact, self.book.scopes(self.persona))
            yield MemorySaved(saved.action, saved.memory, saved.previous)
        state = await self.store.session_state(session_id)
        scopes = self.book.scopes(self.persona)
        if not self.cfg.enabled or state["memory_off"] or not scopes:
            return
        relevant = [found["id"] for found in await self.book.recall(message, scopes)]
        previous = self.book.usable(state["memory_ids"], scopes)
        texts = self.book.texts([*previous, *relevant])
        cost = {memory_id: rough_tokens(f"- {text}\n") for memory_id, text in texts.items()}
        self.ids = keep_prefix(previous, relevant, cost, self.cfg.budget_tokens - LABEL_TOKENS)
        if self.ids != state["memory_ids"]:
            await self.store.set_session(session_id, memory_ids=self.ids)
        self._texts = texts
        self.part = memory_part([texts[memory_id] for memory_id in self.ids], self.cfg, [message])

    def used(self, kept: int | None) -> list[dict[str, Any]]:
        """The memories the prompt held: the first `kept` of the part (None: all, an engine
        without a window of its own)."""
        ids = self.ids if kept is None else self.ids[:kept]
        return [{"id": memory_id, "text": self._texts[memory_id]} for memory_id in ids]

    def after_answer(self, session_id: str, engine_name: str) -> None:
        """The conversation went on: its proposals wait for it to be quiet."""
        if self.proposer is not None and engine_name:
            self.proposer.went_on(session_id, engine_name, self.persona)

    async def mark_used(self, kept: int | None) -> list[dict[str, Any]]:
        used = self.used(kept)
        await self.store.mark_used([memory["id"] for memory in used])
        return used


async def stored_part(book: MemoryBook, cfg: Memory, session_id: str, persona: dict[str, Any] | None) -> MemoryPart | None:
    """The memory part a conversation's prompt holds now (the context view shows it)."""
    state = await book.store.session_state(session_id)
    scopes = book.scopes(persona)
    if not cfg.enabled or state["memory_off"] or not scopes or not state["memory_ids"]:
        return None
    await book.ready()
    return memory_part(list(book.texts(book.usable(state["memory_ids"], scopes)).values()), cfg, [])
