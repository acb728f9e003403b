"""Images: sent with a message (validated, normalised, stored under data/uploads) or generated
(stored under data/images with their parameters in PNG text chunks). One id space for both.

Nothing reaches a model before it passed here: a data URL of at most `max_image_bytes`, a
real png / jpeg / webp / gif (first frame) / bmp by its bytes (not its name or MIME type),
at most `max_image_pixels` (refused from the header, before decoding: no decompression
bombs), fully decodable (no truncated files). EXIF orientation is applied, the image is
downscaled to `max_image_side`, flattened to RGB and stored as PNG under a generated name.
"""
from __future__ import annotations

import base64
import binascii
import io
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import AppError, BadImage, NotFound
from settings import VisionModel

if TYPE_CHECKING:
    from PIL import Image

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "GIF", "BMP"}
DATA_URL = re.compile(r"^data:(image/[a-zA-Z0-9.+-]+)?(;[a-zA-Z0-9=.+-]+)*;base64,(?P<payload>.*)$", re.DOTALL)
IMAGE_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class StoredImage:
    id: str
    width: int
    height: int
    source_format: str
    source_bytes: int


def encode_png(image, text_chunks: dict[str, str]) -> bytes:
    """A picture as PNG bytes with `text_chunks` (its parameters) inside."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in text_chunks.items():
        info.add_itxt(key, value)  # iTXt: UTF-8, so Korean prompts survive
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


class ImageStore:
    def __init__(self, folder: Path, limits: VisionModel, generated_folder: Path | None = None) -> None:
        self.folder = folder
        self.generated_folder = generated_folder or folder
        self.limits = limits

    # ---- validation -------------------------------------------------------------------
    def decode_data_url(self, data_url: str, index: int = 0) -> bytes:
        label = f"image {index + 1}"
        if not isinstance(data_url, str):
            raise BadImage(f"{label}: send images as data URLs (data:image/png;base64,...)")
        approx = len(data_url) * 3 // 4
        if approx > self.limits.max_image_bytes * 1.01 + 1024:
            raise BadImage(f"{label} is too large: about {approx} bytes, at most {self.limits.max_image_bytes}",
                           code="image_too_large", status=413)
        match = DATA_URL.match(data_url)
        if match is None:
            raise BadImage(f"{label}: not a base64 data URL of an image (data:image/png;base64,...)")
        try:
            data = base64.b64decode("".join(match["payload"].split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadImage(f"{label}: the base64 data is damaged ({exc})") from exc
        if not data:
            raise BadImage(f"{label} is empty")
        if len(data) > self.limits.max_image_bytes:
            raise BadImage(f"{label} is too large: {len(data)} bytes, at most {self.limits.max_image_bytes}",
                           code="image_too_large", status=413)
        return data

    def normalise(self, data: bytes, index: int = 0) -> tuple[Image.Image, str | None]:
        """Check the bytes are a whole, allowed, not-too-large image.

        Returns (the image upright, RGB and downscaled; the format it came in)."""
        from PIL import Image, ImageOps, UnidentifiedImageError

        label = f"image {index + 1}"
        Image.MAX_IMAGE_PIXELS = None  # our own pixel limit below is checked before decoding
        try:
            image: Image.Image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError as exc:
            raise BadImage(f"{label} is not an image (png, jpeg, webp, gif or bmp)", code="unsupported_image",
                           status=415) from exc
        if image.format not in ALLOWED_FORMATS:
            raise BadImage(f"{label} is {image.format}; send png, jpeg, webp, gif or bmp", code="unsupported_image",
                           status=415)
        source_format = image.format
        width, height = image.size
        if width * height > self.limits.max_image_pixels:
            raise BadImage(f"{label} has {width}x{height} pixels, at most {self.limits.max_image_pixels} in all",
                           code="image_too_large", status=413)
        try:
            image.seek(0)  # a GIF's first frame
            image.load()
            image = ImageOps.exif_transpose(image)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise BadImage(f"{label} is damaged or truncated ({exc})") from exc
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            flat = Image.new("RGB", image.size, (255, 255, 255))  # transparency onto white, not black
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        else:
            image = image.convert("RGB")
        image.thumbnail((self.limits.max_image_side, self.limits.max_image_side), Image.Resampling.LANCZOS)
        return image, source_format

    # ---- storage ----------------------------------------------------------------------
    def save_all(self, data_urls: list[str]) -> list[StoredImage]:
        """Validate every image first, then store them: one bad image stores none."""
        checked = []
        for index, data_url in enumerate(data_urls):
            data = self.decode_data_url(data_url, index)
            checked.append((*self.normalise(data, index), len(data)))
        return [self._store(image, source_format, size) for image, source_format, size in checked]

    def _store(self, image: Image.Image, source_format: str | None, source_bytes: int) -> StoredImage:
        source_format = source_format or "unknown"
        image_id = uuid.uuid4().hex
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".{image_id}.part"
        image.save(temporary, "PNG", compress_level=1)  # lossless either way; level 6 took ~4x longer
        os.replace(temporary, self.path(image_id))  # never a half-written file under the real name
        return StoredImage(image_id, image.width, image.height, source_format, source_bytes)

    def save_generated(self, image, text_chunks: dict[str, str]) -> tuple[StoredImage, bytes]:
        """Store a generated picture as PNG with `text_chunks` (its parameters) inside; returns
        the record and the PNG bytes (sent to the page as they are)."""
        png = encode_png(image, text_chunks)
        image_id = uuid.uuid4().hex
        self.generated_folder.mkdir(parents=True, exist_ok=True)
        temporary = self.generated_folder / f".{image_id}.part"
        temporary.write_bytes(png)
        os.replace(temporary, self.generated_folder / f"{image_id}.png")
        return StoredImage(image_id, image.width, image.height, "generated", len(png)), png

    # ---- pictures from an archive (conversations/bundle.py) --------------------------------
    def reencode_png(self, data: bytes, name: str) -> tuple[bytes, int, int]:
        """An archived picture, untrusted: it must decode whole as a PNG within the pixel cap.
        Re-encoded losslessly (same mode, same pixels, its text chunks kept), so nothing but
        the picture passes. Returns (png, width, height)."""
        from PIL import Image, UnidentifiedImageError
        from PIL.PngImagePlugin import PngInfo

        Image.MAX_IMAGE_PIXELS = None  # our own pixel limit below is checked before decoding
        try:
            image = Image.open(io.BytesIO(data))
            if image.format != "PNG":
                raise BadImage(f"{name} is {image.format}, not a PNG", code="unsupported_image", status=415)
            if image.width * image.height > self.limits.max_image_pixels * 4:
                raise BadImage(f"{name} has {image.width}x{image.height} pixels: too many", code="image_too_large",
                               status=413)
            image.load()
        except UnidentifiedImageError as exc:
            raise BadImage(f"{name} is not a picture", code="unsupported_image", status=415) from exc
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise BadImage(f"{name} is damaged or truncated ({exc})") from exc
        info = PngInfo()
        for key, value in image.info.items():
            if isinstance(key, str) and isinstance(value, str):
                info.add_itxt(key, value)
        buffer = io.BytesIO()
        image.save(buffer, "PNG", pnginfo=info, compress_level=4)
        return buffer.getvalue(), image.width, image.height

    def write_png(self, image_id: str, png: bytes, generated: bool) -> None:
        """Keep a re-encoded picture under its id (never over an existing one)."""
        folder = self.generated_folder if generated else self.folder
        if not IMAGE_ID.match(image_id) or self.path(image_id).exists():
            raise AppError(f"picture {image_id[:40]} is already here", code="import_conflict", status=409)
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{image_id}.part"
        temporary.write_bytes(png)
        os.replace(temporary, folder / f"{image_id}.png")

    def path(self, image_id: str) -> Path:
        if not IMAGE_ID.match(image_id or ""):
            raise NotFound("image not found", code="image_not_found")
        generated = self.generated_folder / f"{image_id}.png"
        return generated if generated.is_file() else self.folder / f"{image_id}.png"

    def read(self, image_id: str) -> bytes:
        path = self.path(image_id)
        if not path.is_file():
            raise NotFound("image not found", code="image_not_found")
        return path.read_bytes()

    def delete(self, image_ids: list[str]) -> None:
        for image_id in image_ids:
            if IMAGE_ID.match(image_id or ""):
                for folder in {self.folder, self.generated_folder}:
                    (folder / f"{image_id}.png").unlink(missing_ok=True)
