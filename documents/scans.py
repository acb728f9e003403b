"""Reading the pages that need OCR (documents/page_checks.py says which), one at a time with
progress: PDF pages rendered with PDFium (pypdfium2, Apache-2.0/BSD) at the configured DPI, so
memory stays one page; uploaded pictures as they are.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from PIL import Image

from documents.ocr import TesseractOcr
from documents.page_checks import picture_of
from documents.parsing import Section

log = logging.getLogger(__name__)
def pdf_page_picture(data: bytes, page: int, dpi: int) -> Image.Image:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        return document[page - 1].render(scale=dpi / 72, grayscale=True).to_pil()
    finally:
        document.close()


def read_scans(data: bytes, kind: str, name: str, sections: list[Section], ocr: TesseractOcr, dpi: int,
               max_pixels: int, progress: Callable[[int, int], None] | None = None) -> tuple[list[Section], list[str]]:
    """The sections with OCR text where they needed it (marked by_ocr), and a note per page
    that could not be read. Runs in a worker thread, one page at a time."""
    pending = [index for index, section in enumerate(sections) if section.needs_ocr]
    out, problems = list(sections), []
    for done, index in enumerate(pending):
        section = sections[index]
        where = f"p. {section.page}" if section.page else name
        try:
            picture = (picture_of(data, name, max_pixels) if kind == "image"
                       else pdf_page_picture(data, section.page or 1, dpi))
            text = ocr.read(picture, dpi if kind == "pdf" else None).text
        except Exception as exc:  # one unreadable page never fails the others
            log.warning("OCR of %s %s failed: %s", name, where, exc)
            problems.append(f"{where}: {exc}")
            text = ""
        out[index] = replace(section, text=text, needs_ocr=None, by_ocr=bool(text.strip()))
        if progress:
            progress(done + 1, len(pending))
    return out, problems
