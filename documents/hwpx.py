"""한글 HWPX (OWPML: a zip of XML parts) to text: the body in reading order, tables as rows of
cells, footnotes and endnotes beside the paragraph that cites them, text boxes and shapes
(`hp:rect`, `hp:container` ... their `hp:drawText`) and captions after it, equations as
`[수식] <script>`, tabs and line breaks inside a run kept, automatic numbering ("1.", "가.",
"①") as 한글 shows it, and outline-styled paragraphs ("개요 1", "Outline 2", ...) as headings for
the chunker. Headers and footers (repeated on every page) are left out. Files from outside: a
zip bomb, an encrypted or a broken document is a clear error in Korean, never a crash.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field

from core.errors import BadUpload
from documents.numbering import Counters, Level
from documents.page_checks import open_zip

HP = "{http://www.hancom.co.kr/hwpml/2011/paragraph}"
HH = "{http://www.hancom.co.kr/hwpml/2011/head}"
SECTION = re.compile(r"Contents/section(\d+)\.xml")
HEADING_STYLE = re.compile(r"^(개요|outline|제목|heading)\s*\d*", re.IGNORECASE)
SKIPPED = {"header", "footer", "secPr", "colPr", "fieldEnd", "bookmark", "pageNum", "autoNum", "newNum",
           "pageHiddenCtrl", "pageNumCtrl", "indexmark", "parameters"}
COMMENTS = {"hiddenComment", "fieldBegin"}  # 숨은 설명 and memos (a MEMO field holds its text in a subList)
INLINE = {"tab": "\t", "lineBreak": "\n", "hyphen": "-", "nbSpace": "\u00a0", "fwSpace": " "}


@dataclass
class Head:
    """header.xml as the body needs it: heading levels by style, and paragraph numbering."""
    heading_styles: dict[str, int] = field(default_factory=dict)
    para_heads: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # paraPr id -> (type, idRef, level)
    numberings: dict[str, list[Level | None]] = field(default_factory=dict)
    bullets: dict[str, str] = field(default_factory=dict)
    outline_styles: dict[int, str] = field(default_factory=dict)  # outline level -> the "Outline n" style's paraPr


def hwpx_text(data: bytes, name: str) -> str:
    archive = open_zip(data, name, f"{name}: 손상된 HWPX 파일입니다")
    with archive:
        names = archive.namelist()
        if "META-INF/manifest.xml" in names and b"encryption-data" in archive.read("META-INF/manifest.xml"):
            raise BadUpload(f"{name}: 암호가 걸린 한글 문서라 읽을 수 없습니다. 암호를 풀고 다시 저장해 올려 주세요.",
                            code="encrypted_document", status=422)
        sections = sorted((int(m.group(1)), n) for n in names if (m := SECTION.fullmatch(n)))
        if not sections:
            raise BadUpload(f"{name}: 한글 HWPX 문서가 아닙니다 (본문 Contents/section0.xml이 없음).", code="corrupt_file")
        reader = _Body(_head(archive, names))
        blocks = []
        for _, part in sections:
            root = _xml(archive, part, name)
            if root.find(f"{HP}p") is None and root.find(f"{HP}tbl") is None:
                raise BadUpload(f"{name}: 본문({part})에 문단이 하나도 없습니다. 손상된 문서입니다.", code="corrupt_file")
            blocks.extend(reader.section(root))
    return "\n\n".join(block for block in blocks if block)


def _xml(archive: zipfile.ZipFile, part: str, name: str) -> ET.Element:
    try:
        return ET.fromstring(archive.read(part))
    except (ET.ParseError, KeyError, zipfile.BadZipFile, OSError) as exc:
        raise BadUpload(f"{name}: {part}을(를) 읽을 수 없습니다 ({exc}). 손상되었거나 배포용(보호) 문서일 수 있습니다.",
                        code="corrupt_file") from exc


def _head(archive: zipfile.ZipFile, names: list[str]) -> Head:
    head = Head()
    if "Contents/header.xml" not in names:
        return head
    try:
        root = ET.fromstring(archive.read("Contents/header.xml"))
    except ET.ParseError:
        return head
    for style in root.iter(f"{HH}style"):
        label = f"{style.get('name', '')} {style.get('engName', '')}".strip()
        if HEADING_STYLE.match(label) and style.get("id") is not None:
            digits = re.search(r"\d+", label)
            head.heading_styles[style.get("id", "")] = min(int(digits.group()) if digits else 1, 5)
        outline = re.fullmatch(r"Outline (\d+)", style.get("engName", ""))
        if outline:
            head.outline_styles[int(outline.group(1)) - 1] = style.get("paraPrIDRef", "")
    for para in root.iter(f"{HH}paraPr"):
        heading = para.find(f"{HH}heading")
        if heading is not None and heading.get("type", "NONE") != "NONE":
            head.para_heads[para.get("id", "")] = (heading.get("type", ""), heading.get("idRef", "0"),
                                                   _int(heading.get("level")))
    for numbering in root.iter(f"{HH}numbering"):
        levels: list[Level | None] = [None] * 10
        for para_head in numbering.findall(f"{HH}paraHead"):
            at = _int(para_head.get("level")) - 1
            if 0 <= at < 10:
                levels[at] = Level(para_head.text or "", para_head.get("numFormat", "DIGIT"),
                                   _int(para_head.get("start"), 1))
        head.numberings[numbering.get("id", "")] = levels
    for bullet in root.iter(f"{HH}bullet"):
        head.bullets[bullet.get("id", "")] = bullet.get("char", "")
    return head


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text or default)
    except ValueError:
        return default


class _Body:
    """Walks the sections in order, keeping the numbering counters across them."""

    def __init__(self, head: Head) -> None:
        self.head = head
        self.counters = Counters()

    def section(self, root: ET.Element) -> list[str]:
        blocks = []
        for child in root:  # paragraphs; some writers put tables straight in the section too
            if child.tag == f"{HP}p":
                blocks.extend(self.paragraph(child))
            elif child.tag == f"{HP}tbl":
                blocks.extend(self._table(child))
        return blocks

    def paragraph(self, paragraph: ET.Element) -> list[str]:
        """The paragraph's own text (numbered as 한글 shows it), then its tables, notes, boxes,
        captions and equations."""
        own: list[str] = []
        after: list[str] = []
        for run in paragraph.findall(f"{HP}run"):
            for child in run:
                self._run_child(child, own, after)
        text = re.sub(r"[ \t\u00a0]+", " ", "".join(own)).strip()
        text = re.sub(r" ?\n ?", "\n", text)
        number = self._number(paragraph)
        if text and number:
            text = f"{number} {text}"
        level = self.head.heading_styles.get(paragraph.get("styleIDRef", ""))
        if text and level:
            text = "#" * (level + 1) + " " + text
        return [text, *after]

    def _run_child(self, child: ET.Element, own: list[str], after: list[str]) -> None:
        tag = child.tag.removeprefix(HP)
        if tag == "t":
            own.append(_run_text(child))
        elif tag == "tbl":
            after.extend(self._table(child))
        elif tag == "ctrl":
            for note in child:
                tag = note.tag.removeprefix(HP)
                if tag in ("footNote", "endNote"):
                    after.append("[주석] " + " ".join(self._sublists(note)))
                elif tag in COMMENTS and (texts := self._sublists(note)):
                    after.append("[메모] " + " ".join(texts))
        elif tag == "equation":
            script = " ".join((child.findtext(f"{HP}script") or "").split())
            if script:
                after.append(f"[수식] {script}")
            after.extend(self._captions(child))
        elif tag not in SKIPPED:  # a shape, a picture, a container of shapes: its text boxes and captions
            after.extend(self._drawing(child))

    def _number(self, paragraph: ET.Element) -> str:
        kind, id_ref, level = self.head.para_heads.get(paragraph.get("paraPrIDRef", ""), ("", "", 0))
        if kind == "BULLET":
            return self.head.bullets.get(id_ref, "")
        if kind == "OUTLINE":  # the outline numbering is the one the "Outline n" style's paragraph names
            style_para = self.head.para_heads.get(self.head.outline_styles.get(level, ""))
            id_ref = style_para[1] if style_para else "1"
            return self.counters.next(("outline", id_ref), self._levels(id_ref), level)
        if kind == "NUMBER":
            return self.counters.next(("number", id_ref), self._levels(id_ref), level)
        return ""

    def _levels(self, id_ref: str) -> list[Level | None]:
        return self.head.numberings.get(id_ref) or self.head.numberings.get(str(_int(id_ref) + 1)) or []

    def _table(self, table: ET.Element) -> list[str]:
        rows = []
        for row in table.findall(f"{HP}tr"):
            cells = [" ".join(self._sublists(cell)) for cell in row.findall(f"{HP}tc")]
            if any(cells):
                rows.append(" | ".join(cells))
        return self._captions(table) + rows

    def _captions(self, holder: ET.Element) -> list[str]:
        return [text for caption in holder.findall(f"{HP}caption") for text in self._sublists(caption)]

    def _drawing(self, shape: ET.Element) -> list[str]:
        """Text boxes and captions of a shape, and of the shapes a container groups."""
        texts: list[str] = []
        for child in shape:
            tag = child.tag.removeprefix(HP)
            if tag in ("drawText", "caption"):
                texts.extend(self._sublists(child))
            elif tag not in SKIPPED and len(child):
                texts.extend(self._drawing(child))
        return texts

    def _sublists(self, holder: ET.Element) -> list[str]:
        """The paragraphs of a cell, a note, a text box or a caption (its hp:subList), as text."""
        texts: list[str] = []
        paragraphs = holder.findall(f"{HP}subList/{HP}p") or holder.findall(f"{HP}p")  # some writers skip the subList
        for paragraph in paragraphs:
            texts.extend(block.lstrip("#").strip() for block in self.paragraph(paragraph) if block)
        return texts


def _run_text(t: ET.Element) -> str:
    """An hp:t's text: its characters, tabs and line breaks, and the text between the marks of
    track changes and highlights inside it."""
    parts = [t.text or ""]
    for child in t:
        parts.append(INLINE.get(child.tag.removeprefix(HP), ""))
        parts.append(child.tail or "")
    return "".join(parts)
