"""Chat KV caches kept in RAM across model swaps, per conversation, least recently used first out.

A saved entry is llama.cpp's state of sequence 0 (the KV cells only, not the logits) plus the
token ids it holds, so a reloaded model can continue a conversation without evaluating its
prefix again.
"""
from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SavedKv:
    token_ids: np.ndarray
    state: ctypes.Array[ctypes.c_uint8]  # llama.cpp wrote into it directly: kept as is, never copied again
    size: int  # bytes of `state` in use

    @property
    def nbytes(self) -> int:
        return self.size + self.token_ids.nbytes


class KvStore:
    def __init__(self, max_sessions: int, max_bytes: int) -> None:
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, SavedKv] = OrderedDict()

    def put(self, session_id: str, saved: SavedKv) -> None:
        self._entries.pop(session_id, None)
        if self.max_sessions == 0 or saved.nbytes > self.max_bytes:
            return
        self._entries[session_id] = saved
        while len(self._entries) > self.max_sessions or self.nbytes > self.max_bytes:
            self._entries.popitem(last=False)

    def take(self, session_id: str) -> SavedKv | None:
        """Remove and return the entry: once restored, the live KV cache is the newer copy."""
        return self._entries.pop(session_id, None)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def sessions(self) -> list[str]:
        return list(self._entries)
