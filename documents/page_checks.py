"""Checks of what an upload holds before anything is stored: whether a PDF page's text layer
is text, whether a picture of text is a real, reasonably sized picture, and whether a zip
(docx, hwpx) is a zip that does not explode.

A page needs OCR when its text layer is empty or is not text: Korean PDFs with CID fonts and no
ToUnicode map extract as control characters or `(cid:NN)`, some as private-use characters.
Such a layer is dropped, never stored.
"""
from __future__ import annotations

import io
import re
import unicodedata
import warnings
import zipfile

from PIL import Image

from core.errors import BadUpload

CID = re.compile(r"\(cid:\d+\)")
NOT_TEXT = {"Cc", "Co", "Cs", "Cn"}  # control, private use, surrogate, unassigned


def text_layer_problem(text: str) -> str | None:
    """Why a page's text layer cannot be used ("no_text_layer", "garbled"), or None."""
    visible = [ch for ch in CID.sub("\0", text) if not ch.isspace()]
    if not visible:
        return "no_text_layer"
    bad = sum(1 for ch in visible if unicodedata.category(ch) in NOT_TEXT or ch == "\ufffd")
    letters = sum(1 for ch in visible if ch.isalnum())
    if bad > 0.1 * len(visible) or letters < 0.4 * len(visible):
        return "garbled"
    return None


def picture_of(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """An uploaded picture of text, checked: a real picture, not a decompression bomb."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > max_pixels:
                raise BadUpload(f"{name} is {image.width}x{image.height} pixels: at most {max_pixels} pixels are "
                                "read", code="image_too_large", status=413)
            image.load()
        except BadUpload:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise BadUpload(f"{name} is not a readable picture ({exc})", code="not_an_image", status=415) from exc
    return image


MAX_UNPACKED = 200 * 1024 * 1024  # a docx or hwpx expanding beyond this is a zip bomb
MAX_RATIO = 200


def open_zip(data: bytes, name: str, broken: str) -> zipfile.ZipFile:
    """The upload as a zip, refused (`broken`, with the reason) when it is not one, or 413 when
    its entries would expand past MAX_UNPACKED or MAX_RATIO times its size."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise BadUpload(f"{broken} ({exc})", code="corrupt_file") from exc
    if total > MAX_UNPACKED or total > MAX_RATIO * max(1, len(data)):
        raise BadUpload(f"{name} expands to {total} bytes: refused as a zip bomb", code="zip_bomb", status=413)
    return archive
