"""한글's automatic paragraph numbers (문단 번호 / 개요 번호), rendered as 한글 shows them.

Both formats describe a numbering as up to ten levels, each with a format string ("^1.",
"제^1장", "(^3)": `^n` stands for level n's counter) and a number style (digits, 가나다,
①②③ ...). Paragraphs name a numbering and a level; the counter of that level goes up, the
deeper ones start again. HWP 5 gives the style as a number (its spec's table 43), HWPX as a
name; both map to the same styles here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

LEVELS = 10
_CYCLES = {
    "circled_digit": "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳",
    "circled_latin_capital": "ⒶⒷⒸⒹⒺⒻⒼⒽⒾⒿⓀⓁⓂⓃⓄⓅⓆⓇⓈⓉⓊⓋⓌⓍⓎⓏ",
    "circled_latin_small": "ⓐⓑⓒⓓⓔⓕⓖⓗⓘⓙⓚⓛⓜⓝⓞⓟⓠⓡⓢⓣⓤⓥⓦⓧⓨⓩ",
    "hangul_syllable": "가나다라마바사아자차카타파하",
    "circled_hangul_syllable": "㉮㉯㉰㉱㉲㉳㉴㉵㉶㉷㉸㉹㉺㉻",
    "hangul_jamo": "ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎ",
    "circled_hangul_jamo": "㉠㉡㉢㉣㉤㉥㉦㉧㉨㉩㉪㉫㉬㉭",
    "circled_ideograph": "㊀㊁㊂㊃㊄㊅㊆㊇㊈㊉",
    "decagon_circle": "갑을병정무기경신임계",
    "decagon_circle_hanja": "甲乙丙丁戊己庚辛壬癸",
    "latin_capital": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "latin_small": "abcdefghijklmnopqrstuvwxyz",
}
# HWP 5's number styles (table 43), in the order of their codes.
HWP_STYLES = ("digit", "circled_digit", "roman_capital", "roman_small", "latin_capital", "latin_small",
              "circled_latin_capital", "circled_latin_small", "hangul_syllable", "circled_hangul_syllable",
              "hangul_jamo", "circled_hangul_jamo", "hangul_digit", "ideograph", "circled_ideograph",
              "decagon_circle", "decagon_circle_hanja")
_ROMAN = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
          (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
_TOKEN = re.compile(r"\^(10|[1-9])")


def _spelled(value: int, digits: str) -> str:
    """일, 이, ... 십일 (or 一, 二 ...): how 한글 spells numbers up to 99."""
    value = (value - 1) % 99 + 1
    tens, ones = divmod(value, 10)
    head = "" if tens == 0 else (digits[9] if tens == 1 else digits[tens - 1] + digits[9])
    return head + (digits[ones - 1] if ones else "")


def number_text(value: int, style: str) -> str:
    """One counter in one style; styles this module does not know fall back to digits."""
    if value <= 0:
        return ""
    style = style.lower()
    if style in _CYCLES:
        chars = _CYCLES[style]
        return chars[(value - 1) % len(chars)]
    if style in ("roman_capital", "roman_small"):
        out, rest = "", value
        for amount, letters in _ROMAN:
            while rest >= amount:
                out, rest = out + letters, rest - amount
        return out if style == "roman_capital" else out.lower()
    if style == "hangul_digit":
        return _spelled(value, "일이삼사오육칠팔구십")
    if style == "ideograph":
        return _spelled(value, "一二三四五六七八九十")
    return str(value)


@dataclass(frozen=True)
class Level:
    template: str  # "^1.", "제^1장" ...
    style: str  # a key of number_text
    start: int = 1


@dataclass
class Counters:
    """The running counters of the numberings met so far in a document, by numbering key."""
    values: dict[object, list[int]] = field(default_factory=dict)

    def next(self, key: object, levels: list[Level | None], level: int) -> str:
        """The number of a paragraph at `level` (0-based) of the numbering `levels`."""
        if not 0 <= level < min(LEVELS, len(levels)) or levels[level] is None:
            return ""
        counts = self.values.setdefault(key, [0] * LEVELS)
        this = levels[level]
        assert this is not None
        counts[level] = counts[level] + 1 if counts[level] else this.start
        for deeper in range(level + 1, LEVELS):
            counts[deeper] = 0
        for upper in range(level):
            if counts[upper] == 0:
                upper_level = levels[upper]
                counts[upper] = upper_level.start if upper_level else 1

        def value(match: re.Match[str]) -> str:
            at = int(match.group(1)) - 1
            own = (levels[at] if at < len(levels) else None) or this
            return number_text(counts[at], own.style) if at <= level else ""

        return _TOKEN.sub(value, this.template).strip()
