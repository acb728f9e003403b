"""The chat engine on the real embedded SmolLM2 GGUF through llama-cpp-python."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from errors import ContextOverflow, ModelLoadError, ModelMissing
from gguf_meta import read_shape
from llm_engine import Finish, LlmEngine, Token
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
    items = list(e.stream(e.prepare(SYSTEM, history or [], message), threading.Event()))
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
    prompt = loaded.prepare(SYSTEM, [], "hello")
    text = loaded._llm.detokenize(prompt.tokens, special=True).decode()
    template = loaded._llm.metadata["tokenizer.chat_template"]
    assert "<|im_start|>" in template and "<|im_start|>user\nhello<|im_end|>" in text
    assert text.rstrip().endswith("<|im_start|>assistant")


def test_stop_flag_ends_generation_within_one_token(loaded):
    stop = threading.Event()
    prompt = loaded.prepare(SYSTEM, [], "Write a very long story about a dragon.")
    received = []
    for item in loaded.stream(prompt, stop):
        received.append(item)
        if len(received) == 3:
            stop.set()
    tokens = [i for i in received if isinstance(i, Token)]
    assert len(tokens) <= 4 and received[-1].reason == "stopped"


def test_long_history_drops_oldest_turns_but_keeps_system_and_new_message():
    e = engine(n_ctx=256, max_tokens=32)
    e.load()
    try:
        history = []
        for i in range(12):
            history += [{"role": "user", "content": f"Question number {i}: tell me about topic {i}."},
                        {"role": "assistant", "content": f"Answer {i}: " + "details " * 10}]
        prompt = e.prepare(SYSTEM, history, "The newest question?")
        text = e._llm.detokenize(prompt.tokens, special=True).decode()
        assert prompt.dropped_messages > 0 and prompt.dropped_messages % 2 == 0
        assert SYSTEM in text and "The newest question?" in text
        assert "Question number 0" not in text and "Question number 11" in text
        assert len(prompt.tokens) <= 256 - 32 and prompt.max_new_tokens == 32
        with pytest.raises(ContextOverflow, match="AIONE_CHAT__N_CTX"):
            e.prepare(SYSTEM, [], "word " * 400)
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
