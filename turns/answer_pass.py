"""One pass of generation as a value, and an answer's figures as the sum of its passes.

An answer is one pass, plus one per tool step (the tool results answered in a next pass). A
pass records what the engine said and made; the answer only adds them up and decides its finish
reason, here and nowhere else.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from core.events import ToolCallMade

ENDS_WITH_CALLS = ("done", "trimmed", "tool_calls")  # an engine's reasons a pass with calls may end with


@dataclass
class Pass:
    started: float = field(default_factory=time.perf_counter)
    prompt_tokens: int | None = None  # the prompt's tokens (the engine's Finish counts them again)
    parts: list[str] = field(default_factory=list)  # the text, token by token
    calls: list[ToolCallMade] = field(default_factory=list)  # parsed from the text, or made by a remote server
    first_token_at: float | None = None
    ended_at: float | None = None
    completion_tokens: int | None = None  # from the engine's Finish
    reason: str = "stopped"  # the engine's finish reason; "stopped" until it says

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_token_at is None else round((self.first_token_at - self.started) * 1000, 1)

    @property
    def tokens(self) -> int:
        """Tokens generated: the engine's count, else those seen (a pass stopped before its end)."""
        return self.completion_tokens if self.completion_tokens is not None else len(self.parts)

    @property
    def decode_s(self) -> float:
        """The time after the first token (the decode's share of the pass)."""
        end = self.ended_at or time.perf_counter()
        return max(0.0, end - (self.first_token_at or self.started))

    def finish_reason(self) -> str:
        """Why this pass ended: a pass whose calls are to be answered ends in "tool_calls"."""
        return "tool_calls" if self.calls and self.reason in ENDS_WITH_CALLS else self.reason


@dataclass(frozen=True)
class Figures:
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_ms: float | None
    tokens_per_s: float | None

    def as_turn(self, dropped_turns: int) -> dict[str, Any]:
        """The answer turn's stored metrics (store/sessions.py TURN_METRICS)."""
        return {"finish_reason": self.finish_reason, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "ttft_ms": self.ttft_ms,
                "tokens_per_s": self.tokens_per_s, "dropped_turns": dropped_turns}


def figures(passes: list[Pass], ended: str | None = None, chat_tools: bool = False) -> Figures:
    """The answer's figures over its passes. `ended`: "stopped" or "error" when it did not finish;
    `chat_tools`: a chat answer with the built-in tools ends with text (its steps are kept)."""
    if not passes:
        return Figures(ended or "error", None, None, None, None)
    reason = ended or passes[-1].finish_reason()
    if chat_tools and reason == "tool_calls":
        reason = "done"
    generated = sum(p.tokens for p in passes)
    decoding = sum(p.decode_s for p in passes if p.first_token_at is not None)
    after_first = sum(max(0, p.tokens - 1) for p in passes if p.first_token_at is not None)
    return Figures(
        finish_reason=reason,
        prompt_tokens=passes[-1].prompt_tokens,
        completion_tokens=generated if generated or any(p.completion_tokens is not None for p in passes) else None,
        ttft_ms=next((p.ttft_ms for p in passes if p.ttft_ms is not None), None),  # what the user waited for
        tokens_per_s=round(after_first / decoding, 2) if generated and decoding > 0 else None,  # decode speed
    )
