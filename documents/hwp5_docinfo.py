"""What HWP 5's DocInfo stream tells the body reader: which styles are outline headings, and
how paragraphs are numbered (paragraph shapes naming a numbering or a bullet and a level; the
numberings' format strings and number styles per level). Layout of the records: the HWP 5.0
format's tables 38-45 (paragraph shape, numbering, bullet) and 47 (style)."""
from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from documents.numbering import HWP_STYLES, Counters, Level

TAG_NUMBERING, TAG_BULLET, TAG_PARA_SHAPE, TAG_STYLE = (0x10 + n for n in (7, 8, 9, 10))
HEADING_STYLE = re.compile(r"^(개요|outline|제목|heading)\s*(\d*)", re.IGNORECASE)
NONE, OUTLINE, NUMBER, BULLET = range(4)  # a paragraph shape's head kind (bits 23-24)
# 한글's own outline numbering (1. / 가. / 1) / 가) / (1) / (가) / ①), for shapes that name none.
DEFAULT_OUTLINE = [Level("^1.", "digit"), Level("^2.", "hangul_syllable"), Level("^3)", "digit"),
                   Level("^4)", "hangul_syllable"), Level("(^5)", "digit"), Level("(^6)", "hangul_syllable"),
                   Level("^7", "circled_digit")]


class RecordLike(Protocol):
    tag: int
    data: bytes


@dataclass(frozen=True)
class ParaShape:
    head: int  # NONE, OUTLINE, NUMBER, BULLET
    level: int  # 0-based
    head_id: int  # the numbering or bullet, from 1; 0: the default


@dataclass
class DocInfo:
    heading_styles: dict[int, int] = field(default_factory=dict)  # style index -> heading level
    style_shapes: dict[int, int] = field(default_factory=dict)  # style index -> its paragraph shape
    para_shapes: list[ParaShape] = field(default_factory=list)
    numberings: list[list[Level | None]] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)

    def number(self, counters: Counters, shape_id: int, style_id: int) -> str:
        """The number or bullet 한글 shows before a paragraph of this shape and style."""
        if not 0 <= shape_id < len(self.para_shapes):
            return ""
        shape = self.para_shapes[shape_id]
        if shape.head == BULLET:
            return self.bullets[shape.head_id - 1] if 0 < shape.head_id <= len(self.bullets) else "●"
        if shape.head == NUMBER:
            return counters.next(("number", shape.head_id), self._levels(shape.head_id), shape.level)
        if shape.head == OUTLINE:  # the outline's numbering is the one its style's shape names
            style_shape = self.style_shapes.get(style_id, -1)
            head_id = self.para_shapes[style_shape].head_id if 0 <= style_shape < len(self.para_shapes) else 0
            return counters.next(("outline", head_id), self._levels(head_id), shape.level)
        return ""

    def _levels(self, head_id: int) -> list[Level | None]:
        if 0 < head_id <= len(self.numberings):
            return self.numberings[head_id - 1]
        return list(DEFAULT_OUTLINE)


def read_docinfo(records: Sequence[RecordLike]) -> DocInfo:
    info = DocInfo()
    style_index = 0
    for record in records:
        try:
            if record.tag == TAG_PARA_SHAPE:
                info.para_shapes.append(_para_shape(record.data))
            elif record.tag == TAG_NUMBERING:
                info.numberings.append(_numbering(record.data))
            elif record.tag == TAG_BULLET:
                info.bullets.append(_bullet(record.data))
            elif record.tag == TAG_STYLE:
                _style(record.data, style_index, info)
                style_index += 1
        except (struct.error, IndexError):  # a short record: its kind counts, its content does not
            if record.tag == TAG_PARA_SHAPE:
                info.para_shapes.append(ParaShape(NONE, 0, 0))
            elif record.tag == TAG_NUMBERING:
                info.numberings.append([])
            elif record.tag == TAG_BULLET:
                info.bullets.append("●")
            elif record.tag == TAG_STYLE:
                style_index += 1
    return info


def _string(data: bytes, at: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<H", data, at)
    end = at + 2 + 2 * length
    if end > len(data):
        raise IndexError("string past the record")
    return data[at + 2:end].decode("utf-16-le", "replace"), end


def _para_shape(data: bytes) -> ParaShape:
    (props,) = struct.unpack_from("<I", data, 0)
    (head_id,) = struct.unpack_from("<H", data, 30) if len(data) >= 32 else (0,)
    return ParaShape((props >> 23) & 0x3, (props >> 25) & 0x7, head_id)


def _numbering(data: bytes) -> list[Level | None]:
    """Levels 1-7: a head info (12 bytes: properties with the number style at bits 5-9 ...) and
    a format string each; the start number; the levels' own starts (5.0.2.5 and later)."""
    heads: list[tuple[str, str]] = []
    at = 0
    for _ in range(7):
        (props,) = struct.unpack_from("<I", data, at)
        template, at = _string(data, at + 12)
        heads.append((_template(template), HWP_STYLES[(props >> 5) & 0x1F] if (props >> 5) & 0x1F < len(HWP_STYLES)
                      else "digit"))
    at += 2  # the numbering's start number
    starts = list(struct.unpack_from("<7I", data, at)) if len(data) >= at + 28 else [1] * 7
    return [Level(template, style, start or 1) if template else None
            for (template, style), start in zip(heads, starts)]


def _template(template: str) -> str:
    """Format strings keep `^n` as text; some writers store level n as the code unit n."""
    return re.sub(r"[\x01-\x0a]", lambda m: f"^{ord(m.group())}", template)


def _bullet(data: bytes) -> str:
    (char,) = struct.unpack_from("<H", data, 12)
    return chr(char) if char >= 32 else "●"


def _style(data: bytes, index: int, info: DocInfo) -> None:
    local, at = _string(data, 0)
    english, at = _string(data, at)
    match = HEADING_STYLE.match(local) or HEADING_STYLE.match(english)
    if match:
        info.heading_styles[index] = min(int(match.group(2) or 1), 5)
    if len(data) >= at + 6:
        (shape,) = struct.unpack_from("<H", data, at + 4)  # after properties, next style and language
        info.style_shapes[index] = shape
