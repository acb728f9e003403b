"""Checks of what an upload holds before anything is stored: whether a PDF page's text layer
is text, and whether a picture of text is a real, reasonably sized picture.

A page needs OCR when its text layer is empty or is not text: Korean PDFs with CID fonts and no
ToUnicode map extract as control characters or `(cid:NN)`, some as private-use characters.
Such a layer is dropped, never stored.
"""
from __future__ import annotations

import io
import re
import unicodedata
import warnings

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
