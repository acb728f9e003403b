"""An answer's figures are the sum of its passes, and its finish reason is decided in one place."""
from __future__ import annotations

from core.events import ToolCallMade
from turns.answer_pass import Pass, figures


def a_pass(tokens: int, reason: str = "done", calls: int = 0, prompt: int = 10, seconds: float = 1.0) -> Pass:
    this = Pass(started=100.0, prompt_tokens=prompt, parts=["x"] * tokens, first_token_at=100.5,
                ended_at=100.5 + seconds, completion_tokens=tokens, reason=reason)
    this.calls = [ToolCallMade(i, f"call{i}", "search_documents", "{}") for i in range(calls)]
    return this


def test_one_pass():
    result = figures([a_pass(11)])
    assert (result.finish_reason, result.prompt_tokens, result.completion_tokens) == ("done", 10, 11)
    assert result.ttft_ms == 500.0 and result.tokens_per_s == 10.0  # tokens after the first over the time after it


def test_tool_steps_add_up_and_the_first_pass_is_what_the_user_waited_for():
    first, second = a_pass(5, calls=1, prompt=10), a_pass(11, prompt=40)
    second.started, second.first_token_at, second.ended_at = 200.0, 200.25, 201.25
    result = figures([first, second], chat_tools=True)
    assert result.completion_tokens == 16 and result.prompt_tokens == 40 and result.ttft_ms == 500.0
    assert result.tokens_per_s == round((4 + 10) / 2.0, 2) and result.finish_reason == "done"


def test_the_finish_reason():
    assert figures([a_pass(3, calls=1)]).finish_reason == "tool_calls"  # /v1: the client answers the calls
    assert figures([a_pass(3, calls=1)], chat_tools=True).finish_reason == "done"  # the page's answer ends in text
    assert figures([a_pass(3, reason="trimmed")]).finish_reason == "trimmed"
    assert figures([a_pass(3, calls=1, reason="trimmed")]).finish_reason == "tool_calls"
    assert figures([a_pass(3)], ended="stopped").finish_reason == "stopped"
    assert figures([]).finish_reason == "error" and figures([], ended="stopped").finish_reason == "stopped"


def test_a_pass_stopped_before_its_end_counts_the_tokens_seen():
    stopped = Pass(started=1.0, parts=["a", "b", "c"], first_token_at=1.1)
    assert stopped.reason == "stopped" and figures([stopped]).completion_tokens == 3
