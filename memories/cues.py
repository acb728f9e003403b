"""Whether a chat message asks the assistant to remember or forget something, and what.

Only explicit requests count ("기억해 줘: …", "…라고 기억해", "remember that …", "forget that …");
everything else — questions ("내 이름 기억해?"), "do you remember …", "remember to …" (a reminder
for this answer), code, numbers of the moment — is no cue (tests/test_memories.py holds a set of
such turns that must store nothing). `looks_like_fact` is the same judgement for statements the
model proposes: durable, short, not a question, not code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

KEEP_KO = r"(?:줘|줘요|주세요|주라|둬|둬요|두세요|두라|놔|놔요|놓아|줄래|줄래요|)"
FORGET_KO = r"(?:잊어|잊어버려|잊어 버려|잊어줘|잊어 줘|잊어주세요|잊어 주세요|잊어버려줘|잊어버려 줘|지워줘|지워 줘|지워주세요|지워 주세요)"
TAIL = r"[\s.!~。]*$"
KO_REMEMBER = [
    re.compile(rf"^(?:이거|이것|다음|아래)?\s*(?:을|를)?\s*기억해\s*{KEEP_KO}\s*[:：]\s*(?P<fact>.+)$", re.DOTALL),
    re.compile(rf"^(?P<fact>.+?)\s*(?:이?라고|(?P<da>다)고|고)\s*기억해\s*{KEEP_KO}{TAIL}", re.DOTALL),
    re.compile(rf"^(?P<fact>.+?)[.!。]\s*(?:이거|이것|그거|그것)?\s*(?:을|를)?\s*(?:꼭\s*|잘\s*)?기억해\s*(?:줘|줘요|주세요|둬|둬요|두세요|놔|놔요){TAIL}", re.DOTALL),
    re.compile(rf"^(?P<fact>.+?)\s*(?:것을|것|거|걸|을|를)\s*기억해\s*(?:줘|줘요|주세요|둬|둬요|두세요){TAIL}", re.DOTALL),
]
KO_FORGET = [
    re.compile(rf"^{FORGET_KO}\s*[:：]\s*(?P<fact>.+)$", re.DOTALL),
    re.compile(rf"^(?P<fact>.+?)\s*(?:이?라는|(?P<da>다)는|라던)?\s*(?:것|거|말)?\s*(?:은|는|을|를)?\s*{FORGET_KO}{TAIL}", re.DOTALL),
]
EN_REMEMBER = [
    re.compile(r"^(?:please\s+|pls\s+)?(?:remember|memorize|memorise)\s*(?:that\s+|[:,]\s*)(?P<fact>.+)$", re.DOTALL | re.IGNORECASE),
    re.compile(r"^(?:please\s+)?remember\s+(?P<fact>(?:my|i|i'm|i am|we|we're|our)\b.+)$", re.DOTALL | re.IGNORECASE),
    re.compile(r"^(?P<fact>.+?)[,;]?\s+(?:please\s+)?remember\s+that\s*[.!]*$", re.DOTALL | re.IGNORECASE),
]
EN_FORGET = [
    re.compile(r"^(?:please\s+)?forget\s*(?:that\s+|about\s+|[:,]\s*)(?P<fact>.+)$", re.DOTALL | re.IGNORECASE),
    re.compile(r"^(?:please\s+)?forget\s+(?P<fact>(?:my|i|i'm|i am|we|our)\b.+)$", re.DOTALL | re.IGNORECASE),
]
QUESTION_KO = re.compile(r"(?:뭐|무엇|무슨|언제|어디|누구|누가|왜|어떻게|몇|어느|얼마)|(?:는지|은지|인지|던지|할지|을지|ㄴ지)\s*$")
QUESTION_END = re.compile(r"(?:\?|？|나요|까요|니|냐|ㄹ까|을까|는가|인가|죠)\s*$")
PRONOUN_ONLY = re.compile(r"^(?:이거|그거|저거|이것|그것|저것|그|이|it|this|that|them|me|everything|all)$", re.IGNORECASE)
CODE = re.compile(r"```|^\s*(?:def|class|import|from|for|while|if|return|print)\b|[{};]\s*$|=>|==|\(\)", re.MULTILINE)
MAX_FACT_CHARS = 300


@dataclass(frozen=True)
class Cue:
    action: str  # "remember" / "forget"
    fact: str


def parse_cue(message: str) -> Cue | None:
    """The remember/forget request in `message`, or None. One short message is a request; a
    long one that mentions remembering is not (it is about something else)."""
    text = " ".join(message.strip().split())
    if not text or len(text) > MAX_FACT_CHARS + 40 or "\n" in message.strip() or CODE.search(message):
        return None
    if text.endswith(("?", "？")) or re.match(r"^(?:do|did|can|could|will|would|how|what|why|when)\b", text, re.IGNORECASE):
        return None
    for action, patterns in (("forget", KO_FORGET + EN_FORGET), ("remember", KO_REMEMBER + EN_REMEMBER)):
        for pattern in patterns:
            found = pattern.match(text)
            if found:
                fact = _clean(found.group("fact") + (found.groupdict().get("da") or ""))
                if fact and _is_statement(fact):
                    return Cue(action, fact)
    return None


def _clean(fact: str) -> str:
    fact = fact.strip().strip("\"'“”‘’「」『』").strip()
    fact = re.sub(r"^(?:that|please)\s+", "", fact, flags=re.IGNORECASE)
    fact = re.sub(r"(?<=[0-9가-힣])인$", "", fact)  # "…5월 3일인 것을 기억해": the noun phrase
    return fact.rstrip(" ,;:")


def _is_statement(fact: str) -> bool:
    if len(fact) < 2 or len(fact) > MAX_FACT_CHARS or PRONOUN_ONLY.match(fact):
        return False
    if fact.lower().startswith(("to ", "when ")):  # "remember to…": a reminder; "remember when…": a question
        return False
    return not QUESTION_KO.search(fact) and not QUESTION_END.search(fact)


def looks_like_fact(text: str) -> bool:
    """A statement worth keeping: short, not a question, not code, not mostly digits."""
    text = text.strip()
    if not 4 <= len(text) <= 200 or CODE.search(text) or QUESTION_END.search(text):
        return False
    if re.search(r"(?:뭐|무엇|언제|어디|누구|왜|어떻게|몇)\s*(?:야|예요|에요|이야|인가요)?\s*$", text):
        return False
    digits = sum(ch.isdigit() for ch in text)
    return digits <= len(text) // 3


ABOUT_THE_USER = re.compile(
    r"(?:^|\s)(?:내|제|나|저|우리)(?:\s|가|는|의|를|한테|랑)|나는|내가|제가|저는|우리|나한테|저한테"
    r"|(?:했지|였지|이었지|였더라|했더라|했던가|했었지|었지|알지|기억|말했|라고\s*했|뭐였|언제였|어디였|누구였)"
    r"|\b(?:my|i|me|i'm|i've|i'd|mine|we|our|us)\b", re.IGNORECASE)


def about_the_user(message: str) -> bool:
    """Does the message speak of the user ("내", "우리", "my", "I") or of what they said before
    ("…라고 했지", "뭐였지")? Memories are about the user: a message that is not gets them only
    when they match it closely (memories/book.py uses a stricter threshold)."""
    return bool(ABOUT_THE_USER.search(message))
