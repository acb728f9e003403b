"""What /health reports: is each configured model file there, and which setting fixes it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import ModelMissing
from models.gguf import check_gguf_file
from settings import Settings, env_name


def _gguf_status(path: Path | None, setting: str, role: str, required: bool) -> dict[str, Any]:
    status = {"path": str(path) if path else None, "setting": setting, "configured": path is not None}
    if path is None and not required:
        return status | {"present": False, "message": f"{role} is off: set {setting} to enable it"}
    try:
        check_gguf_file(path, setting, role)
    except ModelMissing as exc:
        return status | {"present": False, "message": exc.message}
    return status | {"present": True, "message": "ok"}


def _remote_status(url: str, setting: str) -> dict[str, Any]:
    """A role another machine serves: reachable or not is known at its first request."""
    return {"remote": url, "present": True, "setting": setting, "message": "served by another machine"}


def _image_status(settings: Settings) -> dict[str, Any]:
    from image_engine import ImageEngine

    cfg = settings.image
    if cfg.base_url:
        return _remote_status(cfg.base_url, env_name('image', 'base_url'))
    main = cfg.model_path or cfg.diffusion_model_path
    setting = env_name('image', 'model_path') if cfg.diffusion_model_path is None else env_name('image', 'diffusion_model_path')
    status = {"path": str(main) if main else None, "setting": setting, "configured": main is not None}
    try:
        ImageEngine(cfg).check_files()  # every configured part, by its content
    except ModelMissing as exc:
        return status | {"present": False, "message": exc.message}
    return status | {"present": True, "message": "ok"}


def model_health(settings: Settings) -> dict[str, Any]:
    vision = _gguf_status(settings.vision.model_path, env_name('vision', 'model_path'), "vision", required=False)
    if settings.vision.base_url:
        vision = _remote_status(settings.vision.base_url, env_name('vision', 'base_url'))
    elif settings.vision.model_path is not None:
        mmproj = _gguf_status(settings.vision.mmproj_path, env_name('vision', 'mmproj_path'), "vision projector", True)
        vision["mmproj"] = mmproj
        vision["present"] = vision["present"] and mmproj["present"]
    image = _image_status(settings)
    return {
        "chat": (_remote_status(settings.chat.base_url, env_name('chat', 'base_url')) if settings.chat.base_url else
                 _gguf_status(settings.chat.model_path, env_name('chat', 'model_path'), "chat", required=True)),
        "vision": vision,
        "image": image,
    }
