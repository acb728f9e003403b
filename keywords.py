"""Keywords of a turn: Korean nouns without their particles (kiwipiepy's morphemes), English
words without stop words, ranked by TF-IDF against everything the user has written so far
(the document frequencies live in the store; `rank` takes them as a mapping)."""
from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Mapping

ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
HANGUL_RUN = re.compile(r"[가-힣]{2,}")
# Without kiwipiepy: the particles and endings most often glued to a Korean noun, longest first.
PARTICLES = sorted("은 는 이 가 을 를 에 에서 에게 께 의 도 만 로 으로 와 과 랑 이랑 하고 까지 부터 처럼 보다 "
                   "이에요 예요 입니다 이다 했어요 해요 해 줘 주세요 요".split(), key=len, reverse=True)
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't could couldn't did didn't do does doesn't doing don't down during each few for from
further get got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him
himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just let's like me more most
mustn't my myself no nor not now of off on once only or other ought our ours ourselves out over own please same
shan't she she'd she'll she's should shouldn't so some such than that that's the their theirs them themselves then
there there's these they they'd they'll they're they've this those through to too under until up very was wasn't
we we'd we'll we're we've were weren't what what's when when's where where's which while who who's whom why why's
will with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves yes okay really much
many make made want need tell give show know think thing things something anything one two way well still even
""".split())
KOREAN_NOUN_TAGS = ("NNG", "NNP")


class KeywordExtractor:
    """Thread-safe; kiwipiepy's model (~1.6 s) loads at first use."""

    def __init__(self) -> None:
        self._kiwi = None
        self._lock = threading.Lock()
        self._kiwi_missing = False

    @property
    def name(self) -> str:
        return "kiwipiepy+english" if not self._kiwi_missing else "particles+english"

    def terms(self, text: str) -> Counter[str]:
        """Candidate terms and how often each occurs in the text."""
        counts: Counter[str] = Counter()
        for word in ENGLISH_WORD.findall(text):
            word = word.lower().strip("'-")
            if len(word) >= 3 and word not in STOP_WORDS:
                counts[word] += 1
        counts.update(self._korean_nouns(text))
        return counts

    def _korean_nouns(self, text: str) -> list[str]:
        if not HANGUL_RUN.search(text):
            return []
        kiwi = self._load_kiwi()
        if kiwi is None:
            return [_strip_particle(word) for word in HANGUL_RUN.findall(text) if len(_strip_particle(word)) >= 2]
        with self._lock:
            tokens = kiwi.tokenize(text)
        return [t.form for t in tokens if t.tag in KOREAN_NOUN_TAGS and len(t.form) >= 2]

    def _load_kiwi(self):
        with self._lock:
            if self._kiwi is None and not self._kiwi_missing:
                try:
                    from kiwipiepy import Kiwi
                    self._kiwi = Kiwi()
                except ImportError:
                    self._kiwi_missing = True
            return self._kiwi


def _strip_particle(word: str) -> str:
    for particle in PARTICLES:
        if word.endswith(particle) and len(word) - len(particle) >= 2:
            return word[: -len(particle)]
    return word


def rank(terms: Counter[str], document_frequency: Mapping[str, int], documents: int, top: int = 8) -> list[dict]:
    """TF-IDF against the history: a term in every turn scores low, one rare so far scores high."""
    if not terms:
        return []
    longest = max(terms.values())
    scored = []
    for term, count in terms.items():
        idf = math.log((1 + documents) / (1 + document_frequency.get(term, 0))) + 1.0
        scored.append({"term": term, "score": round((0.5 + 0.5 * count / longest) * idf, 4)})
    scored.sort(key=lambda item: (-item["score"], item["term"]))
    return scored[:top]
