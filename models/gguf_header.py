"""The project's one GGUF reader: a tolerant reader of a file's header, its metadata and tensor
table, never its weights (the slot's estimates and the model library use it).

The model library reads every GGUF on the PC with it, so it must never fail on one file: a
truncated file, a file that is not GGUF, or a header that points past the end is a
`BrokenGguf` with the reason, not an exception from deep inside a parser. Large arrays (the
tokenizer's 150,000 tokens) are skipped, keeping only their length; the file is memory-mapped,
so a 5 GB model costs a few page reads.
"""
from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"GGUF"
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
KEEP_ARRAY = 64  # arrays up to this many elements are kept (per-layer head counts); longer ones: their length
MAX_ITEMS = 10_000_000


class BrokenGguf(Exception):
    """The file is not a readable GGUF; the message says why, for the library's list."""


@dataclass
class GgufHeader:
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[tuple[str, tuple[int, ...], int, int]] = field(default_factory=list)  # name, shape, type, offset
    data_offset: int = 0
    file_bytes: int = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    @property
    def parameters(self) -> int:
        return sum(math.prod(shape) for _, shape, _, _ in self.tensors)

    def data_bytes_needed(self) -> int:
        """Where the last tensor ends: a file shorter than this is truncated."""
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

        end = 0
        for _, shape, kind, offset in self.tensors:
            count = math.prod(shape)
            try:
                block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
            except (ValueError, KeyError):
                raise BrokenGguf(f"unknown tensor type {kind}") from None
            end = max(end, offset + count // block * size)
        return self.data_offset + end


class _Cursor:
    def __init__(self, view: memoryview) -> None:
        self.view, self.at = view, 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.view):
            raise BrokenGguf("the header ends early (truncated file)")
        (value,) = struct.unpack_from(fmt, self.view, self.at)
        self.at += size
        return value

    def string(self, keep: bool = True) -> str:
        length = self.take("<Q")
        if self.at + length > len(self.view):
            raise BrokenGguf("a header string runs past the end (truncated file)")
        text = bytes(self.view[self.at:self.at + length]).decode("utf-8", errors="replace") if keep else ""
        self.at += length
        return text

    def value(self, kind: int) -> Any:
        if kind in SCALARS:
            return self.take(SCALARS[kind])
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            item_kind, count = self.take("<I"), self.take("<Q")
            if count > MAX_ITEMS:
                raise BrokenGguf(f"an array of {count} items: not a sane header")
            if count <= KEEP_ARRAY:
                return [self.value(item_kind) for _ in range(count)]
            if item_kind in SCALARS:
                self.at += struct.calcsize(SCALARS[item_kind]) * count
                if self.at > len(self.view):
                    raise BrokenGguf("an array runs past the end (truncated file)")
            else:
                for _ in range(count):
                    self.string(keep=False) if item_kind == STRING else self.value(item_kind)
            return {"array_length": count}
        raise BrokenGguf(f"unknown metadata type {kind}")


def read_header(path: Path) -> GgufHeader:
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            if size < 24:
                raise BrokenGguf(f"{size} bytes: too short for a GGUF file")
            if file.read(4) != MAGIC:
                raise BrokenGguf("not a GGUF file (its first bytes are not 'GGUF')")
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    return _parse(_Cursor(view), size)
                finally:
                    view.release()
    except OSError as exc:
        raise BrokenGguf(f"cannot be read ({exc.strerror or exc})") from exc


def _parse(cursor: _Cursor, size: int) -> GgufHeader:
    cursor.at = 4
    version = cursor.take("<I")
    if version not in (2, 3):
        raise BrokenGguf(f"GGUF version {version} is not supported (2 or 3)")
    n_tensors, n_kv = cursor.take("<Q"), cursor.take("<Q")
    if n_tensors > MAX_ITEMS or n_kv > MAX_ITEMS:
        raise BrokenGguf("the header counts are not sane (a damaged file)")
    header = GgufHeader(version, file_bytes=size)
    for _ in range(n_kv):
        key = cursor.string()
        header.metadata[key] = cursor.value(cursor.take("<I"))
    for _ in range(n_tensors):
        name = cursor.string()
        dims = cursor.take("<I")
        if dims > 8:
            raise BrokenGguf(f"tensor {name} has {dims} dimensions: a damaged file")
        shape = tuple(cursor.take("<Q") for _ in range(dims))
        header.tensors.append((name, shape, cursor.take("<I"), cursor.take("<Q")))
    alignment = header.get("general.alignment", 32) or 32
    header.data_offset = (cursor.at + alignment - 1) // alignment * alignment
    return header
