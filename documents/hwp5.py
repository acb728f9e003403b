"""한글 HWP 5.0 (an OLE compound file; read with olefile, BSD) to text.

The body is BodyText/Section0, Section1, ...: records (a 32-bit header: tag, nesting level,
size) of paragraphs, raw-deflate compressed when the FileHeader says so. A paragraph's text is
UTF-16 with control characters: some stand for one character (line break, spaces), the others
take 8 code units and point at a control (a table, a footnote ...) whose records follow the
paragraph one level deeper. Tables come out as rows of cells, footnotes and endnotes as
`[주석] ...` beside their paragraph, text boxes and captions after it, equations as
`[수식] <script>` (headers and footers, repeated on every page, are left out), automatic
numbering ("1.", "가.", "①") as 한글 shows it, from DocInfo's numbering definitions, and
outline-styled paragraphs ("개요 1") as headings.

Distribution (배포용: the FileHeader's bit 2), password and DRM documents are refused in
Korean, never read as garbage. A document saved with track changes (bit 14) also keeps a
ViewText storage: it is not a distribution document, and its body is read as shown. A file
this reader cannot follow, or whose body holds no paragraph, is a clear error, never a crash.
"""
from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass, field

from core.errors import BadUpload
from documents.hwp5_docinfo import DocInfo, read_docinfo
from documents.numbering import Counters

SIGNATURE = b"HWP Document File"
COMPRESSED, PASSWORD, DISTRIBUTION, DRM = 0x1, 0x2, 0x4, 0x10
CERTIFICATE_ENCRYPTED, CERTIFICATE_DRM = 0x100, 0x400
TAG_PARA_HEADER, TAG_PARA_TEXT, TAG_CTRL_HEADER, TAG_LIST_HEADER, TAG_TABLE = (0x10 + n for n in (50, 51, 55, 56, 61))
TAG_EQEDIT = 0x10 + 72
CTRL_TABLE, CTRL_DRAWING, CTRL_EQUATION, NOTES = b"tbl ", b"gso ", b"eqed", (b"fn  ", b"en  ")
MAX_STREAM = 256 * 1024 * 1024  # one decompressed section; more is a bomb, not a document
# Table 6 of the format: these control codes take one code unit; every other code below 32
# takes eight (the code, six units of data or a pointer, the code again).
ONE_UNIT = {0: "", 10: "\n", 13: "", 24: "-", 25: "", 26: "", 27: "", 28: "", 29: "", 30: " ", 31: " "}
# One pass over a paragraph's text: an eight-unit control with its seven units of data, or a
# one-unit control alone.
CONTROLS = re.compile("([" + "".join(chr(c) for c in range(32) if c not in ONE_UNIT) + "])[\\s\\S]{0,7}|(["
                      + "".join(chr(c) for c in ONE_UNIT) + "])")
SPACES = re.compile(r"[ \t\u00a0]+")


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
        sections = _sections(ole, "BodyText")
        _refuse_protected(flags, name, has_body=bool(sections) or not _sections(ole, "ViewText"))
        if not sections:
            raise BadUpload(f"{name}: 한글 HWP 문서에 본문(BodyText/Section0)이 없습니다. 손상된 문서입니다.",
                            code="corrupt_file")
        compressed = bool(flags & COMPRESSED)
        info = read_docinfo(_records(_stream(ole, ["DocInfo"], compressed, name), "DocInfo")) if ole.exists("DocInfo") \
            else DocInfo()
        reader = _Body(info)
        blocks, paragraphs = [], 0
        for path in sections:
            tree = _tree(_records(_stream(ole, path, compressed, name), name))
            paragraphs += len(tree)
            for paragraph in tree:
                blocks.extend(reader.paragraph(paragraph))
        if not paragraphs:
            raise BadUpload(f"{name}: 본문에 문단이 하나도 없습니다. 손상된 문서입니다.", code="corrupt_file")
    return "\n\n".join(block for block in blocks if block)


def _sections(ole, storage: str) -> list[list[str]]:
    found = sorted((int(m.group(1)), path) for path in ole.listdir()
                   if len(path) == 2 and path[0] == storage and (m := re.fullmatch(r"Section(\d+)", path[1])))
    return [path for _, path in found]


def _refuse_protected(flags: int, name: str, has_body: bool) -> None:
    """Distribution by the FileHeader's bit (or a body only in ViewText), password, DRM: refused."""
    if flags & DISTRIBUTION or not has_body:
        raise BadUpload(f"{name}: 배포용(복사·인쇄 제한) 한글 문서라 본문이 암호화되어 있어 읽을 수 없습니다. "
                        "원본 문서를 올려 주세요.", code="distribution_document", status=422)
    if flags & PASSWORD:
        raise BadUpload(f"{name}: 암호가 걸린 한글 문서라 읽을 수 없습니다. 암호를 풀고 다시 저장해 올려 주세요.",
                        code="encrypted_document", status=422)
    if flags & (DRM | CERTIFICATE_ENCRYPTED | CERTIFICATE_DRM):
        raise BadUpload(f"{name}: 한글의 문서 보안(DRM 또는 인증서 암호화)이 걸린 문서라 읽을 수 없습니다. 보안을 해제해 "
                        "저장한 뒤 다시 올려 주세요.", code="drm_protected", status=422)


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


def _text(data: bytes) -> str:
    """A paragraph's UTF-16 text with its control characters: the eight-unit ones (a tab, or a
    pointer at a control) are cut with their data by one regular expression, the one-unit ones
    translated; a per-unit loop took 10 times as long on a 1,000-page document."""
    text = data[:len(data) // 2 * 2].decode("utf-16-le", "surrogatepass")
    text = CONTROLS.sub(_control_text, text)
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")  # lone halves: U+FFFD
    return SPACES.sub(" ", text).strip()


def _control_text(match: re.Match[str]) -> str:
    if match.group(2) is not None:
        return ONE_UNIT[ord(match.group(2))]
    return "\t" if match.group(1) == "\t" else ""


class _Body:
    """Paragraphs to text, keeping the numbering counters across the sections."""

    def __init__(self, info: DocInfo) -> None:
        self.info = info
        self.counters = Counters()

    def paragraph(self, paragraph: Record) -> list[str]:
        """The paragraph's text (numbered as 한글 shows it), then its tables, notes, boxes,
        captions and equations."""
        own, after = "", []
        for child in paragraph.children:
            if child.tag == TAG_PARA_TEXT:
                own = _text(child.data)
            elif child.tag == TAG_CTRL_HEADER and len(child.data) >= 4:
                after.extend(self._control(child))
        shape = struct.unpack_from("<H", paragraph.data, 8)[0] if len(paragraph.data) >= 10 else -1
        style = paragraph.data[10] if len(paragraph.data) > 10 else -1
        number = self.info.number(self.counters, shape, style)
        if own and number:
            own = f"{number} {own}"
        level = self.info.heading_styles.get(style)
        if own and level:
            own = "#" * (level + 1) + " " + own
        return [own, *after]

    def _control(self, control: Record) -> list[str]:
        kind = control.data[:4][::-1]  # the id is four characters stored as a little-endian number
        if kind == CTRL_TABLE:
            return self._table(control)
        if kind in NOTES:
            return ["[주석] " + " ".join(text for cell in self._lists(control) for text in cell[1])]
        if kind == CTRL_DRAWING:  # a text box or a picture's caption: its lists sit in nested records
            return self._drawing_texts(control)
        if kind == CTRL_EQUATION:
            scripts = [_equation_script(child.data) for child in control.children if child.tag == TAG_EQEDIT]
            return [f"[수식] {script}" for script in scripts if script] + self._drawing_texts(control)
        return []

    def _lists(self, control: Record, children: list[Record] | None = None) -> list[tuple[int, list[str]]]:
        """The paragraph lists inside a control: (row, texts) per list, a list header followed by
        its paragraphs at the same level. A table cell's header carries its row at byte 10."""
        lists: list[tuple[int, list[str]]] = []
        for child in control.children if children is None else children:
            if child.tag == TAG_LIST_HEADER:
                row = struct.unpack_from("<H", child.data, 10)[0] if len(child.data) >= 12 else len(lists)
                lists.append((row, []))
            elif child.tag == TAG_PARA_HEADER and lists:
                lists[-1][1].extend(block.lstrip("#").strip() for block in self.paragraph(child) if block)
        return lists

    def _drawing_texts(self, record: Record) -> list[str]:
        texts = [text for _, cell in self._lists(record) for text in cell]
        for child in record.children:
            if child.tag not in (TAG_LIST_HEADER, TAG_PARA_HEADER):
                texts.extend(self._drawing_texts(child))
        return texts

    def _table(self, control: Record) -> list[str]:
        """A caption's list comes before the TABLE record, the cells' lists after it."""
        at = next((i for i, child in enumerate(control.children) if child.tag == TAG_TABLE), 0)
        captions = [text for _, texts in self._lists(control, control.children[:at]) for text in texts]
        rows: dict[int, list[str]] = {}
        for row, texts in self._lists(control, control.children[at:]):
            rows.setdefault(row, []).append(" ".join(texts))
        return captions + [" | ".join(cells) for _, cells in sorted(rows.items()) if any(cells)]


def _equation_script(data: bytes) -> str:
    """HWPTAG_EQEDIT: a property (4 bytes), then the script as a length-prefixed UTF-16 string."""
    if len(data) < 6:
        return ""
    (length,) = struct.unpack_from("<H", data, 4)
    return " ".join(data[6:6 + 2 * length].decode("utf-16-le", "replace").split())
