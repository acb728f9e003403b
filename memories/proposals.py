"""What a quiet conversation may teach: the user's own statements about themselves, the prompt
that asks the chat model to pick the durable ones, and the checks its lines must pass.

Only sentences in which the user speaks of themselves and that read as facts (not questions,
code, numbers of the moment, or a cue already saved) are candidates; when there is none, the
model is not asked at all. A proposed line must be grounded in those sentences (it shares most
of its words with them): a small model that invents is caught here. Where the model gives
nothing usable, the candidate sentences themselves are proposed. Nothing is stored unseen:
these are proposals the user accepts, edits or rejects.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from core.tokens import tokenize
from memories.cues import looks_like_fact, parse_cue

MAX_PROPOSALS = 3
GROUNDED = 0.6  # share of a proposed line's words found in the user's statements
SENTENCES = re.compile(r"(?<=[.!?。])\s+|\n+")
FIRST_PERSON = re.compile(r"(?:^|\s)(?:나는|난|내|제|저는|전|우리|나의|저의)(?:\s|가|는|의)|^(?:나|저|내|제)\s"
                          r"|\b(?:i|i'm|i've|my|we|our)\b", re.IGNORECASE)
EPHEMERAL = re.compile(r"오늘|지금|방금|아까|이번|내일|어제|같아|번역|에러|오류|기억|잊|코드|\b(?:today|now|just|tomorrow|"
                       r"yesterday|think|forgot|remember|thanks|error|exception|code|answer|maybe)\b", re.IGNORECASE)
ENGLISH_START = re.compile(r"^(?:i|i'm|i've|my|we|we're|our)\b", re.IGNORECASE)
PROMPT = {
    "ko": "다음은 사용자가 자기 자신에 대해 한 말이다. 다음 대화에서도 알아 두면 좋을, 오래 변하지 않을 사실만 "
          "골라 한 줄에 하나씩 '- '로 시작해 짧게 쓴다. 질문, 그때뿐인 부탁, 숫자 계산은 빼고, 없으면 '없음'이라고만 쓴다.",
    "en": "Below is what the user said about themselves. Pick only lasting facts worth knowing in later "
          "conversations, one per line starting with '- ', short. Leave out questions, one-off requests and "
          "calculations; if there are none, write only 'none'.",
}


def candidates(user_messages: Sequence[str]) -> list[str]:
    """The user's sentences about themselves that read as lasting facts."""
    found: list[str] = []
    for message in user_messages:
        if parse_cue(message) is not None:  # saved already, at the turn
            continue
        for sentence in SENTENCES.split(message.strip()):
            sentence = sentence.strip()
            latin = not re.search(r"[가-힣]", sentence)
            speaks_of_self = ENGLISH_START.match(sentence) if latin else FIRST_PERSON.search(sentence)
            if speaks_of_self and not EPHEMERAL.search(sentence) and looks_like_fact(sentence):
                found.append(sentence.rstrip(".!。 "))
    return list(dict.fromkeys(found))


def proposal_prompt(statements: Sequence[str], language: str) -> str:
    return "\n".join(f"- {statement}" for statement in statements)


THE_USER = re.compile(r"^(?:사용자|유저|the user|user)(?:는|은|가|의|)\s*|(?:이다|입니다|이에요|예요)[.]?$", re.IGNORECASE)


def grounded(line: str, statements: Sequence[str]) -> bool:
    """Most of the line's words (its "사용자는 …" frame aside) are the user's own."""
    words = set(tokenize(THE_USER.sub("", line.strip())))
    if not words:
        return False
    said = set(tokenize(" ".join(statements)))
    return len(words & said) / len(words) >= GROUNDED


def proposed_lines(answer: str, statements: Sequence[str]) -> list[str]:
    """The model's lines that pass: facts, grounded in what the user said; else the statements."""
    lines = []
    for raw in answer.splitlines():
        line = raw.strip().lstrip("-*•·0123456789.) ").strip()
        if line and looks_like_fact(line) and grounded(line, statements) and not parse_cue(line):
            lines.append(line)
    chosen = list(dict.fromkeys(lines)) or list(statements)
    return chosen[:MAX_PROPOSALS]
