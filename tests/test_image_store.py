"""Image validation by content: formats, limits, bombs, damage, orientation, downscaling."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from core.errors import NotFound
from settings import VisionModel
from store.image_files import BadImage, ImageStore
from tests.tiny_models import png_data_url


@pytest.fixture
def images(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "uploads", VisionModel(max_image_side=256, max_image_bytes=300_000,
                                                        max_image_pixels=4_000_000))


def data_url(raw: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP"])
def test_each_allowed_format_is_stored_as_png(images: ImageStore, fmt: str):
    stored = images.save_all([png_data_url(100, 50, fmt=fmt)])[0]
    assert stored.source_format == fmt and (stored.width, stored.height) == (100, 50)
    with Image.open(images.path(stored.id)) as saved:
        assert saved.format == "PNG" and saved.mode == "RGB"
    assert images.read(stored.id)[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_name_or_mime_type_does_not_matter_the_bytes_do(images: ImageStore):
    jpeg_called_png = png_data_url(40, 40, fmt="JPEG").replace("image/jpeg", "image/png")
    assert images.save_all([jpeg_called_png])[0].source_format == "JPEG"


def test_large_images_are_downscaled_and_exif_orientation_applied(images: ImageStore):
    assert (s := images.save_all([png_data_url(1024, 512)])[0]).width == 256 and s.height == 128
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100), (0, 128, 0)).save(buffer, "JPEG", exif=exif.tobytes())
    rotated = images.save_all([data_url(buffer.getvalue(), "image/jpeg")])[0]
    assert (rotated.width, rotated.height) == (100, 200)


def test_transparency_is_flattened_onto_white(images: ImageStore):
    buffer = io.BytesIO()
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(buffer, "PNG")
    stored = images.save_all([data_url(buffer.getvalue())])[0]
    with Image.open(images.path(stored.id)) as saved:
        assert saved.getpixel((5, 5)) == (255, 255, 255)


def bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, "PNG")  # 100 MP (the default limit is 50) in ~15 kB
    return buffer.getvalue()


@pytest.mark.parametrize("name,payload,status,code", [
    ("not a data URL", "http://example.com/cat.png", 400, "invalid_image"),
    ("bad base64", "data:image/png;base64,@@@@", 400, "invalid_image"),
    ("empty", "data:image/png;base64,", 400, "invalid_image"),
    ("text", data_url(b"just some text, not a picture"), 415, "unsupported_image"),
    ("tiff", None, 415, "unsupported_image"),
    ("truncated", None, 400, "invalid_image"),
    ("bomb", data_url(bomb_png()), 413, "image_too_large"),
    ("too many bytes", data_url(b"\x89PNG" + b"\0" * 400_000), 413, "image_too_large"),
])
def test_bad_images_are_refused_with_clear_errors(images: ImageStore, name, payload, status, code):
    if name == "tiff":
        buffer = io.BytesIO()
        Image.new("RGB", (10, 10)).save(buffer, "TIFF")
        payload = data_url(buffer.getvalue(), "image/tiff")
    if name == "truncated":  # a valid header, then half the pixel data missing
        noisy = io.BytesIO()
        Image.effect_noise((300, 300), 60).convert("RGB").save(noisy, "PNG")
        payload = data_url(noisy.getvalue()[: len(noisy.getvalue()) // 2])
    with pytest.raises(BadImage) as info:
        images.save_all([payload])[0]
    assert info.value.status == status and info.value.code == code and "image 1" in info.value.message
    assert not any(images.folder.glob("*.png")) if images.folder.exists() else True  # nothing stored


def test_reading_needs_a_well_formed_known_id(images: ImageStore):
    for bad in ("../../etc/passwd", "x" * 32, ""):
        with pytest.raises(NotFound):
            images.read(bad)
    with pytest.raises(NotFound):
        images.read("0" * 32)
