"""The vision engine on the real library: SmolLM2 + a generated projector through libmtmd."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.contracts import ChatInput, Finish
from core.errors import ModelLoadError, ModelMissing
from core.events import Token
from settings import VisionModel, embedded_chat_model_path
from store.image_files import ImageStore
from tests.tiny_models import png_data_url
from vlm_engine import IMAGE_REF, VlmEngine


def vision_engine(tmp_path: Path, mmproj: Path, **cfg) -> tuple[VlmEngine, ImageStore]:
    settings = VisionModel(model_path=embedded_chat_model_path(), mmproj_path=mmproj, n_ctx=1024,
                           temperature=0.0, seed=3, max_tokens=12, n_threads=2, **cfg)
    store = ImageStore(tmp_path / "uploads", settings)
    return VlmEngine(settings, read_image=store.read), store


def test_an_image_question_is_answered_through_mtmd(tmp_path: Path, tiny_mmproj: Path):
    engine, store = vision_engine(tmp_path, tiny_mmproj)
    red = store.save_all([png_data_url(90, 70, (220, 20, 20))])[0]
    engine.load()
    try:
        prompt = engine.prepare(ChatInput([], "What is in this picture?", (red.id,), system_prompt="You describe images."))
        assert prompt.messages[-1]["content"][0] == {"type": "image_url", "image_url": {"url": IMAGE_REF + red.id}}
        items = list(engine.stream(prompt, threading.Event()))
    finally:
        engine.unload()
    tokens = [i for i in items if isinstance(i, Token)]
    finish = items[-1]
    assert tokens and isinstance(finish, Finish) and finish.completion_tokens == len(tokens)
    assert finish.prompt_tokens >= 16 + 5  # 16 image tokens from the projector plus the text


def test_only_stored_images_can_be_read(tmp_path: Path, tiny_mmproj: Path):
    engine, _ = vision_engine(tmp_path, tiny_mmproj)
    engine.load()
    try:
        handler = engine._handler
        for url in ("http://127.0.0.1/secret.png", "file:///etc/passwd", png_data_url()):
            with pytest.raises(ValueError, match="only images stored"):
                handler.load_image(url)
    finally:
        engine.unload()


def test_a_projector_that_does_not_fit_the_model_is_a_clear_load_error(tmp_path: Path, mismatched_mmproj: Path):
    engine, _ = vision_engine(tmp_path, mismatched_mmproj)
    with pytest.raises(ModelLoadError, match="AIONE_VISION__MMPROJ_PATH") as info:
        engine.load()
    assert "does not fit" in info.value.message and not engine.loaded


def test_missing_projector_names_its_setting(tmp_path: Path):
    engine, _ = vision_engine(tmp_path, tmp_path / "nope.gguf")
    with pytest.raises(ModelMissing, match="AIONE_VISION__MMPROJ_PATH"):
        engine.check_files()


def test_estimate_counts_the_projector_when_it_runs_on_the_gpu(tmp_path: Path, tiny_mmproj: Path):
    on_gpu, _ = vision_engine(tmp_path, tiny_mmproj, n_gpu_layers=-1, mmproj_on_gpu=True)
    on_cpu, _ = vision_engine(tmp_path, tiny_mmproj, n_gpu_layers=-1, mmproj_on_gpu=False)
    assert on_gpu.estimate().weights - on_cpu.estimate().weights == tiny_mmproj.stat().st_size


def test_history_is_limited_and_starts_with_a_user_message(tmp_path: Path, tiny_mmproj: Path):
    engine, _ = vision_engine(tmp_path, tiny_mmproj, history_turns=3)
    engine._llm._llm = object()  # prepare() only needs "loaded"
    history = [{"role": r, "content": f"{r} {i}"} for i in range(4) for r in ("user", "assistant")]
    prompt = engine.prepare(ChatInput(history, "new", system_prompt="sys"))
    engine._llm._llm = None
    assert [m["role"] for m in prompt.messages] == ["system", "user", "assistant", "user"]
    assert prompt.messages[1]["content"] == "user 3" and prompt.dropped_messages == 6
