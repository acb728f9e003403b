"""BM25 keyword search whose tokenizer works for Korean.

Korean attaches particles and endings to words ("서울에서", "서울은", "서울의"), so whole-word
matching misses (Haystack#12836: 0/10 recall). Hangul runs are indexed as overlapping
character bigrams ("서울에서" -> 서울 울에 에서), which share "서울" with every inflected form
without a morphological analyzer; Latin words and numbers are kept whole, lowercased.
tests/test_rag_engine.py (test_why_bigrams_whole_word_keywords_miss_inflected_korean) measures
the choice: whole words find at most half of such questions, bigrams all of them.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

from core.tokens import tokenize


class KeywordIndex:
    """BM25 over chunks. Postings are kept as lists while chunks arrive and scored as numpy
    arrays (cached per token), so a query costs a few vector operations per query token even
    at 100,000 chunks, where a Python loop over a common bigram's postings took tens of ms."""

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._postings: dict[str, tuple[list[int], list[int]]] = {}  # token -> (slots, term counts)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # the same as arrays, built on demand
        self._ids: list[str] = []  # slot -> chunk id
        self._owners: list[str] = []  # slot -> document id
        self._lengths: list[int] = []  # slot -> tokens (0 once removed)
        self._alive: list[bool] = []
        self._slot: dict[str, int] = {}  # live chunk id -> slot
        self._document_slots: dict[str, list[int]] = defaultdict(list)
        self._total_length = 0
        self._dense: tuple[np.ndarray, np.ndarray] | None = None  # (lengths, alive) as arrays

    def __len__(self) -> int:
        return len(self._slot)

    def add(self, chunk_id: str, document_id: str, text: str) -> None:
        if chunk_id in self._slot:
            return
        slot = len(self._ids)
        counts = Counter(tokenize(text))
        for token, count in counts.items():
            slots, tfs = self._postings.setdefault(token, ([], []))
            slots.append(slot)
            tfs.append(count)
            self._arrays.pop(token, None)
        length = sum(counts.values())
        self._ids.append(chunk_id)
        self._owners.append(document_id)
        self._lengths.append(length)
        self._alive.append(True)
        self._slot[chunk_id] = slot
        self._document_slots[document_id].append(slot)
        self._total_length += length
        self._dense = None

    def remove_document(self, document_id: str) -> None:
        """Its chunks stop counting at once; their slots stay in the postings, masked out
        (the index is rebuilt from the store at the next start)."""
        for slot in self._document_slots.pop(document_id, []):
            if self._alive[slot]:
                self._alive[slot] = False
                self._total_length -= self._lengths[slot]
                del self._slot[self._ids[slot]]
        self._dense = None

    def _posting(self, token: str) -> tuple[np.ndarray, np.ndarray] | None:
        if token not in self._postings:
            return None
        if token not in self._arrays:
            slots, tfs = self._postings[token]
            self._arrays[token] = (np.asarray(slots, dtype=np.int64), np.asarray(tfs, dtype=np.float32))
        return self._arrays[token]

    def search(self, query: str, k: int, documents: set[str] | None = None) -> list[tuple[str, float, float]]:
        """Top-k (chunk id, BM25 score, coverage). Coverage is the idf-weighted share of the
        query's tokens the chunk contains (0..1): unlike a BM25 score, it means the same in a
        library of one document or of ten thousand, so it can serve as a relevance threshold."""
        n = len(self._slot)
        if not n:
            return []
        if self._dense is None:
            self._dense = (np.asarray(self._lengths, dtype=np.float32), np.asarray(self._alive, dtype=bool))
        lengths, alive = self._dense
        allowed = alive
        if documents is not None:
            allowed = np.zeros_like(alive)
            for document_id in documents:
                allowed[self._document_slots.get(document_id, [])] = True
            allowed &= alive
        average = self._total_length / n
        scores = np.zeros(len(lengths), dtype=np.float32)
        matched = np.zeros(len(lengths), dtype=np.float32)
        query_weight = 0.0
        for token in set(tokenize(query)):
            posting = self._posting(token)
            if posting is None:
                query_weight += math.log(1 + (n + 0.5) / 0.5)
                continue
            slots, tfs = posting
            live = alive[slots]
            frequency = int(np.count_nonzero(live))
            idf = math.log(1 + (n - frequency + 0.5) / (frequency + 0.5))
            query_weight += idf
            keep = allowed[slots]
            slots, tfs = slots[keep], tfs[keep]
            norm = tfs + self.k1 * (1 - self.b + self.b * lengths[slots] / average)
            scores[slots] += idf * tfs * (self.k1 + 1) / norm
            matched[slots] += idf
        candidates = np.flatnonzero(scores)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        ranked = candidates[np.lexsort((candidates, -scores[candidates]))]  # best first; ties by arrival
        return [(self._ids[slot], float(scores[slot]), float(matched[slot] / query_weight)) for slot in ranked]
