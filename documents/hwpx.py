"""한글 HWPX (OWPML: a zip of XML parts) to text: the body in reading order, tables as rows of
cells, footnotes and endnotes beside the paragraph that cites them, and outline-styled
paragraphs ("개요 1", "Outline 2", ...) as headings for the chunker. Files from outside: a zip
bomb, an encrypted or a broken document is a clear error in Korean, never a crash.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile

from core.errors import BadUpload
from documents.page_checks import open_zip

HP = "{http://www.hancom.co.kr/hwpml/2011/paragraph}"
HH = "{http://www.hancom.co.kr/hwpml/2011/head}"
SECTION = re.compile(r"Contents/section(\d+)\.xml")
HEADING_STYLE = re.compile(r"^(개요|outline|제목|heading)\s*\d*", re.IGNORECASE)


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
        styles = _heading_styles(archive, names)
        blocks = [block for _, part in sections for block in _section(_xml(archive, part, name), styles)]
    return "\n\n".join(block for block in blocks if block)


def _xml(archive: zipfile.ZipFile, part: str, name: str) -> ET.Element:
    try:
        return ET.fromstring(archive.read(part))
    except (ET.ParseError, KeyError, zipfile.BadZipFile, OSError) as exc:
        raise BadUpload(f"{name}: {part}을(를) 읽을 수 없습니다 ({exc}). 손상되었거나 배포용(보호) 문서일 수 있습니다.",
                        code="corrupt_file") from exc


def _heading_styles(archive: zipfile.ZipFile, names: list[str]) -> dict[str, int]:
    """Style id -> heading level, for the outline styles of Contents/header.xml."""
    if "Contents/header.xml" not in names:
        return {}
    try:
        head = ET.fromstring(archive.read("Contents/header.xml"))
    except ET.ParseError:
        return {}
    levels = {}
    for style in head.iter(f"{HH}style"):
        label = f"{style.get('name', '')} {style.get('engName', '')}".strip()
        match = HEADING_STYLE.match(label)
        if match and style.get("id") is not None:
            digits = re.search(r"\d+", label)
            levels[style.get("id")] = min(int(digits.group()) if digits else 1, 5)
    return levels


def _section(root: ET.Element, styles: dict[str, int]) -> list[str]:
    blocks = []
    for paragraph in root.findall(f"{HP}p"):
        blocks.extend(_paragraph(paragraph, styles))
    return blocks


def _paragraph(paragraph: ET.Element, styles: dict[str, int]) -> list[str]:
    """The paragraph's own text, then its tables' rows and its notes."""
    own, after = [], []
    for run in paragraph.findall(f"{HP}run"):
        for child in run:
            tag = child.tag.removeprefix(HP)
            if tag == "t":
                own.append("".join(child.itertext()))
            elif tag == "tbl":
                after.extend(_table(child, styles))
            elif tag == "ctrl":
                for note in child:
                    if note.tag.removeprefix(HP) in ("footNote", "endNote"):
                        after.append("[주석] " + " ".join(_sublist(note, styles)))
    text = re.sub(r"[ \t\u00a0]+", " ", "".join(own)).strip()
    level = styles.get(paragraph.get("styleIDRef", ""))
    if text and level:
        text = "#" * (level + 1) + " " + text
    return [text, *after]


def _table(table: ET.Element, styles: dict[str, int]) -> list[str]:
    rows = []
    for row in table.findall(f"{HP}tr"):
        cells = [" ".join(_sublist(cell, styles)) for cell in row.findall(f"{HP}tc")]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _sublist(holder: ET.Element, styles: dict[str, int]) -> list[str]:
    """The paragraphs of a cell or a note (its hp:subList), as text."""
    texts = []
    for sublist in holder.findall(f"{HP}subList"):
        for paragraph in sublist.findall(f"{HP}p"):
            texts.extend(block.lstrip("#").strip() for block in _paragraph(paragraph, styles) if block)
    return texts
