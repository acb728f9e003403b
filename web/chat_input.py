"""What the page's chat and /v1/chat/completions share about a chat request: how big its
body may be (images travel inside it) and which lease a message with images takes."""
from __future__ import annotations

from core.contracts import ChatEngine, SlotLease
from core.errors import AppError
from settings import Settings, env_name
from store.image_files import ImageStore
from vram_guard import ModelSlot, Priority
from web.json_body import MAX_JSON_BYTES


def data_url_room(image_bytes: int) -> int:
    """What one picture of `image_bytes` takes in a JSON body: base64 (4/3) and its data-URL head."""
    return image_bytes * 4 // 3 + 1024


def one_picture_body(images: ImageStore) -> int:
    """A JSON body with one picture (the image route's input picture), by the limit the picture
    store checks every upload against."""
    return MAX_JSON_BYTES + data_url_room(images.limits.max_image_bytes)


def max_chat_body(settings: Settings) -> int:
    vision = settings.vision
    return MAX_JSON_BYTES + vision.max_images * data_url_room(vision.max_image_bytes)


def vision_lease(slot: ModelSlot, settings: Settings, image_count: int) -> SlotLease[ChatEngine]:
    """The lease for a message with `image_count` images (the page's and /v1's): the vision
    model (a chat engine whose contract accepts images)."""
    limit = settings.vision.max_images
    if image_count > limit:
        raise AppError(f"too many images: {image_count}, at most {limit} per message", code="too_many_images",
                       status=422)
    if "vision" not in slot.registry.names:
        raise AppError(f"image understanding is off: choose a vision model in 모델 (/models), or set "
                       f"{env_name('vision', 'model_path')} and {env_name('vision', 'mmproj_path')} "
                       f"(or {env_name('vision', 'base_url')})", code="vision_not_configured", status=503)
    return slot.lease("vision", Priority.VISION, ChatEngine, images=True)
