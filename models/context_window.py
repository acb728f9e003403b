"""What of a conversation goes into a local chat model's context, in the order that keeps the
cached prefix: the system prompt, the summary of what fell out, the kept window of turns, the
new message. Token counts come from the model's own tokenizer (the caller's `count`).

The window keeps its prefix: while the history fits, the window starts where it started
before, so llama.cpp reuses the evaluated prefix; when it no longer fits (the answer's reserve
included), old turns are dropped **in a block**, down to `low_water` of the history's room, at
a user message (a turn is never cut, a tool call stays with its result), so the turns that
follow reuse the new prefix until the next overflow. One tool result larger than a quarter of
the room is cut with a marker, never silently; a new message that alone does not fit is refused.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from core.contracts import ChatInput, MemoryPart, Window
from core.errors import AppError, ContextOverflow
from settings import env_name

TOOL_SHARE = 4  # one tool result may take at most 1/TOOL_SHARE of the history's room
CUT_MARK = "\n…[{kept}/{total} 토큰만 전달: 너무 긴 도구 결과를 잘랐습니다]"


class ContextLengthExceeded(AppError):
    """The messages do not fit and the caller asked not to drop any (/v1, as OpenAI answers)."""

    status = 400
    code = "context_length_exceeded"


@dataclass(frozen=True)
class Fitted:
    start: int  # where the window starts in the history
    dropped: tuple[int, int] | None  # a block dropped by this fit: history[a:b]
    tokens: int  # the prompt's tokens with this window


class Renderer(Protocol):
    """The prompt's token count for a window start, with the current window (its summary)."""

    window: Window

    def set_window(self, window: Window) -> None: ...

    def count(self, start: int) -> int: ...


def turn_starts(history: Sequence[dict[str, Any]]) -> list[int]:
    """Where a window may start: at a user message (or past the end)."""
    return [at for at, message in enumerate(history) if message.get("role") == "user"] + [len(history)]


def fit_window(history: Sequence[dict[str, Any]], window: Window, budget: int, count: Callable[[int], int]) -> Fitted:
    """The window for this turn. `count(start)`: the prompt's tokens with the window starting at
    `start` (system, summary and the new message included)."""
    starts = turn_starts(history)
    start = next(at for at in starts if at >= min(window.start, len(history)))
    tokens = count(start)
    if tokens <= budget * (1 - window.headroom):
        return Fitted(start, None, tokens)
    if window.overflow == "refuse":
        raise ContextLengthExceeded(
            f"This model's maximum context length is {budget} tokens for the prompt (the answer's reserve aside); "
            f"your messages resulted in {tokens} tokens. Please reduce the length of the messages.")
    fixed = count(len(history))
    if fixed > budget:
        raise ContextOverflow(
            f"the message is too long for the model's context: {fixed} tokens, at most {budget} fit. "
            f"Shorten it or raise {env_name('chat', 'n_ctx')}")
    chosen = low_water_start(history, window, budget, count, start, fixed)
    return Fitted(chosen, (start, chosen), count(chosen))


def low_water_start(history: Sequence[dict[str, Any]], window: Window, budget: int, count: Callable[[int], int], start: int,
                    fixed: int | None = None) -> int:
    """The first turn start after `start` whose prompt is at most the low-water mark: what is
    fixed (system, summary, message) plus `low_water` of the rest of the room."""
    fixed = count(len(history)) if fixed is None else fixed
    target = fixed + int((budget - fixed) * window.low_water)
    candidates = [at for at in turn_starts(history) if at > start]
    low, high = 0, len(candidates) - 1  # the last candidate (no history) always fits the target
    while low < high:
        middle = (low + high) // 2
        if count(candidates[middle]) <= target:
            high = middle
        else:
            low = middle + 1
    return candidates[low]


def cut_tool_results(history: list[dict[str, Any]], room: int, tokens_of: Callable[[str], int]) -> list[dict[str, Any]]:
    """Tool results over a quarter of the history's room, cut with a marker saying so."""
    limit = max(64, room // TOOL_SHARE)
    out = []
    for message in history:
        if message.get("role") == "tool" and len(message.get("content") or "") > limit:  # chars >= tokens
            total = tokens_of(message["content"])
            if total > limit:
                keep = int(len(message["content"]) * limit / total)
                message = {**message, "content": message["content"][:keep] + CUT_MARK.format(kept=limit, total=total)}
        out.append(message)
    return out


SENTENCE_END = re.compile(r"(?<=[.!?。])\s|\n")


def first_sentence(text: str, limit: int = 120) -> str:
    sentence = SENTENCE_END.split(text.strip(), maxsplit=1)[0].strip()
    return sentence if len(sentence) <= limit else sentence[:limit].rstrip() + "…"


def extractive(previous: str, dropped: Sequence[dict[str, Any]], limit_chars: int,
               tokens_of: Callable[[str], int] | None = None, limit_tokens: int = 0) -> str:
    """The previous summary, then the first sentence of each dropped user message. While it is
    longer than `limit_chars` (or `limit_tokens` by `tokens_of`), lines go from the middle: the
    first things the user said (a name, the task) and the latest ones stay."""
    lines = [line for line in previous.splitlines() if line.strip()]
    lines += [f"- {first_sentence(m['content'])}" for m in dropped if m.get("role") == "user" and m.get("content")]

    def too_long(text: str) -> bool:
        return len(text) > limit_chars or (tokens_of is not None and tokens_of(text) > limit_tokens)

    while too_long("\n".join(lines)) and len(lines) > 1:
        lines.pop(len(lines) // 2)
    text = "\n".join(lines)[-limit_chars:]
    while text and too_long(text):
        text = text[len(text) // 4:]
    return text


def memory_text(part: MemoryPart | None, tokens_of: Callable[[str], int]) -> tuple[str, int]:
    """The memory part as the prompt holds it, and how many of its lines fit its budget (the
    first ones: the caller orders them so the part's start stays from turn to turn)."""
    if part is None or not part.lines:
        return "", 0
    kept: list[str] = []
    for line in part.lines:
        text = f"[{part.label}]\n" + "\n".join(f"- {kept_line}" for kept_line in [*kept, line])
        if tokens_of(text) > part.budget:
            break
        kept.append(line)
    if not kept:
        return "", 0
    return f"[{part.label}]\n" + "\n".join(f"- {line}" for line in kept), len(kept)


def with_summary(system_prompt: str, window: Window, memory: str = "") -> str:
    """The system part, the memories, then the summary of what fell out, each under its label."""
    parts = [system_prompt, memory, f"[{window.summary_label}]\n{window.summary}" if window.summary else ""]
    return "\n\n".join(part for part in parts if part)


def summarise_drop(history: Sequence[dict[str, Any]], render: Renderer, fitted: Fitted, budget: int,
                   tokens_of: Callable[[str], int]) -> Fitted:
    """What fell out goes into the summary (first sentences) now, and the block is chosen again
    with that summary in place, so the low-water mark holds with it (else the summary's growth
    would fill the room and drop again at the next turn). `render` ends on the chosen window."""
    assert fitted.dropped is not None
    first, end = fitted.dropped[0], fitted.start
    previous = render.window.summary_base or render.window.summary

    def summary_through(stop: int) -> str:
        return extractive(previous, history[first:stop], render.window.summary_chars, tokens_of, budget // 8)

    for _ in range(2):
        render.set_window(replace(render.window, summary=summary_through(end), headroom=0.0))
        end = max(end, low_water_start(history, render.window, budget, render.count, first))
    render.set_window(replace(render.window, start=end, summary=summary_through(end), summary_base=""))
    again = fit_window(history, render.window, budget, render.count)  # fits: the message alone fitted before
    return Fitted(again.start, (first, again.start), again.tokens)


def rough_tokens(text: str) -> int:
    """A tokenizer's count from above, for engines without one here (remote, vision): about a
    token per Hangul syllable (3 UTF-8 bytes) and per 3 bytes of Latin text."""
    return len(text.encode("utf-8")) // 3 + 1


def system_with_memories(request: ChatInput, configured: str) -> str:
    """The system message of an engine that keeps no window of its own (remote, vision): the
    system prompt, then the memories within their budget (counted from above)."""
    return with_summary(request.system_or(configured), Window(), memory_text(request.memory, rough_tokens)[0])
