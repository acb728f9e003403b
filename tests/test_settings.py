"""Settings: defaults, env and .env overrides, validation."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from settings import Settings, embedded_chat_model_path, gpu_offload_available


def test_defaults_point_at_the_embedded_model_and_loopback():
    s = Settings(_env_file=None)
    assert s.server.host == "127.0.0.1" and s.server.port == 8000
    assert s.chat.model_path == embedded_chat_model_path()
    assert s.chat.model_path is not None and s.chat.model_path.is_file()
    assert s.chat.n_gpu_layers == (-1 if gpu_offload_available() else 0)
    assert s.chat.n_threads >= 1
    assert s.vision.model_path is None and s.image.model_path is None


def test_nested_env_vars_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("AIONE_CHAT__N_CTX", "1234")
    monkeypatch.setenv("AIONE_CHAT__MODEL_PATH", str(tmp_path / "exaone.gguf"))
    monkeypatch.setenv("AIONE_SERVER__PORT", "9001")
    s = Settings(_env_file=None)
    assert s.chat.n_ctx == 1234 and s.chat.model_path == tmp_path / "exaone.gguf" and s.server.port == 9001


def test_dotenv_file_is_read(tmp_path: Path):
    env = tmp_path / ".env"
    env.write_text("AIONE_CHAT__TEMPERATURE=0.2\nAIONE_VISION__MAX_IMAGE_SIDE=768\n", encoding="utf-8")
    s = Settings(_env_file=env)
    assert s.chat.temperature == 0.2 and s.vision.max_image_side == 768


@pytest.mark.parametrize("name,value", [("AIONE_CHAT__N_CTX", "10"), ("AIONE_CHAT__TOP_P", "0"),
                                        ("AIONE_SERVER__PORT", "70000"), ("AIONE_CHAT__N_CTX", "lots")])
def test_bad_values_are_refused_with_the_field_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None)
    assert name.split("__")[1].lower() in str(info.value)


def test_every_field_is_described():
    def walk(model_cls):
        for name, field in model_cls.model_fields.items():
            assert field.description, f"{model_cls.__name__}.{name} has no description"
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation)

    walk(Settings)


@pytest.mark.parametrize("name", ["vision", "chat", "image", "Bad Name", "x" * 41, ""])
def test_extra_chat_models_cannot_take_an_engine_name(monkeypatch: pytest.MonkeyPatch, name: str):
    monkeypatch.setenv("AIONE_EXTRA_CHAT_MODELS", f'{{"{name}": {{"n_ctx": 512}}}}')
    with pytest.raises(ValidationError, match="extra chat model name"):
        Settings(_env_file=None)


def test_an_extra_chat_model_is_read_from_json(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AIONE_EXTRA_CHAT_MODELS", '{"coder": {"n_ctx": 512}}')
    assert Settings(_env_file=None).extra_chat_models["coder"].n_ctx == 512


def test_every_setting_a_message_names_exists():
    """Messages name settings through settings.env_name (never by hand): each call in the code
    names a real section and field, and the derived name is the one pydantic-settings reads."""
    import ast

    from settings import env_name
    from tests.test_architecture import project_modules

    calls = []
    for path in project_modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "env_name":
                calls.append(tuple(arg.value for arg in node.args))
    assert len(calls) > 40
    for args in calls:
        env_name(*args)  # KeyError for a setting that does not exist
    assert env_name("chat", "model_path") == "AIONE_CHAT__MODEL_PATH"
    with pytest.raises(KeyError):
        env_name("chat", "model_file")
    import os
    os.environ["AIONE_ANALYSIS__BATCH_SIZE"] = "7"
    try:
        assert Settings(_env_file=None).analysis.batch_size == 7
    finally:
        del os.environ["AIONE_ANALYSIS__BATCH_SIZE"]


def test_a_renamed_variable_is_named_with_its_new_name(tmp_path):
    from settings import renamed_variables

    env_file = tmp_path / ".env"
    env_file.write_text("# old\nAIONE_EMOTION__ENABLED=false\n", encoding="utf-8")
    assert renamed_variables({"AIONE_EMOTION__SHOW_BADGES": "0"}, env_file) == [
        "AIONE_EMOTION__ENABLED is now AIONE_ANALYSIS__ENABLED", "AIONE_EMOTION__SHOW_BADGES is now AIONE_ANALYSIS__SHOW_BADGES"]
