"""Finding the memories closest to a message: sentence vectors (the project's embedder) and the
Korean-bigram keyword index (rag/bm25.py, as documents use), scored together, with a relevance
threshold so an unrelated question brings none.

Kept in memory (10,000 memories are 20 MB of vectors); rebuilt from the store at start. A
search is one matrix-vector product and a few postings: well under a millisecond at 10,000.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.bm25 import KeywordIndex

KEYWORD_WEIGHT = 0.35  # a question sharing the memory's words ("회사", "Python") counts this much more
THRESHOLD = 0.35  # cosine + weighted keyword coverage below this: not about the message (bench/memory_recall.py)
DUPLICATE = 0.86  # cosine at or above: the same statement said again (it updates the memory)


@dataclass(frozen=True)
class Found:
    memory_id: int
    score: float
    cosine: float


class MemoryIndex:
    def __init__(self, dim: int = 0) -> None:
        """`dim` 0: the first memory's vector decides it."""
        self.dim = dim
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._ids: list[int] = []
        self._row: dict[int, int] = {}  # memory id -> row
        self._codes: dict[str | None, int] = {None: 0}  # scope -> a small int, so a scope mask is one isin
        self._scope = np.zeros(0, dtype=np.int32)
        self._live = np.zeros(0, dtype=bool)  # enabled and not removed
        self._present = np.zeros(0, dtype=bool)  # not removed (off ones included)
        self._keywords = KeywordIndex()
        self._size = 0

    def __len__(self) -> int:
        return int(self._live[:self._size].sum())

    def put(self, memory_id: int, text: str, vector: np.ndarray, scope: str | None, enabled: bool = True) -> None:
        """Add a memory or replace what the index knows of it."""
        self.remove(memory_id)
        if not self.dim:
            self.dim, self._vectors = len(vector), np.zeros((0, len(vector)), dtype=np.float32)
        if self._size == len(self._vectors):  # grow by doubling: a put is amortised O(dim)
            grown = max(64, 2 * len(self._vectors))
            self._vectors = np.resize(self._vectors, (grown, self.dim))
            extra = grown - len(self._live)
            self._live = np.concatenate([self._live, np.zeros(extra, dtype=bool)])
            self._present = np.concatenate([self._present, np.zeros(extra, dtype=bool)])
            self._scope = np.concatenate([self._scope, np.zeros(extra, dtype=np.int32)])
        row = self._size
        self._size += 1
        self._vectors[row] = vector
        self._live[row], self._present[row] = enabled, True
        self._ids.append(memory_id)
        self._scope[row] = self._codes.setdefault(scope, len(self._codes))
        self._row[memory_id] = row
        self._keywords.add(str(row), str(row), text)

    def remove(self, memory_id: int) -> None:
        row = self._row.pop(memory_id, None)
        if row is not None:
            self._live[row] = self._present[row] = False
            self._keywords.remove_document(str(row))

    def search(self, vector: np.ndarray, text: str, scopes: set[str | None], k: int = 5,
               threshold: float = THRESHOLD, margin: float = 2.0) -> list[Found]:
        """The best `k` memories in `scopes` scoring at least `threshold` and within `margin` of
        the best, best first."""
        if not self._size:
            return []
        mask = self._live[:self._size] & self._in(scopes)
        cosine = self._vectors[:self._size] @ vector.astype(np.float32)
        score = np.where(mask, cosine, -1.0)
        for row_text, _, coverage in self._keywords.search(text, 50):
            row = int(row_text)
            if mask[row]:
                score[row] += KEYWORD_WEIGHT * coverage
        best = np.argpartition(-score, k - 1)[:k] if len(score) > k else np.arange(len(score))
        best = best[np.argsort(-score[best])]
        floor = max(threshold, float(score[best[0]]) - margin) if len(best) else threshold
        return [Found(self._ids[row], float(score[row]), float(cosine[row])) for row in best if score[row] >= floor]

    def closest(self, vector: np.ndarray, scopes: set[str | None], include_off: bool = False) -> Found | None:
        """The memory most like `vector` (a duplicate or a contradiction is looked for here)."""
        if not self._size:
            return None
        mask = (self._present if include_off else self._live)[:self._size] & self._in(scopes)
        if not mask.any():
            return None
        cosine = np.where(mask, self._vectors[:self._size] @ vector.astype(np.float32), -2.0)
        row = int(np.argmax(cosine))
        return Found(self._ids[row], float(cosine[row]), float(cosine[row]))

    def _in(self, scopes: set[str | None]) -> np.ndarray:
        codes = [self._codes[scope] for scope in scopes if scope in self._codes]
        return np.isin(self._scope[:self._size], np.asarray(codes, dtype=np.int32))

    def vector_of(self, memory_id: int) -> np.ndarray | None:
        row = self._row.get(memory_id)
        return None if row is None else self._vectors[row].copy()

    def usable(self, memory_id: int, scopes: set[str | None]) -> bool:
        """On, present and in one of `scopes`."""
        row = self._row.get(memory_id)
        if row is None or not self._live[row]:
            return False
        return any(self._codes.get(scope) == self._scope[row] for scope in scopes)
