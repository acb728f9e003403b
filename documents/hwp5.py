"""한글 HWP 5.0 (an OLE compound file; read with olefile, BSD) to text.

The body is BodyText/Section0, Section1, ...: records (a 32-bit header: tag, nesting level,
size) of paragraphs, raw-deflate compressed when the FileHeader says so. A paragraph's text is
UTF-16 with control characters: some stand for one character (line break, spaces), the others
take 8 code units and point at a control (a table, a footnote ...) whose records follow the
paragraph one level deeper. Tables come out as rows of cells, footnotes and endnotes as
`[주석] ...` beside their paragraph, text boxes and captions after it (headers and footers,
repeated on every page, are left out), outline-styled paragraphs ("개요 1") as headings.
Distribution (배포용) and password-protected documents are refused in Korean, never read as
garbage; a file this reader cannot follow is a clear error, never a crash.
"""
from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass, field

from core.errors import BadUpload

SIGNATURE = b"HWP Document File"
COMPRESSED, PASSWORD, DISTRIBUTION = 0x1, 0x2, 0x4
TAG_STYLE = 0x10 + 26
TAG_PARA_HEADER, TAG_PARA_TEXT, TAG_CTRL_HEADER, TAG_LIST_HEADER, TAG_TABLE = (0x10 + n for n in (50, 51, 55, 56, 61))
CTRL_TABLE, CTRL_DRAWING, NOTES = b"tbl ", b"gso ", (b"fn  ", b"en  ")
MAX_STREAM = 256 * 1024 * 1024  # one decompressed section; more is a bomb, not a document
# Table 6 of the format: these control codes take one code unit; every other code below 32
# takes eight (the code, six units of data or a pointer, the code again).
ONE_UNIT = {0: "", 10: "\n", 13: "", 24: "-", 25: "", 26: "", 27: "", 28: "", 29: "", 30: " ", 31: " "}
HEADING_STYLE = re.compile(r"^(개요|outline|제목|heading)\s*(\d*)", re.IGNORECASE)


@dataclass
class Record:
    tag: int
    level: int
    data: bytes
    children: list[Record] = field(default_factory=list)


def hwp5_text(data: bytes, name: str) -> str:
    import olefile

    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except (OSError, ValueError, struct.error) as exc:
        raise BadUpload(f"{name}: 한글 HWP 파일이 아니거나 손상되었습니다 ({exc}).", code="corrupt_file") from exc
    with ole:
        flags = _file_flags(ole, name)
        if flags & DISTRIBUTION or ole.exists("ViewText"):
            raise BadUpload(f"{name}: 배포용(복사·인쇄 제한) 한글 문서라 본문이 암호화되어 있어 읽을 수 없습니다. "
                            "원본 문서를 올려 주세요.", code="distribution_document", status=422)
        if flags & PASSWORD:
            raise BadUpload(f"{name}: 암호가 걸린 한글 문서라 읽을 수 없습니다. 암호를 풀고 다시 저장해 올려 주세요.",
                            code="encrypted_document", status=422)
        compressed = bool(flags & COMPRESSED)
        sections = sorted((int(m.group(1)), path) for path in ole.listdir()
                          if len(path) == 2 and path[0] == "BodyText" and (m := re.fullmatch(r"Section(\d+)", path[1])))
        if not sections:
            raise BadUpload(f"{name}: 한글 HWP 문서에 본문(BodyText/Section0)이 없습니다.", code="corrupt_file")
        styles = _heading_styles(_stream(ole, ["DocInfo"], compressed, name)) if ole.exists("DocInfo") else {}
        blocks = []
        for _, path in sections:
            for paragraph in _tree(_records(_stream(ole, path, compressed, name), name)):
                blocks.extend(_paragraph(paragraph, styles))
    return "\n\n".join(block for block in blocks if block)


def _file_flags(ole, name: str) -> int:
    if not ole.exists("FileHeader"):
        raise BadUpload(f"{name}: 한글 HWP 문서가 아닙니다 (FileHeader가 없음).", code="corrupt_file")
    header = ole.openstream("FileHeader").read(256)
    if not header.startswith(SIGNATURE) or len(header) < 40:
        raise BadUpload(f"{name}: 한글 HWP 5.0 문서가 아닙니다 (서명이 다름). HWP 3.0 이하 문서는 한글에서 새로 "
                        "저장해 올려 주세요.", code="corrupt_file")
    return struct.unpack_from("<I", header, 36)[0]


def _stream(ole, path: list[str], compressed: bool, name: str) -> bytes:
    raw = ole.openstream(path).read()
    if not compressed:
        return raw
    inflater = zlib.decompressobj(-15)  # raw deflate, no zlib header
    try:
        out = inflater.decompress(raw, MAX_STREAM)
    except zlib.error as exc:
        raise BadUpload(f"{name}: {'/'.join(path)}의 압축을 풀 수 없습니다 ({exc}). 손상된 문서입니다.",
                        code="corrupt_file") from exc
    if inflater.unconsumed_tail:
        raise BadUpload(f"{name}: {'/'.join(path)} expands past {MAX_STREAM} bytes: refused as a bomb",
                        code="zip_bomb", status=413)
    return out


def _records(data: bytes, name: str) -> list[Record]:
    records, at = [], 0
    while at + 4 <= len(data):
        (header,) = struct.unpack_from("<I", data, at)
        tag, level, size = header & 0x3FF, (header >> 10) & 0x3FF, header >> 20
        at += 4
        if size == 0xFFF:  # a long record: the size follows
            if at + 4 > len(data):
                break
            (size,) = struct.unpack_from("<I", data, at)
            at += 4
        if at + size > len(data):
            raise BadUpload(f"{name}: 본문 레코드가 중간에 잘렸습니다. 손상된 문서입니다.", code="corrupt_file")
        records.append(Record(tag, level, data[at:at + size]))
        at += size
    return records


def _tree(records: list[Record]) -> list[Record]:
    """Records nest by level: each one's children are the deeper records that follow it."""
    roots: list[Record] = []
    stack: list[Record] = []
    for record in records:
        while stack and stack[-1].level >= record.level:
            stack.pop()
        (stack[-1].children if stack else roots).append(record)
        stack.append(record)
    return [record for record in roots if record.tag == TAG_PARA_HEADER]


def _heading_styles(docinfo: bytes) -> dict[int, int]:
    """Style index -> heading level, for the outline styles ("개요 1" ...) of DocInfo."""
    levels, index = {}, 0
    for record in _records(docinfo, "DocInfo"):
        if record.tag != TAG_STYLE or len(record.data) < 2:
            continue
        (length,) = struct.unpack_from("<H", record.data, 0)
        local = record.data[2:2 + 2 * length].decode("utf-16-le", "replace")
        english_at = 2 + 2 * length
        english = ""
        if len(record.data) >= english_at + 2:
            (length2,) = struct.unpack_from("<H", record.data, english_at)
            english = record.data[english_at + 2:english_at + 2 + 2 * length2].decode("utf-16-le", "replace")
        match = HEADING_STYLE.match(local) or HEADING_STYLE.match(english)
        if match:
            levels[index] = min(int(match.group(2) or 1), 5)
        index += 1
    return levels


def _text(data: bytes) -> str:
    units = struct.unpack(f"<{len(data) // 2}H", data[:len(data) // 2 * 2])
    out, at = [], 0
    while at < len(units):
        unit = units[at]
        if unit >= 32:
            out.append(unit)
            at += 1
        elif unit in ONE_UNIT:
            out.extend(ord(ch) for ch in ONE_UNIT[unit])
            at += 1
        else:
            if unit == 9:
                out.append(9)  # a tab
            at += 8
    return re.sub(r"[ \t\u00a0]+", " ", struct.pack(f"<{len(out)}H", *out).decode("utf-16-le", "replace")).strip()


def _paragraph(paragraph: Record, styles: dict[int, int]) -> list[str]:
    """The paragraph's text, then its tables' rows and its notes."""
    own, after = "", []
    for child in paragraph.children:
        if child.tag == TAG_PARA_TEXT:
            own = _text(child.data)
        elif child.tag == TAG_CTRL_HEADER and len(child.data) >= 4:
            kind = child.data[:4][::-1]  # the id is four characters stored as a little-endian number
            if kind == CTRL_TABLE:
                after.extend(_table(child, styles))
            elif kind in NOTES:
                texts = [text for cell in _lists(child, styles) for text in cell[1]]
                after.append("[주석] " + " ".join(texts))
            elif kind == CTRL_DRAWING:  # a text box or a picture's caption: its lists sit in nested records
                after.extend(_drawing_texts(child, styles))
    level = styles.get(paragraph.data[10]) if len(paragraph.data) > 10 else None
    if own and level:
        own = "#" * (level + 1) + " " + own
    return [own, *after]


def _lists(control: Record, styles: dict[int, int]) -> list[tuple[int, list[str]]]:
    """The paragraph lists inside a control: (row, texts) per list, a list header followed by
    its paragraphs at the same level. A table cell's header carries its row at byte 10."""
    lists: list[tuple[int, list[str]]] = []
    for child in control.children:
        if child.tag == TAG_LIST_HEADER:
            row = struct.unpack_from("<H", child.data, 10)[0] if len(child.data) >= 12 else len(lists)
            lists.append((row, []))
        elif child.tag == TAG_PARA_HEADER and lists:
            lists[-1][1].extend(block.lstrip("#").strip() for block in _paragraph(child, styles) if block)
    return lists


def _drawing_texts(record: Record, styles: dict[int, int]) -> list[str]:
    texts = [text for _, cell in _lists(record, styles) for text in cell]
    for child in record.children:
        if child.tag not in (TAG_LIST_HEADER, TAG_PARA_HEADER):
            texts.extend(_drawing_texts(child, styles))
    return texts


def _table(control: Record, styles: dict[int, int]) -> list[str]:
    rows: dict[int, list[str]] = {}
    for row, texts in _lists(control, styles):
        rows.setdefault(row, []).append(" ".join(texts))
    return [" | ".join(cells) for _, cells in sorted(rows.items()) if any(cells)]
