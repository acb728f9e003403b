"""Chat KV caches kept in RAM across model swaps, per conversation, least recently used first out.

A saved entry is llama.cpp's state of sequence 0 (the KV cells only, not the logits) plus the
token ids it holds, so a reloaded model can continue a conversation without evaluating its
prefix again.
"""
from __future__ import annotations

import ctypes
import threading
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
        self._lock = threading.Lock()  # copies are put from their own thread (models/kv_keeper.py)

    def put(self, session_id: str, saved: SavedKv) -> None:
        with self._lock:
            self._entries.pop(session_id, None)
            if self.max_sessions == 0 or saved.nbytes > self.max_bytes:
                return
            self._entries[session_id] = saved
            while len(self._entries) > self.max_sessions or self._nbytes() > self.max_bytes:
                self._entries.popitem(last=False)

    def holds(self, session_id: str, token_ids: np.ndarray) -> bool:
        """Whether the entry is the state of exactly these tokens (then it is the most recent)."""
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None or not np.array_equal(entry.token_ids, token_ids):
                return False
            self._entries.move_to_end(session_id)
            return True

    def take(self, session_id: str) -> SavedKv | None:
        """Remove and return the entry: once restored, the live KV cache is the newer copy."""
        with self._lock:
            return self._entries.pop(session_id, None)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._nbytes()

    def _nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def sessions(self) -> list[str]:
        with self._lock:
            return list(self._entries)
