"""A chat turn's memories (memories/): the remember/forget request in the message saved at once,
and the memories of the prompt.

The memory part (after the system prompt, before the summary) is part of the cached prefix, so
it changes only when the prefix changes anyway: at a conversation's first turn and when its
window drops a block. Memories that become relevant in between go with the new message (the
tail of the prompt) and join the part at the next drop, after what it held; when the budget is
full, the oldest that is not relevant now leaves first. The background upkeep that drops the
block warms the prefix with the part as the next turn will set it (next_part).
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from core.contracts import MemoryPart
from core.events import Event, MemorySaved
from memories.book import MemoryBook, Saved
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


def saved_json(saved: Saved) -> dict:
    return {"action": saved.action, "memory": saved.memory, "previous": saved.previous}


class TurnMemory:
    """One turn's memory work; `persona` decides the scopes (None: the plain assistant)."""

    def __init__(self, book: MemoryBook, cfg: Memory, persona: dict | None, proposer: Proposer | None = None) -> None:
        self.book, self.store, self.cfg, self.persona, self.proposer = book, book.store, cfg, persona, proposer
        self.part: MemoryPart | None = None
        self.ids: list[int] = []  # the memory part's
        self.pending: list[int] = []  # with the message
        self._texts: dict[int, str] = {}
        self._label = LABELS["en"]

    async def begin(self, session_id: str, message: str, turn_id: int | None, window_start: int = 0,
                    first_turn: bool = True) -> AsyncIterator[Event]:
        """The cue saved (an event for the page's 되돌리기), then the memories this turn's prompt
        holds: the part is set at a conversation's first turn and when its window has dropped
        since (the prefix changes then anyway); memories that come up in between go with the
        message, so the cached prefix stays."""
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
        ids, pending = self.book.usable(state["memory_ids"], scopes), self.book.usable(state["memory_pending"], scopes)
        self._texts = self.book.texts([*ids, *pending, *relevant])
        cost = {memory_id: rough_tokens(f"- {text}\n") for memory_id, text in self._texts.items()}
        budget = self.cfg.budget_tokens - LABEL_TOKENS
        if first_turn or state["memory_start"] != window_start:
            ids = keep_prefix(ids, [*pending, *relevant] if first_turn else pending, cost, budget)
        self.ids = ids
        self.pending = [i for i in keep_prefix(ids, relevant, cost, budget) if i not in ids]
        changed = (self.ids, self.pending, window_start) != (state["memory_ids"], state["memory_pending"],
                                                             state["memory_start"])
        if changed:
            await self.store.set_session(session_id, memory_ids=self.ids, memory_pending=self.pending,
                                         memory_start=window_start)
        self._label = LABELS[language_of([message, *self._texts.values()])]
        if self.ids or self.pending:
            self.part = MemoryPart(self._label, self._lines(self.ids), self.cfg.budget_tokens, self._lines(self.pending))

    def _lines(self, ids: list[int]) -> tuple[str, ...]:
        return tuple(self._texts[memory_id] for memory_id in ids)

    def next_part(self) -> MemoryPart | None:
        """The part as the next drop of the window sets it (what came up joins it): the upkeep
        warms the prefix with it, and the next turn sets the same one."""
        if not (self.ids or self.pending):
            return self.part
        cost = {memory_id: rough_tokens(f"- {text}\n") for memory_id, text in self._texts.items()}
        ids = keep_prefix(self.ids, self.pending, cost, self.cfg.budget_tokens - LABEL_TOKENS)
        return MemoryPart(self._label, self._lines(ids), self.cfg.budget_tokens)

    def used(self, kept: int | None) -> list[dict]:
        """The memories the prompt held: the first `kept` of the part (None: all, an engine
        without a window of its own) and those with the message."""
        ids = [*(self.ids if kept is None else self.ids[:kept]), *self.pending]
        return [{"id": memory_id, "text": self._texts[memory_id]} for memory_id in ids]

    def after_answer(self, session_id: str, engine_name: str) -> None:
        """The conversation went on: its proposals wait for it to be quiet."""
        if self.proposer is not None and engine_name:
            self.proposer.went_on(session_id, engine_name, self.persona)

    async def mark_used(self, kept: int | None) -> list[dict]:
        used = self.used(kept)
        await self.store.mark_used([memory["id"] for memory in used])
        return used


async def stored_part(book: MemoryBook, cfg: Memory, session_id: str, persona: dict | None) -> MemoryPart | None:
    """The memory part a conversation's prompt holds now (the context view shows it)."""
    state = await book.store.session_state(session_id)
    scopes = book.scopes(persona)
    if not cfg.enabled or state["memory_off"] or not scopes or not state["memory_ids"]:
        return None
    await book.ready()
    texts = book.texts(book.usable(state["memory_ids"], scopes))
    if not texts:
        return None
    return MemoryPart(LABELS[language_of(list(texts.values()))], tuple(texts.values()), cfg.budget_tokens)
