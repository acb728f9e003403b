"""Uploaded documents to text: txt, md, pdf (pypdf), docx (python-docx), 한글 hwpx (hwpx.py) and
hwp 5.0 (hwp5.py), html (text only), and pictures of text (png, jpg) for OCR.

A PDF page without a usable text layer and a picture come out as sections that need OCR
(`needs_ocr` says why; page_checks.py decides); the library reads them in the background.

Every failure is a BadUpload with a message a user can act on. Text files are decoded as
UTF-8 (with or without BOM) or CP949/EUC-KR, common for Korean files; anything that is not
text (NUL bytes, control characters) is refused rather than guessed at.
"""
from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

from core.errors import BadUpload
from documents.formats import refuse_drm, sniff
from documents.hwp5 import hwp5_text
from documents.hwpx import hwpx_text
from documents.page_checks import open_zip, picture_of, text_layer_problem

SUFFIXES = {".txt": "txt", ".md": "md", ".markdown": "md", ".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html",
            ".hwpx": "hwpx", ".hwp": "hwp", ".png": "image", ".jpg": "image", ".jpeg": "image"}


@dataclass(frozen=True)
class Section:
    text: str
    page: int | None = None  # PDF page number, from 1
    needs_ocr: str | None = None  # why its text must come from OCR: no_text_layer, garbled, picture
    by_ocr: bool = False  # its text was read by OCR


def clean_filename(name: str, limit: int = 255) -> str:
    """The original name, kept as metadata only (files are stored under generated names).
    A name that tries to be a path, hides control characters or is absurdly long is refused."""
    name = unicodedata.normalize("NFC", (name or "").strip())
    if not name or name in (".", ".."):
        raise BadUpload("the file has no name", code="bad_filename")
    if "/" in name or "\\" in name or name.startswith("."):
        raise BadUpload("the file name must not contain a path or start with '.'", code="bad_filename")
    if any(not ch.isprintable() for ch in name):
        raise BadUpload("the file name contains control characters", code="bad_filename")
    if len(name) > limit:
        raise BadUpload(f"the file name is too long: {len(name)} characters, at most {limit}", code="bad_filename")
    return name


def kind_of(name: str, data: bytes | None = None) -> str:
    """The document kind: by the content for 한글 files (an HWPX package is often saved under a
    ".hwp" name, and the other way round) and for names without a suffix, else by the suffix.
    A file wrapped by a document security program is refused here, saying so."""
    suffix = PurePath(name).suffix.lower()
    by_name = SUFFIXES.get(suffix)
    if data is not None and by_name not in ("txt", "md", "html"):
        refuse_drm(data, name)
        by_content = sniff(data)
        if by_content in ("hwp", "hwpx") and by_name in ("hwp", "hwpx"):
            return by_content
        if by_name is None and by_content:
            return by_content
    if by_name is None:
        raise BadUpload(f"unsupported file type {suffix or '(none)'}: send txt, md, pdf, docx, hwp, hwpx, html, or a png/jpg picture of text",
                        code="unsupported_type", status=415)
    return by_name


def decode_text(data: bytes, name: str) -> str:
    if b"\x00" in data:
        raise BadUpload(f"{name} is not a text file (it contains binary data)", code="not_text", status=415)
    for encoding in ("utf-8-sig", "cp949"):  # cp949 is a superset of EUC-KR
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise BadUpload(f"{name} is neither UTF-8 nor CP949/EUC-KR text", code="unknown_encoding", status=415)
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > max(8, len(text) // 100):
        raise BadUpload(f"{name} is not a text file (too many control characters)", code="not_text", status=415)
    return text


class _HtmlText(HTMLParser):
    SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n" if tag.startswith("h") or tag == "p" else "\n")
        if tag in ("h1", "h2", "h3") and not self._skipping:
            self.parts.append("#" * int(tag[1]) + " ")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def _pdf(data: bytes, name: str) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise BadUpload(f"{name} is encrypted; upload an unprotected copy", code="encrypted_pdf")
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            reason = text_layer_problem(text)
            sections.append(Section("" if reason else text, number, needs_ocr=reason))  # garbage is never kept
        return sections
    except BadUpload:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise BadUpload(f"{name} is not a readable PDF ({exc})", code="corrupt_file") from exc


def _docx(data: bytes, name: str) -> list[Section]:
    open_zip(data, name, f"{name} is not a readable .docx")
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises many kinds for broken packages
        raise BadUpload(f"{name} is not a readable .docx ({exc})", code="corrupt_file") from exc
    lines = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name or "").lower() if paragraph.style is not None else ""
        prefix = "## " if style.startswith("heading") or style == "title" else ""
        lines.append(prefix + paragraph.text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    return [Section("\n\n".join(lines))]


def parse(data: bytes, name: str, max_image_pixels: int = 60_000_000, kind: str | None = None) -> list[Section]:
    """Text sections of a document (one per PDF page, one otherwise); those that need OCR are
    empty, with the reason."""
    if not data:
        raise BadUpload(f"{name} is empty", code="empty_file")
    kind = kind or kind_of(name, data)  # the library knows it already: the content is sniffed once
    if kind in ("txt", "md"):
        sections = [Section(decode_text(data, name))]
    elif kind == "html":
        parser = _HtmlText()
        parser.feed(decode_text(data, name))
        sections = [Section("".join(parser.parts))]
    elif kind == "pdf":
        sections = _pdf(data, name)
    elif kind == "hwpx":
        sections = [Section(hwpx_text(data, name))]
    elif kind == "hwp":
        sections = [Section(hwp5_text(data, name))]
    elif kind == "image":
        picture_of(data, name, max_image_pixels)  # a real picture, or the caller's 413/415 now
        sections = [Section("", needs_ocr="picture")]
    else:
        sections = _docx(data, name)
    sections = [Section(re.sub(r"[ \t\u00a0]+", " ", s.text).strip(), s.page, s.needs_ocr) for s in sections]
    if not any(s.text or s.needs_ocr for s in sections):
        raise BadUpload(f"{name} contains no text", code="no_text")
    return sections
