"""Words for search, in one place: Korean runs as character bigrams (particles and endings
attach to words: "서울에서" shares "서울" with every inflected form), Latin words and numbers
whole and lowercased. Documents' BM25 (rag/bm25.py), message search (store/turn_search.py) and
the keyword labeller (analytics/keywords.py) all count the same tokens.
"""
from __future__ import annotations

import re

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
