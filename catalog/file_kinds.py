"""What one model file is, from its header alone: a chat LLM, a vision projector, an image
generator, or broken (with the reason). The model library's scan classifies each file once and
caches the answer by path, size and modification time.
"""
from __future__ import annotations

import functools
import json
import re
import struct
from pathlib import Path

from models.gguf_header import BrokenGguf, GgufHeader, read_header
from tools.syntax import template_family

SPLIT = re.compile(r"^(?P<base>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
IMAGE_TENSORS = ("model.diffusion_model.", "unet.", "first_stage_model.", "cond_stage_model.", "conditioner.",
                 "double_blocks.", "joint_blocks.")
VISION_ARCH = re.compile(r"vl($|moe|_)|vision|llava|mllama|cogvlm", re.IGNORECASE)
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


@functools.cache
def known_architectures() -> frozenset[str]:
    import gguf

    return frozenset(gguf.MODEL_ARCH_NAMES.values())


def describe_file(path: Path) -> dict:
    """One file's facts as a plain dict (kept in the scan cache)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".gguf":
            return _gguf_facts(path)
        if suffix == ".safetensors":
            return _safetensors_facts(path)
    except BrokenGguf as exc:
        return {"kind": "broken", "reason": str(exc)}
    return {"kind": "skip"}


def _gguf_facts(path: Path) -> dict:
    header = read_header(path)
    split = SPLIT.match(path.name)
    facts: dict = {"format": "gguf", "tensors_bytes": header.data_bytes_needed(), "parameters": header.parameters,
                   "split": [int(split["part"]), int(split["count"])] if split else None}
    if header.file_bytes < facts["tensors_bytes"]:
        return {"kind": "broken", "reason": f"truncated: {header.file_bytes} bytes of {facts['tensors_bytes']}",
                "split": facts["split"]}
    if split and int(split["part"]) > 1:  # later parts carry tensors only; the first part speaks for the model
        return facts | {"kind": "part"}
    arch = str(header.get("general.architecture", ""))
    names = [name for name, *_ in header.tensors]
    if arch == "clip" or header.get("general.type") == "mmproj":
        return facts | {"kind": "projector", "architecture": arch or "clip", "name": header.get("general.name"),
                        "projection_dim": _projection_dim(header)}
    if not arch and any(name.startswith(IMAGE_TENSORS) for name in names):
        return facts | {"kind": "image", "architecture": "stable-diffusion", "name": header.get("general.name")}
    if not arch:
        return {"kind": "broken", "reason": "no general.architecture: not a model llama.cpp can load"}
    if arch not in known_architectures():
        return {"kind": "broken", "reason": f"architecture {arch!r} is unknown to this llama.cpp"}
    return facts | _llm_facts(header, arch)


def _projection_dim(header: GgufHeader) -> int | None:
    for key in ("clip.vision.projection_dim", "clip.projection_dim"):
        if isinstance(header.get(key), int):
            return header.get(key)
    return None


def _llm_facts(header: GgufHeader, arch: str) -> dict:
    family, tools = template_family(header.get("tokenizer.chat_template"))
    n_head = int(_largest(header.get(f"{arch}.attention.head_count", 1)) or 1)
    n_embd = int(header.get(f"{arch}.embedding_length", 0) or 0)
    head_dim = n_embd // n_head if n_head else 0
    return {
        "kind": "llm", "architecture": arch, "name": header.get("general.name"),
        "quantization": _file_type(header.get("general.file_type")), "context_length": header.get(f"{arch}.context_length"),
        "template": family, "tools": tools, "license": header.get("general.license"),
        "vision_arch": bool(VISION_ARCH.search(arch)), "n_embd": n_embd,
        "shape": {"n_layers": int(header.get(f"{arch}.block_count", 0) or 0), "n_embd": n_embd, "n_head": n_head,
                  "n_head_kv": int(_largest(header.get(f"{arch}.attention.head_count_kv", n_head)) or n_head),
                  "head_dim_k": int(header.get(f"{arch}.attention.key_length", head_dim) or head_dim),
                  "head_dim_v": int(header.get(f"{arch}.attention.value_length", head_dim) or head_dim)},
    }


def _largest(value):
    return max(value) if isinstance(value, list) and value else value


def _file_type(value) -> str | None:
    from gguf import LlamaFileType

    try:
        return LlamaFileType(int(value)).name.removeprefix("MOSTLY_") if value is not None else None
    except ValueError:
        return str(value)


def _safetensors_facts(path: Path) -> dict:
    size = path.stat().st_size
    with path.open("rb") as file:
        raw = file.read(8)
        if len(raw) < 8:
            raise BrokenGguf("too short for a safetensors file")
        (length,) = struct.unpack("<Q", raw)
        if length > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise BrokenGguf("not a safetensors file (its header length is impossible)")
        try:
            header = json.loads(file.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BrokenGguf(f"not a safetensors file ({exc})") from exc
    tensors = {k: v for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    if not any(name.startswith(IMAGE_TENSORS) for name in tensors):
        return {"kind": "skip"}  # text encoders, VAEs, Hugging Face LLM shards: not models to choose here
    end = max((v.get("data_offsets", [0, 0])[1] for v in tensors.values()), default=0) + 8 + length
    if size < end:
        return {"kind": "broken", "reason": f"truncated: {size} bytes of {end}"}
    parameters = 0
    for value in tensors.values():
        count = 1
        for dim in value.get("shape", []):
            count *= dim
        parameters += count
    return {"kind": "image", "format": "safetensors", "architecture": "stable-diffusion", "parameters": parameters,
            "name": None}
