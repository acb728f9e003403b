"""Scores for PKC Mark's answers, without a judge model: each answer gets 0..1 and the flags that
describe how it failed (empty, truncated, looping, invalid_json, failed); Korean answers get
their share of Hangul among letters (code-switching shows as a low share)."""
from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Mapping
from typing import Any

from mark.items import Item

SENTENCE = re.compile(r"[^.!?。]+[.!?。]+|[^.!?。]+$")
NUMBER = re.compile(r"-?\d+")
CODE_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def hangul_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    return sum("\uac00" <= ch <= "\ud7a3" for ch in letters) / len(letters) if letters else 0.0


def looping(text: str) -> bool:
    """The same sentence (or line) of some length three times or more: a repetition loop."""
    pieces = [p.strip() for p in re.split(r"[\n.!?。]+", text) if len(p.strip()) >= 12]
    return any(pieces.count(p) >= 3 for p in set(pieces))


def flags(text: str, finish_reason: str) -> set[str]:
    found = set()
    if not text.strip():
        found.add("empty")
    if finish_reason == "trimmed":
        found.add("truncated")
    if looping(text):
        found.add("looping")
    if finish_reason == "error":
        found.add("failed")
    return found


def score_instruct(item: Item, text: str) -> float:
    check, passed, total = item.check, 0, 0
    total += 1
    share = hangul_share(text)
    passed += share >= 0.5 if check["language"] == "ko" else share < 0.1 and any(ch.isalpha() for ch in text)
    total += 1
    passed += check["include"].lower() in text.lower()
    if "bullets" in check:
        total += 1
        passed += sum(1 for line in text.splitlines() if re.match(r"\s*[-*•]\s+\S", line)) == check["bullets"]
    if "max_sentences" in check:
        total += 1
        passed += 0 < len([s for s in SENTENCE.findall(text.strip()) if s.strip()]) <= check["max_sentences"]
    return passed / total


def score_reasoning(item: Item, text: str) -> float:
    if "letter" in item.check:
        return float(text.strip().strip('"').upper()[:1] == item.check["letter"])
    if "number" in item.check:
        found = NUMBER.findall(text.replace(",", ""))
        return float(bool(found) and int(found[0]) == item.check["number"])
    mentioned = sorted((text.find(day), day) for day in item.check["others"] if day in text)
    return float(bool(mentioned) and mentioned[0][1] == item.check["word"])


def score_summary(item: Item, text: str) -> float:
    """The share of the key facts kept, less a quarter for each number the text does not have."""
    kept = sum(fact.lower() in text.lower() for fact in item.check["facts"]) / len(item.check["facts"])
    source_numbers = set(NUMBER.findall(item.check["source"].replace(",", "")))
    invented = [n for n in NUMBER.findall(text.replace(",", "")) if n not in source_numbers]
    return max(0.0, kept - 0.25 * len(invented))


def score_documents(item: Item, text: str, sources: list[dict]) -> float:
    """1: the fact, citing a passage of the right document ([n]); 0.5: the fact without that citation."""
    if item.check["fact"].lower() not in text.lower():
        return 0.0
    right = {f"[{s['n']}]" for s in sources if s.get("name") == item.check["document"]}
    return 1.0 if any(mark in text for mark in right) else 0.5


def score_vision(item: Item, text: str) -> float:
    return float(item.check["word"].lower() in text.lower())


def parse_json_answer(text: str):
    """The answer's JSON object: the whole text, or its first {...} (models wrap it in prose or fences)."""
    for candidate in (text.strip(), *re.findall(r"\{.*\}", text, re.DOTALL)):
        candidate = candidate.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def score_json(item: Item, text: str) -> tuple[float, bool]:
    """(score, valid JSON): 1 all right; 0.5 the right keys and types with a wrong value."""
    value = parse_json_answer(text)
    if value is None:
        return 0.0, False
    expected = item.check["expected"]
    if not all(isinstance(value.get(k), type(v)) for k, v in expected.items()):
        return 0.0, True
    return (1.0 if all(value[k] == v for k, v in expected.items()) else 0.5), True


def code_of(text: str) -> str:
    match = CODE_BLOCK.search(text)
    return match.group(1) if match else text


def test_program(item: Item, text: str) -> str:
    """The answer's code, then the hidden tests: exit code 0 means every test passed."""
    tests = "\n".join(f"assert {test}, {test!r}" for test in item.check["tests"])
    return f"{code_of(text)}\n\n{tests}\nprint('PASSED')\n"


def score_tools(item: Item, calls: list[tuple[str, Mapping[str, Any]]]) -> float:
    """1 for the expected tool with the expected arguments, 0.5 for the tool alone (arguments as
    parsed where the call was made: none when they were not a JSON object)."""
    expected = item.check["tool"]
    if expected is None:
        return float(not calls)
    if not calls or calls[0][0] != expected:
        return 0.0
    arguments = calls[0][1]
    right = all(part.lower() in str(arguments.get(key, "")).lower() for key, part in item.check["arguments"].items())
    return 1.0 if right else 0.5


def summary(scores: list[float], per_seed: list[float]) -> dict:
    """Mean with a 95 % interval (normal approximation over the answers), and the spread across seeds."""
    n = len(scores)
    mean = sum(scores) / n if n else 0.0
    half = 1.96 * statistics.stdev(scores) / math.sqrt(n) if n > 1 else 0.0
    return {"score": round(mean, 4), "ci_low": round(max(0.0, mean - half), 4), "ci_high": round(min(1.0, mean + half), 4),
            "spread": round(statistics.pstdev(per_seed), 4) if len(per_seed) > 1 else 0.0, "answers": n}
