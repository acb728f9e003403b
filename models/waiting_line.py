"""The requests waiting for the model slot (vram_guard.py): who goes next and how long each waits.

Order: higher priority first (chat > vision > image > background), then requests the resident
model can serve without a swap (A B A B -> A A B B), then arrival. The grouping is bounded: a
request passed over `max_jumps` times, or waiting `max_wait_s`, goes next and nothing passes it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from core.events import Queued
from models.swaps import EarlySwap, SwapPlan, moving_average
from settings import Slot as SlotSettings


@dataclass(eq=False)
class Ticket:
    """One request's place in the line (a lease holds one)."""

    engine: str
    priority: int
    seq: int = 0
    enqueued_at: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    granted: bool = False
    jumped: int = 0  # later requests served before this one
    swap: SwapPlan | None = None  # set at the grant when the engine must be loaded first
    granted_at: float = 0.0
    early: EarlySwap | None = None  # the swap, when it was started before acquire()


class WaitingLine:
    def __init__(self, settings: SlotSettings, clock: Callable[[], float]) -> None:
        self.settings, self._clock = settings, clock
        self._tickets: list[Ticket] = []  # waiting only: a granted ticket leaves the line
        self._seq = 0
        self._hold_ema: dict[str, float] = {}  # how long each engine is usually held

    def __len__(self) -> int:
        return len(self._tickets)

    def __iter__(self) -> Iterator[Ticket]:
        return iter(list(self._tickets))

    def __contains__(self, ticket: Ticket) -> bool:
        return ticket in self._tickets

    def add(self, ticket: Ticket) -> None:
        self._seq += 1
        ticket.seq, ticket.enqueued_at = self._seq, self._clock()
        self._tickets.append(ticket)

    def remove(self, ticket: Ticket) -> None:
        self._tickets.remove(ticket)

    def count(self, engine: str) -> int:
        return sum(1 for t in self._tickets if t.engine == engine)

    def waiting_before(self, priority: int) -> bool:
        """Whether a request of a higher priority than `priority` waits."""
        return any(ticket.priority < priority for ticket in self._tickets)

    def order(self, ready: Callable[[str], bool]) -> list[Ticket]:
        """Who would go next, best first; `ready(engine)`: its model is loaded and idle."""
        now = self._clock()
        due = [t for t in self._tickets if self._is_due(t, now)]
        if due:
            return [min(due, key=lambda t: t.seq)]  # fairness: the overdue request goes next and nothing passes it
        return sorted(self._tickets, key=lambda t: (t.priority, not ready(t.engine), t.seq))

    def _is_due(self, ticket: Ticket, now: float) -> bool:
        return ticket.jumped >= self.settings.max_jumps or now - ticket.enqueued_at >= self.settings.max_wait_s

    def granted(self, ticket: Ticket) -> None:
        """`ticket` leaves the line for the slot; the earlier ones it passed count a jump."""
        for other in self._tickets:
            if other.seq < ticket.seq:
                other.jumped += 1
        self._tickets.remove(ticket)
        ticket.granted, ticket.granted_at = True, self._clock()
        ticket.changed.set()

    def wake(self) -> None:
        """Every waiting request re-reads its place."""
        for ticket in self._tickets:
            ticket.changed.set()

    def held(self, engine: str, seconds: float) -> None:
        self._hold_ema[engine] = moving_average(self._hold_ema.get(engine), seconds)

    def place(self, ticket: Ticket, load_s: float) -> Queued:
        """Where a waiting ticket stands, and a rough wait (`load_s`: its model's load, if any)."""
        position = 1 + sum(1 for t in self._tickets if (t.priority, t.seq) < (ticket.priority, ticket.seq))
        return Queued(position, self.eta(position, load_s))

    def eta(self, position: int, load_s: float) -> float:
        """A rough wait: requests ahead times the usual hold, plus a load."""
        hold = sum(self._hold_ema.values()) / len(self._hold_ema) if self._hold_ema else 5.0
        return round(position * hold + load_s, 1)
