"""GGUF header checks and shapes, on the real embedded model file."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ModelMissing
from models.gguf import check_gguf_file, read_shape
from settings import embedded_chat_model_path


def test_missing_and_wrong_files_name_the_setting(tmp_path: Path):
    with pytest.raises(ModelMissing, match="AIONE_CHAT__MODEL_PATH"):
        check_gguf_file(None, "AIONE_CHAT__MODEL_PATH", "chat")
    with pytest.raises(ModelMissing, match="not found"):
        check_gguf_file(tmp_path / "nope.gguf", "AIONE_CHAT__MODEL_PATH", "chat")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(ModelMissing, match="not a GGUF"):
        check_gguf_file(fake, "AIONE_CHAT__MODEL_PATH", "chat")
    with pytest.raises(ModelMissing):
        check_gguf_file(tmp_path, "AIONE_CHAT__MODEL_PATH", "chat")  # a folder


def test_shape_of_smollm2_from_its_header():
    path = embedded_chat_model_path()
    assert check_gguf_file(path, "X", "chat") == path
    shape = read_shape(path)
    assert shape.architecture == "llama"
    assert shape.n_embd == 576 and shape.n_layers == 30
    assert shape.n_head == 9 and shape.n_head_kv == 3 and shape.head_dim_k == 64
    # f16 K+V: 30 layers * 3 heads * (64+64) * 2 bytes = 23,040 bytes per token
    assert shape.kv_cache_bytes(1000) == 23_040_000
