"""Facts about a GGUF file read from its header, without loading the model.

Used for /health (is the file there, is it a GGUF) and for the VRAM estimates of the slot.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ModelMissing
from models.gguf_header import BrokenGguf, GgufHeader, read_header

GGUF_MAGIC = b"GGUF"  # the first four bytes of every GGUF file (models/gguf_header.py reads the rest)
CACHE_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}  # KV cache bytes per element, GGML block sizes


def check_gguf_file(path: Path | None, setting: str, role: str) -> Path:
    """Return the path when it is a readable GGUF file, else raise ModelMissing naming the setting."""
    if path is None:
        raise ModelMissing(f"no {role} model configured: set {setting} to a GGUF file")
    if not path.is_file():
        raise ModelMissing(f"{role} model file not found: {path}. Set {setting} to a GGUF file")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelMissing(f"{role} model file cannot be read ({exc}). Check {setting}") from exc
    if magic != GGUF_MAGIC:
        raise ModelMissing(f"{role} model file is not a GGUF file: {path.name}. Set {setting} to a .gguf model")
    return path


@dataclass(frozen=True)
class GgufShape:
    """The few header fields that size a transformer's weights and KV cache."""

    architecture: str
    file_bytes: int
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    context_length: int

    def kv_cache_bytes(self, n_ctx: int, bytes_per_element: float = 2) -> int:
        """K and V for every layer at n_ctx tokens (f16 cache by default)."""
        per_token = self.n_head_kv * (self.head_dim_k + self.head_dim_v) * bytes_per_element
        return int(self.n_layers * n_ctx * per_token)


def _field(header: GgufHeader, key: str, default: Any = None) -> Any:
    value = header.get(key, default)
    if isinstance(value, list):  # some models store per-layer head counts
        value = max(value) if value else default
    return value


def read_shape(path: Path) -> GgufShape:
    """The shape from the header (models/gguf_header.py, the project's one GGUF reader); a
    damaged header is a missing model, saying why."""
    try:
        reader = read_header(path)
    except BrokenGguf as exc:
        raise ModelMissing(f"{path.name}: {exc}") from exc
    arch = str(_field(reader, "general.architecture", "llama"))
    n_embd = int(_field(reader, f"{arch}.embedding_length", 0))
    n_head = int(_field(reader, f"{arch}.attention.head_count", 1)) or 1
    n_head_kv = int(_field(reader, f"{arch}.attention.head_count_kv", n_head))
    head_dim = n_embd // n_head if n_head else 0
    return GgufShape(
        architecture=arch,
        file_bytes=reader.file_bytes,
        n_layers=int(_field(reader, f"{arch}.block_count", 0)),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=int(_field(reader, f"{arch}.attention.key_length", head_dim)),
        head_dim_v=int(_field(reader, f"{arch}.attention.value_length", head_dim)),
        context_length=int(_field(reader, f"{arch}.context_length", 0)),
    )


@dataclass(frozen=True)
class VramEstimate:
    weights: int
    kv_cache: int
    headroom: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.headroom


def gpu_estimate(shape: GgufShape, n_ctx: int, n_gpu_layers: int, cache_type: str, headroom: int) -> VramEstimate:
    """What a model puts on the GPU: its weights and KV cache in proportion to the layers there
    (-1: all), plus the compute headroom. The one estimate the slot and the model library use."""
    if n_gpu_layers == 0:
        return VramEstimate(0, 0, 0)
    layers = shape.n_layers or 1
    share = 1.0 if n_gpu_layers < 0 else min(1.0, n_gpu_layers / layers)
    kv = shape.kv_cache_bytes(n_ctx, CACHE_BYTES.get(cache_type, 2.0))
    return VramEstimate(int(shape.file_bytes * share), int(kv * share), headroom)
