"""Keywords of a turn: Korean nouns without their particles (kiwipiepy's morphemes), English
words without stop words, ranked by TF-IDF against everything the user has written so far
(the document frequencies live in the store; `rank` takes them as a mapping)."""
from __future__ import annotations

import ctypes
import gc
import math
import re
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from core.tokens import STOP_WORDS as SEARCH_STOP_WORDS

ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
HANGUL_RUN = re.compile(r"[가-힣]{2,}")
# The document search's function words, and the ones that are frequent in chat but say nothing
# about a topic (a turn's keywords should not be "please" or "thing").
STOP_WORDS = SEARCH_STOP_WORDS | frozenset("""
above after again against all also any aren't because before being below between both but can't couldn't didn't
doesn't doing don't down during each few further get got hadn't hasn't haven't having he'd he'll he's her hers
herself him himself his how's i'd i'll i'm i've into isn't it's itself just let's like more most mustn't myself
nor now off once only other ought ours ourselves out over own please same shan't she'd she'll she's shouldn't
some such that's their theirs them themselves there's they'd they'll they're they've through too under until up
very wasn't we'd we'll we're we've weren't what's when's where's who's why's won't wouldn't you'd you'll you're
you've yours yourself yourselves yes okay really much many make made want need tell give show know think thing
things something anything one two way well still even
""".split())
KOREAN_NOUN_TAGS = ("NNG", "NNP")
# Without the typo-correction and multi-word dictionaries kiwipiepy takes ~300 MB instead of
# ~490 MB, and finds the same nouns on every Korean seed sentence (bench/memory.py shows both).
KIWI_OPTIONS = {"load_typo_dict": False, "load_multi_dict": False, "load_default_dict": False}


class KeywordExtractor:
    """Thread-safe; kiwipiepy's model (~0.5 s, ~230 MB) loads at first use and goes with
    `release()` (the labeller lets it go when it has been idle a while)."""

    name = "kiwipiepy+english"

    def __init__(self) -> None:
        self._kiwi = None
        self._lock = threading.Lock()

    def terms(self, text: str) -> Counter[str]:
        """Candidate terms and how often each occurs in the text."""
        counts: Counter[str] = Counter()
        for word in ENGLISH_WORD.findall(text):
            word = word.lower().strip("'-")
            if len(word) >= 3 and word not in STOP_WORDS:
                counts[word] += 1
        if HANGUL_RUN.search(text):
            with self._lock:
                if self._kiwi is None:
                    # requirements.txt; the import costs a second
                    from kiwipiepy import Kiwi

                    self._kiwi = Kiwi(**KIWI_OPTIONS)
                kiwi: Any = self._kiwi
                tokens = kiwi.tokenize(text)
            counts.update(t.form for t in tokens if t.tag in KOREAN_NOUN_TAGS and len(t.form) >= 2)
        return counts


    def release(self) -> None:
        """Drop the analyser and hand its memory back to the system (it loads again when needed)."""
        with self._lock:
            if self._kiwi is None:
                return
            self._kiwi = None
        gc.collect()
        _trim_heap()


def _trim_heap() -> None:
    """glibc keeps freed memory in its heap; malloc_trim returns it (elsewhere: nothing to do)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rank(terms: Counter[str], document_frequency: Mapping[str, int], documents: int, top: int = 8) -> list[dict]:
    """TF-IDF against the history: a term in every turn scores low, one rare so far scores high."""
    if not terms:
        return []
    longest = max(terms.values())
    scored: list[dict[str, Any]] = []
    for term, count in terms.items():
        idf = math.log((1 + documents) / (1 + document_frequency.get(term, 0))) + 1.0
        scored.append({"term": term, "score": round((0.5 + 0.5 * count / longest) * idf, 4)})
    scored.sort(key=lambda item: (-item["score"], item["term"]))
    return scored[:top]
