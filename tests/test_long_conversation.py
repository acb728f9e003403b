"""Conversations longer than the context: the window rule (models/context_window.py), the real
engine's reused prefix, summaries per branch kept across a restart, the context view, and /v1's
OpenAI answer when messages do not fit."""
from __future__ import annotations

import itertools
import threading
import time

import httpx
import openai
import pytest

from chat import create_app
from core.contracts import ChatInput, Window
from core.errors import ContextOverflow
from core.events import Token
from llm_engine import LlmEngine
from models.context_window import ContextLengthExceeded, cut_tool_results, extractive, fit_window, turn_starts
from settings import ChatModel
from tests.conftest import make_settings, read_frames, serve

CHAT = "/chat_stream_sse_fetch"


def chars_count(history: list[dict], fixed: int = 40):
    """A stand-in tokenizer: 1 token per 4 characters, 4 a message, `fixed` for system + message."""
    return lambda start: fixed + sum(4 + len(m["content"]) // 4 for m in history[start:])


def conversation(turns: int, size: int = 200) -> list[dict]:
    history = []
    for i in range(turns):
        history += [{"role": "user", "content": f"question {i} " + "q" * size},
                    {"role": "assistant", "content": f"answer {i} " + "a" * size}]
    return history


def test_the_window_keeps_its_start_until_it_overflows_then_drops_a_block_to_the_low_water_mark():
    budget, window, starts = 600, Window(), []
    for turns in range(1, 30):
        history = conversation(turns)
        fitted = fit_window(history, window, budget, chars_count(history))
        assert fitted.tokens <= budget and fitted.start in turn_starts(history)
        if fitted.dropped is not None:  # a block, down to half of the history's room
            assert fitted.dropped == (window.start, fitted.start) and fitted.start - window.start >= 4
            assert fitted.tokens <= 40 + (budget - 40) * window.low_water
        else:
            assert fitted.start == window.start  # the prefix is the same as the turn before
        starts.append(fitted.start)
        window = Window(start=fitted.start)
    changes = sum(1 for a, b in itertools.pairwise(starts) if a != b)
    assert 3 <= changes <= len(starts) // 3  # overflows are rare: not one drop per turn


def test_a_tool_call_stays_with_its_result_and_no_turn_is_cut():
    history = []
    for i in range(12):
        history += [{"role": "user", "content": f"q{i} " + "x" * 120},
                    {"role": "assistant", "content": "", "tool_calls": [{"id": f"c{i}", "type": "function",
                                                                         "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "content": "r" * 120, "tool_call_id": f"c{i}"},
                    {"role": "assistant", "content": f"a{i} " + "y" * 120}]
    fitted = fit_window(history, Window(), 500, chars_count(history))
    assert fitted.dropped is not None and history[fitted.start]["role"] == "user"
    kept = history[fitted.start:]
    calls = {c["id"] for m in kept for c in m.get("tool_calls", [])}
    results = {m["tool_call_id"] for m in kept if m["role"] == "tool"}
    assert calls == results  # every call kept has its result, every result its call


def test_what_cannot_fit_is_refused_or_cut_never_silently():
    history = conversation(10)
    with pytest.raises(ContextLengthExceeded, match="maximum context length is 500"):
        fit_window(history, Window(overflow="refuse"), 500, chars_count(history))
    with pytest.raises(ContextOverflow, match="AIONE_CHAT__N_CTX"):
        fit_window(history, Window(), 500, chars_count(history, fixed=900))
    cut = cut_tool_results([{"role": "tool", "content": "결과 " * 2000}], 800, lambda text: len(text) // 2)
    assert len(cut[0]["content"]) < 2000 and "토큰만 전달" in cut[0]["content"]
    summary = extractive("- 이전 줄", [{"role": "user", "content": "내 이름은 민지야. 그리고 다른 말."},
                                     {"role": "assistant", "content": "반가워요."}], 600)
    assert summary == "- 이전 줄\n- 내 이름은 민지야."


def test_the_real_engine_reuses_its_prefix_between_overflows():
    engine = LlmEngine(ChatModel(temperature=0.0, seed=1, max_tokens=16, n_threads=2, n_ctx=1024))
    engine.load()
    try:
        history, window, previous, overflows = [], Window(), None, 0
        for turn in range(14):
            message = f"Turn {turn}: remember the number {turn * 7}. " + "Some words about the weather. " * 8
            prompt = engine.prepare(ChatInput(history, message, system_prompt="Be brief.", session_id="s", window=window))
            fit = prompt.context
            if fit.dropped is None and previous is not None:
                # llama-cpp-python re-reads nothing it had: the whole last prompt (and answer) is a prefix
                assert prompt.cached_tokens >= len(previous.tokens)
            elif fit.dropped is not None:
                overflows += 1
                assert fit.dropped[1] - fit.dropped[0] >= 4 and history[fit.start]["role"] == "user"
            answer = "".join(i.text for i in engine.stream(prompt, threading.Event()) if isinstance(i, Token))
            history += [{"role": "user", "content": message}, {"role": "assistant", "content": answer}]
            window, previous = Window(start=fit.start, summary=fit.summary), prompt
        assert 1 <= overflows <= 4
    finally:
        engine.unload()


def _chat(url: str, message: str, session_id: str | None = None, **extra) -> dict:
    with httpx.stream("POST", url + CHAT, json={"message": message, "session_id": session_id, **extra},
                      timeout=120) as response:
        frames = read_frames(response)
    done = next(f for f in frames if isinstance(f, dict) and f["type"] == "done")
    session = next(f for f in frames if isinstance(f, dict) and f["type"] == "session")["session_id"]
    trimmed = any(isinstance(f, dict) and f["type"] == "status" and f.get("state") == "history_trimmed" for f in frames)
    return {"done": done, "session_id": session, "trimmed_now": trimmed}


def _idle(url: str) -> None:
    """Wait for the background upkeep (it starts a second after an answer and holds the slot while
    it works)."""
    from turns.context_memory import UPKEEP_DELAY_S

    time.sleep(UPKEEP_DELAY_S + 0.3)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = httpx.get(url + "/api/slot").json()
        if not state["holders"] and not state["queue"]:
            return
        time.sleep(0.1)
    raise AssertionError("the upkeep did not finish")


@pytest.fixture
def long_settings(isolated_data):
    settings = make_settings(isolated_data, n_ctx=1024, max_tokens=16)
    settings.context.summaries = False  # the first-sentence summary: what this test checks, word for word
    return settings


def test_a_fact_from_turn_one_stays_in_the_prompt_through_the_summary_per_branch_and_across_a_restart(long_settings):
    fact = "내 이름은 민지고 회사에서 파이썬으로 데이터 분석을 해."
    with serve(create_app(long_settings)) as url:
        session, warm_starts, summarized = None, [], 0
        for turn in range(12):
            text = (fact + " ") if turn == 0 else f"{turn}번째 이야기. "
            result = _chat(url, text + "오늘 날씨와 산책 이야기를 길게 해 줘. " * 3, session)
            session = result["session_id"]
            done, context = result["done"], result["done"]["context"]
            assert context["n_ctx"] == 1024 and 0 < context["used_tokens"] <= 1024
            if context["summarized_turns"] > summarized and not result["trimmed_now"]:
                # the upkeep dropped this block after the last answer and evaluated the new prefix:
                # llama.cpp re-reads only this turn's message
                warm_starts.append(done["usage"]["cached_tokens"] / done["usage"]["prompt_tokens"])
            summarized = context["summarized_turns"]
            _idle(url)
        view = httpx.get(url + f"/api/sessions/{session}/context").json()
        turns = httpx.get(url + f"/api/sessions/{session}/turns").json()["turns"]
    assert result["done"]["context"]["summarized_turns"] > 0
    assert warm_starts and min(warm_starts) > 0.6, warm_starts  # the upkeep's drop, and its prefix warm
    kinds = [part["kind"] for part in view["parts"]]
    assert kinds[0] == "system" and kinds[1] == "summary" and set(kinds[2:]) == {"turn"}
    summary = view["parts"][1]
    assert fact in summary["text"] and summary["label"] == "이전 대화 요약" and summary["summary_kind"] == "extractive"
    assert view["window_first_turn_id"] == view["parts"][2]["turn_id"] == turns[view["summarized_turns"]]["id"]
    assert view["used_tokens"] <= view["budget"] < view["n_ctx"] == 1024
    assert sum(part["tokens"] for part in view["parts"]) == view["used_tokens"]  # the parts add up

    with serve(create_app(long_settings)) as url:  # a restart keeps the summaries
        again = httpx.get(url + f"/api/sessions/{session}/context").json()
        assert again["parts"][1]["text"] == summary["text"]
        # an edited first message starts a branch that left the path before the summary: none there
        edited = _chat(url, "다른 이야기로 시작할게.", session, edit=turns[0]["id"])
        assert edited["done"]["context"]["summarized_turns"] == 0
        branch = httpx.get(url + f"/api/sessions/{session}/context").json()
        assert [part["kind"] for part in branch["parts"]] == ["system", "turn", "turn"]
        old_branch = httpx.get(url + f"/api/sessions/{session}/context", params={"turn_id": turns[-1]["id"]}).json()
        assert fact in old_branch["parts"][1]["text"]
        assert httpx.get(url + f"/api/sessions/{session}/context", params={"turn_id": 999999}).status_code == 404


def test_v1_answers_openais_context_length_exceeded_unless_the_server_window_is_asked_for(isolated_data):
    messages = [{"role": "system", "content": "Be brief."}]
    for i in range(20):
        messages += [{"role": "user", "content": f"Question {i}: " + "tell me more about the weather. " * 6},
                     {"role": "assistant", "content": f"Answer {i}: " + "it is sunny and warm today. " * 6}]
    messages.append({"role": "user", "content": "And tomorrow?"})
    settings = make_settings(isolated_data, n_ctx=1024, max_tokens=16)
    with serve(create_app(settings)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="anything", max_retries=0, timeout=120)
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="chat", messages=messages)
        assert refused.value.code == "context_length_exceeded" and refused.value.status_code == 400
        assert "maximum context length" in refused.value.message and "tokens" in refused.value.message
        with pytest.raises(openai.BadRequestError) as streamed:
            client.chat.completions.create(model="chat", messages=messages, stream=True)
        assert streamed.value.code == "context_length_exceeded"
    settings.api.truncate = True
    with serve(create_app(settings)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="anything", max_retries=0, timeout=120)
        answer = client.chat.completions.create(model="chat", messages=messages)
        assert answer.choices[0].message.content is not None and answer.usage.prompt_tokens < 1024
