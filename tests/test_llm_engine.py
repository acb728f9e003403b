"""The chat engine on the real embedded SmolLM2 GGUF through llama-cpp-python."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.contracts import ChatInput, Finish, Sampling
from core.errors import ContextOverflow, ModelLoadError, ModelMissing
from core.events import Token
from llm_engine import LlmEngine
from models.gguf import read_shape
from settings import ChatModel, embedded_chat_model_path

SYSTEM = "You are a helpful assistant."


def engine(**overrides) -> LlmEngine:
    cfg = {"temperature": 0.0, "seed": 1, "max_tokens": 24, "n_threads": 2} | overrides
    return LlmEngine(ChatModel(**cfg))


@pytest.fixture(scope="module")
def loaded():
    e = engine()
    e.load()
    yield e
    e.unload()


def answer(e: LlmEngine, message: str, history: list[dict] | None = None) -> tuple[str, Finish]:
    items = list(e.stream(e.prepare(ChatInput(history or [], message, system_prompt=SYSTEM)), threading.Event()))
    assert isinstance(items[-1], Finish) and all(isinstance(i, Token) for i in items[:-1])
    return "".join(i.text for i in items[:-1]), items[-1]


def test_load_and_unload():
    e = engine()
    assert not e.loaded
    e.load()
    assert e.loaded
    e.unload()
    assert not e.loaded
    e.unload()  # twice is harmless


def test_greedy_answers_are_repeatable_and_counted():
    # Two fresh loads: a prefix-cached prompt evaluates its last token alone, and
    # llama.cpp's single-token and batched kernels can differ in the last bits.
    texts = []
    for _ in range(2):
        e = engine()
        e.load()
        try:
            text, finish = answer(e, "What is the capital of France?")
        finally:
            e.unload()
        texts.append(text)
    assert texts[0] == texts[1] and texts[0].strip()
    assert finish.prompt_tokens > 10 and 1 <= finish.completion_tokens <= 24
    assert finish.reason in ("done", "trimmed")


def test_the_chat_template_comes_from_the_gguf(loaded):
    prompt = loaded.prepare(ChatInput([], "hello", system_prompt=SYSTEM))
    text = loaded._llm.detokenize(prompt.tokens, special=True).decode()
    template = loaded._llm.metadata["tokenizer.chat_template"]
    assert "<|im_start|>" in template and "<|im_start|>user\nhello<|im_end|>" in text
    assert text.rstrip().endswith("<|im_start|>assistant")


def test_stop_flag_ends_generation_within_one_token(loaded):
    stop = threading.Event()
    prompt = loaded.prepare(ChatInput([], "Write a very long story about a dragon.", system_prompt=SYSTEM))
    received = []
    for item in loaded.stream(prompt, stop):
        received.append(item)
        if len(received) == 3:
            stop.set()
    tokens = [i for i in received if isinstance(i, Token)]
    assert len(tokens) <= 4 and received[-1].reason == "stopped"


def test_long_history_drops_old_turns_in_a_block_into_a_summary_and_keeps_system_and_new_message():
    e = engine(n_ctx=256, max_tokens=32)
    e.load()
    try:
        history = []
        for i in range(12):
            history += [{"role": "user", "content": f"Question number {i}: tell me about topic {i}."},
                        {"role": "assistant", "content": f"Answer {i}: " + "details " * 10}]
        prompt = e.prepare(ChatInput(history, "The newest question?", system_prompt=SYSTEM))
        text = e._llm.detokenize(prompt.tokens, special=True).decode()
        assert prompt.dropped_messages > 0 and prompt.dropped_messages % 2 == 0
        assert SYSTEM in text and "The newest question?" in text
        summary, window = text.split("Summary of the earlier conversation]", 1)[1].split("<|im_end|>", 1)
        assert "- Question number" in summary  # what fell out: its first sentences (the newest that fit)
        assert "Answer 0" not in text and "Question number 11" in window
        assert len(prompt.tokens) <= 256 - 32 and prompt.max_new_tokens == 32
        with pytest.raises(ContextOverflow, match="AIONE_CHAT__N_CTX"):
            e.prepare(ChatInput([], "word " * 400, system_prompt=SYSTEM))
    finally:
        e.unload()


def test_vram_estimate_follows_gpu_layers():
    path = embedded_chat_model_path()
    shape = read_shape(path)
    assert engine(n_gpu_layers=0).estimate_vram() == 0
    full = engine(n_gpu_layers=-1, n_ctx=2048).estimate_vram()
    half = engine(n_gpu_layers=15, n_ctx=2048).estimate_vram()
    assert full > shape.file_bytes + shape.kv_cache_bytes(2048)
    assert 0 < half < full


def test_missing_and_broken_model_files(tmp_path: Path):
    with pytest.raises(ModelMissing, match="AIONE_CHAT__MODEL_PATH"):
        engine(model_path=tmp_path / "missing.gguf").load()
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello", encoding="utf-8")
    with pytest.raises(ModelMissing, match="not a GGUF"):
        engine(model_path=not_gguf).load()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(embedded_chat_model_path().read_bytes()[: 2 * 1024 * 1024])
    broken = engine(model_path=truncated)
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        broken.load()
    assert not broken.loaded


# ---- issue 3: estimates, load progress, context shrink, warm swap-back -------------------
import ctypes  # noqa: E402
import re  # noqa: E402

import llama_cpp  # noqa: E402

from models.kv_store import KvStore  # noqa: E402

MIB = 1 << 20


def llama_reported_buffers(e: LlmEngine) -> dict[str, float]:
    """Load the engine while capturing llama.cpp's own log; return its buffer sizes in MiB."""
    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def capture(_level, text, _user_data):
        lines.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(capture, ctypes.c_void_p(0))
    try:
        e.load()
    finally:
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    text = "".join(lines)
    found = {}
    for key, pattern in (("weights", r"model buffer size =\s+([\d.]+) MiB"), ("kv", r"KV buffer size =\s+([\d.]+) MiB"),
                         ("compute", r"compute buffer size =\s+([\d.]+) MiB")):
        found[key] = sum(float(v) for v in re.findall(pattern, text))
    return found


@pytest.mark.parametrize("cache_type,n_ctx", [("f16", 2048), ("q8_0", 1024)])
def test_estimate_from_headers_matches_what_llama_cpp_allocates(cache_type: str, n_ctx: int):
    e = engine(n_ctx=n_ctx, cache_type=cache_type, n_gpu_layers=-1)  # estimate as if fully offloaded
    estimate = e.estimate()
    e.cfg = e.cfg.model_copy(update={"n_gpu_layers": 0})  # this CPU build allocates the same buffers in RAM
    try:
        reported = llama_reported_buffers(e)
    finally:
        e.unload()
    assert reported["weights"] > 0 and reported["kv"] > 0
    assert estimate.weights / MIB == pytest.approx(reported["weights"], rel=0.03)  # file size vs tensors
    assert estimate.kv_cache / MIB == pytest.approx(reported["kv"], rel=0.01)
    assert estimate.headroom / MIB >= reported["compute"]  # the headroom covers the scratch buffers


def test_load_reports_progress_and_context_can_shrink_after_oom():
    e = engine(n_ctx=4096, min_ctx_on_retry=1024)
    seen: list[float] = []
    e.load(progress=seen.append)
    e.unload()
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert e.shrink_context() and e.n_ctx == 2048
    assert e.shrink_context() and e.n_ctx == 1024
    assert not e.shrink_context() and e.n_ctx == 1024
    e.load()
    try:
        assert e._llm.n_ctx() == 1024
    finally:
        e.unload()


# Recomputing evaluates the whole conversation in one batch; the original decoded the answer
# token by token. The float sums differ in the last bits, so on a near-tie (e.g. "Which year
# came after that?" here) greedy decoding can flip. Restoring is exact: it must match the
# never-unloaded run always, and recomputing wherever no near-tie exists (this follow-up).
FOLLOW_UP = "What did the town build?"
LONG = "The history of the harbour town: " + " ".join(
    f"In {1900 + i} the town built a new pier and {i} more boats came." for i in range(40))


def two_turns(e: LlmEngine, reload_between: bool) -> tuple[str, str, int, Finish]:
    """Turn 1, optionally unload + load, turn 2. Returns both answers, the prompt tokens turn 2
    evaluated (llama.cpp's own counter), and turn 2's Finish."""
    e.load()
    try:
        first, _ = answer_in_session(e, LONG, [], "s1")
        if reload_between:
            e.unload()
            e.load()
        history = [{"role": "user", "content": LONG}, {"role": "assistant", "content": first}]
        before = llama_cpp.llama_perf_context(e._llm._ctx.ctx).n_p_eval
        second, finish = answer_in_session(e, FOLLOW_UP, history, "s1")
        evaluated = llama_cpp.llama_perf_context(e._llm._ctx.ctx).n_p_eval - before
    finally:
        e.unload()
    return first, second, evaluated, finish


def answer_in_session(e: LlmEngine, message: str, history: list[dict], session: str) -> tuple[str, Finish]:
    items = list(e.stream(e.prepare(ChatInput(history, message, system_prompt=SYSTEM, session_id=session)), threading.Event()))
    return "".join(i.text for i in items[:-1]), items[-1]


def test_kv_restore_after_a_reload_continues_exactly_and_skips_the_prefix():
    kept = two_turns(engine(n_ctx=2048), reload_between=False)
    e = engine(n_ctx=2048)
    e.kv_store = KvStore(4, 512 * MIB)
    restored = two_turns(e, reload_between=True)
    recomputed = two_turns(engine(n_ctx=2048), reload_between=True)  # no KvStore: evaluated again
    assert kept[0] == restored[0] == recomputed[0]  # turn 1, three fresh loads
    assert restored[1] == kept[1] == recomputed[1]  # the same greedy continuation every way
    assert recomputed[2] > 800  # the whole conversation evaluated again
    assert restored[2] < 40 and abs(restored[2] - kept[2]) <= 1  # only the new message, as if never unloaded
    assert len(e.kv_store) == 1  # saved again at the last unload


def test_the_cache_is_copied_after_the_answer_and_an_unload_then_copies_nothing(monkeypatch):
    """The copy of a conversation's cache is made beside the saving of the answer (issue 31, item
    8): the unload of a swap right after it finds the copy current; a cache changed since (the
    next turn) is copied again at the unload."""
    copies = []
    real = llama_cpp.llama_state_seq_get_data
    monkeypatch.setattr(llama_cpp, "llama_state_seq_get_data", lambda *a: copies.append(1) or real(*a))
    e = engine(n_ctx=2048)
    e.kv_store = KvStore(4, 512 * MIB)
    e.load()
    try:
        first, _ = answer_in_session(e, LONG, [], "a")
        e._kv.settle()
        assert len(copies) == 1 and e.kv_store.sessions() == ["chat:a"]
        assert e.kv_store.holds("chat:a", e.llama.input_ids[: e.llama.n_tokens])
    finally:
        e.unload()
    assert len(copies) == 1  # the unload found the copy current
    e.load()
    try:
        history = [{"role": "user", "content": LONG}, {"role": "assistant", "content": first}]
        prompt = e.prepare(ChatInput(history, FOLLOW_UP, system_prompt=SYSTEM, session_id="a"))
        assert prompt.cached_tokens > 800  # restored from the copy made after the answer
        e.llama.eval(prompt.tokens[prompt.cached_tokens:])  # the cache changes after that copy
    finally:
        e.unload()
    assert len(copies) == 2 and len(e.kv_store) == 1  # copied again at the unload


def test_switching_conversations_keeps_each_ones_cache():
    e = engine(n_ctx=2048)
    e.kv_store = KvStore(4, 512 * MIB)
    e.load()
    try:
        a1, _ = answer_in_session(e, LONG, [], "a")
        answer_in_session(e, "Something else entirely.", [], "b")
        prompt = e.prepare(ChatInput([{"role": "user", "content": LONG}, {"role": "assistant", "content": a1}],
                                     "And then?", system_prompt=SYSTEM, session_id="a"))
        assert prompt.cached_tokens > 800 and "chat:b" in e.kv_store.sessions()
    finally:
        e.unload()
    small = KvStore(max_sessions=4, max_bytes=1024)  # too small to keep anything
    e.kv_store = small
    e.load()
    try:
        answer_in_session(e, LONG, [], "a")
    finally:
        e.unload()
    assert len(small) == 0


def test_a_requests_sampling_over_the_models_settings_one_rule_for_local_and_remote():
    assert Sampling().over(0.7, 0.9, -1) == (0.7, 0.9, None)  # the settings; a negative seed is random
    assert Sampling(temperature=0.0, top_p=0.5, seed=3).over(0.7, 0.9, -1) == (0.0, 0.5, 3)
    assert Sampling(temperature=None, seed=None).over(1.1, 1.0, 42) == (1.1, 1.0, 42)
