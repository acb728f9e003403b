"""BM25 keyword search whose tokenizer works for Korean.

Korean attaches particles and endings to words ("서울에서", "서울은", "서울의"), so whole-word
matching misses (Haystack#12836: 0/10 recall). Hangul runs are indexed as overlapping
character bigrams ("서울에서" -> 서울 울에 에서), which share "서울" with every inflected form
without a morphological analyzer; Latin words and numbers are kept whole, lowercased.
tests/test_rag_korean.py measures the choice with English-only embeddings, where this path
alone must find the document.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

WORD = re.compile(r"[가-힣]+|[0-9a-z]+|[\u4e00-\u9fff]+")
HANGUL = re.compile(r"[가-힣]")
# English function words: with few documents BM25's idf cannot tell they carry no meaning.
STOP_WORDS = frozenset(
    "a an the is are was were be been am do does did of to in on at for from by with and or not no it its "
    "this that these those what which who whom how why when where i you he she we they me my your our "
    "can could will would should may might must have has had there here about as if then than so".split())


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    for word in WORD.findall(text.lower()):
        if HANGUL.match(word) and len(word) > 1:
            tokens.extend(word[i:i + 2] for i in range(len(word) - 1))
        elif word not in STOP_WORDS:
            tokens.append(word)
    return tokens


class KeywordIndex:
    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._postings: dict[str, dict[str, int]] = defaultdict(dict)
        self._lengths: dict[str, int] = {}
        self._owner: dict[str, str] = {}  # chunk id -> document id
        self._total_length = 0

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, chunk_id: str, document_id: str, text: str) -> None:
        if chunk_id in self._lengths:
            return
        counts = Counter(tokenize(text))
        for token, count in counts.items():
            self._postings[token][chunk_id] = count
        self._lengths[chunk_id] = sum(counts.values())
        self._total_length += self._lengths[chunk_id]
        self._owner[chunk_id] = document_id

    def remove_document(self, document_id: str) -> None:
        gone = {c for c, d in self._owner.items() if d == document_id}
        for token in list(self._postings):
            posting = self._postings[token]
            for chunk_id in gone & posting.keys():
                del posting[chunk_id]
            if not posting:
                del self._postings[token]
        for chunk_id in gone:
            self._total_length -= self._lengths.pop(chunk_id)
            del self._owner[chunk_id]

    def search(self, query: str, k: int, documents: set[str] | None = None) -> list[tuple[str, float, float]]:
        """Top-k (chunk id, BM25 score, coverage). Coverage is the idf-weighted share of the
        query's tokens the chunk contains (0..1): unlike a BM25 score, it means the same in a
        library of one document or of ten thousand, so it can serve as a relevance threshold."""
        n = len(self._lengths)
        if not n:
            return []
        average = self._total_length / n
        scores: dict[str, float] = defaultdict(float)
        matched: dict[str, float] = defaultdict(float)
        query_weight = 0.0
        for token in set(tokenize(query)):
            posting = self._postings.get(token, {})
            idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            query_weight += idf
            for chunk_id, tf in posting.items():
                if documents is not None and self._owner[chunk_id] not in documents:
                    continue
                norm = tf + self.k1 * (1 - self.b + self.b * self._lengths[chunk_id] / average)
                scores[chunk_id] += idf * tf * (self.k1 + 1) / norm
                matched[chunk_id] += idf
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:k]
        return [(chunk_id, score, matched[chunk_id] / query_weight) for chunk_id, score in ranked]
