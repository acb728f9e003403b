"""What /health reports for each model role."""
from __future__ import annotations

from pathlib import Path

from catalog.health import model_health
from settings import ImageModel, Settings, VisionModel


def test_defaults_chat_present_vision_and_image_off():
    report = model_health(Settings(_env_file=None))
    assert report["chat"]["present"] is True and report["chat"]["message"] == "ok"
    for role, setting in (("vision", "AIONE_VISION__MODEL_PATH"), ("image", "AIONE_IMAGE__MODEL_PATH")):
        assert report[role]["configured"] is False and report[role]["present"] is False
        assert setting in report[role]["message"]


def test_vision_needs_its_projector_too(tmp_path: Path):
    model = tmp_path / "vlm.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 16)
    report = model_health(Settings(_env_file=None, vision=VisionModel(model_path=model)))
    assert report["vision"]["configured"] is True and report["vision"]["present"] is False
    assert "AIONE_VISION__MMPROJ_PATH" in report["vision"]["mmproj"]["message"]
    mmproj = tmp_path / "mmproj.gguf"
    mmproj.write_bytes(b"GGUF" + b"\0" * 16)
    report = model_health(Settings(_env_file=None, vision=VisionModel(model_path=model, mmproj_path=mmproj)))
    assert report["vision"]["present"] is True


def test_missing_image_model_names_its_setting(tmp_path: Path):
    report = model_health(Settings(_env_file=None, image=ImageModel(model_path=tmp_path / "sd.gguf")))
    assert report["image"]["present"] is False and "not found" in report["image"]["message"]
