"""The model library on real files: copies of the embedded SmolLM2 at depths 0-3 under odd names,
a real split GGUF, a generated projector paired by width (and one that fits nothing), a
truncated GGUF, a text file named .gguf, the generated SD checkpoint; then choosing models
through the API makes the next answer come from them, with their own settings."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from catalog.scan import ModelCatalog
from chat import create_app
from settings import embedded_chat_model_path
from tests.conftest import make_settings, read_frames, serve
from tests.tiny_models import split_gguf

ODD = ["top level.gguf", "가/나 모델 (사본).gguf", "a/b/c/deep-Q4_1.gguf", "x/y/z/w/too-deep-4.gguf"]


def link(source: Path, target: Path) -> Path:
    """A second name for the file (a hard link: another path, no second 100 MB); a copy where links fail."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, tiny_mmproj, mismatched_mmproj, tiny_sd) -> Path:
    folder = tmp_path_factory.mktemp("models")
    smol = embedded_chat_model_path()
    for name in ODD:
        link(smol, folder / name)
    link(smol, folder / "vision" / "smol-vl-Q4_1.gguf")
    link(tiny_mmproj, folder / "vision" / "mmproj-smol-vl-f16.gguf")
    link(mismatched_mmproj, folder / "vision" / "mmproj-other-512.gguf")
    split_gguf(smol, folder / "split", "smol-split", 3)
    parts = split_gguf(smol, folder / "split-missing", "smol-gone", 3)
    parts[1].unlink()
    (folder / "broken").mkdir()
    (folder / "broken" / "truncated.gguf").write_bytes(smol.read_bytes()[:40_000_000])
    (folder / "broken" / "notes.gguf").write_text("these are my notes, not a model", encoding="utf-8")
    link(tiny_sd, folder / "image" / "sdxs.safetensors")
    return folder


def by_name(models) -> dict:
    return {m.name if hasattr(m, "name") else m["name"]: m for m in models}


def test_the_scan_finds_every_kind_at_any_depth_and_never_fails_on_a_file(model_folder: Path, tmp_path: Path):
    models = by_name(ModelCatalog([model_folder], tmp_path / "cache.json").scan())
    for name in ("top level", "나 모델 (사본)", "deep-Q4_1", "too-deep-4"):
        assert models[name].roles == ["chat"] and models[name].status == "ok", name
    assert models["deep-Q4_1"].facts["quantization"] == "Q4_1" and models["deep-Q4_1"].facts["context_length"] == 8192
    vision = models["smol-vl-Q4_1"]
    assert vision.roles == ["chat", "vision"] and vision.projector.name == "mmproj-smol-vl-f16.gguf"
    assert models["mmproj-other-512"].roles == ["projector"]  # fits no model: never a chat model
    assert "mmproj-smol-vl-f16" not in models  # the paired one is part of its model
    split = models["smol-split"]
    assert split.status == "ok" and len(split.files) == 3 and split.facts["parameters"] == models["top level"].facts["parameters"]
    assert models["smol-gone"].status == "broken" and "part 2 of 3 missing" in models["smol-gone"].reason
    assert "truncated" in models["truncated.gguf"].reason and models["truncated.gguf"].status == "broken"
    assert "not a GGUF" in models["notes.gguf"].reason
    assert models["sdxs"].roles == ["image"]
    assert not [m for m in models.values() if "smol-split-0000" in m.name]  # the parts are one model


def test_a_rescan_reads_only_what_changed(model_folder: Path, tmp_path: Path, monkeypatch):
    from catalog import scan

    cache = tmp_path / "cache.json"
    ModelCatalog([model_folder], cache).scan()
    read = []
    real = scan.describe_file
    monkeypatch.setattr(scan, "describe_file", lambda path: read.append(path.name) or real(path))
    ModelCatalog([model_folder], cache).scan()
    assert read == []  # path + size + mtime unchanged: no header read
    notes = model_folder / "broken" / "notes.gguf"
    os.utime(notes, (time.time() + 5, time.time() + 5))
    ModelCatalog([model_folder], cache).scan()
    assert read == ["notes.gguf"]


def answer(url: str, message: str, model: str = "chat") -> dict:
    with httpx.stream("POST", url + "/chat_stream_sse_fetch", json={"message": message, "model": model}, timeout=120) as r:
        assert r.status_code == 200, r.read()
        return next(f for f in read_frames(r) if isinstance(f, dict) and f.get("type") == "done")


def scanned(url: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        listing = httpx.get(url + "/api/models").json()
        if listing["scan"]["scanned"] and not listing["scan"]["scanning"]:
            return listing
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.fixture
def library_settings(isolated_data, model_folder):
    settings = make_settings(isolated_data, max_tokens=6)
    settings.models.dirs = [model_folder]
    return settings


def test_choosing_a_model_makes_the_next_answer_come_from_it_with_its_own_settings(library_settings):
    with serve(create_app(library_settings)) as url:
        models = by_name(scanned(url)["models"])
        deep = models["deep-Q4_1"]
        assert answer(url, "hello")["model"] == embedded_chat_model_path().name  # the configured default first
        chosen = httpx.put(url + "/api/models/active", json={"role": "chat", "model_id": deep["id"]})
        assert chosen.status_code == 200 and chosen.json()["active"]["chat"] == deep["id"]
        changed = httpx.put(f"{url}/api/models/{deep['id']}/settings", json={"n_ctx": 512, "temperature": 0.5})
        assert changed.status_code == 200 and changed.json()["applied"] == {"n_ctx": "now", "temperature": "now"}
        assert answer(url, "hello again")["model"] == "deep-Q4_1.gguf"
        slot = httpx.get(url + "/api/slot").json()
        assert slot["resident"] == f"chat-{deep['id']}"
        assert slot["routes"]["chat"] == f"chat -> chat-{deep['id']}: chosen for the chat role in the model library"
        detail = httpx.get(f"{url}/api/models/{deep['id']}").json()
        assert detail["loaded_context"] == 512 and detail["active_for"] == ["chat"]  # read back from llama.cpp
        later = httpx.put(f"{url}/api/models/{deep['id']}/settings", json={"n_ctx": 1024})
        assert later.json()["applied"] == {"n_ctx": "next_load"}  # loaded: the context changes at the next load
        assert httpx.get(f"{url}/api/models/{deep['id']}").json()["loaded_context"] == 512
        back = httpx.put(f"{url}/api/models/{deep['id']}/settings", json={"temperature": None}).json()["model"]
        assert back["changed"] == ["n_ctx"] and back["settings"]["temperature"] == library_settings.chat.temperature
        split = models["smol-split"]  # a split model, through /v1 by its id: loaded through the slot
        reply = httpx.post(url + "/v1/chat/completions", timeout=120,
                           json={"model": split["id"], "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert reply.status_code == 200, reply.text
        assert httpx.get(url + "/api/slot").json()["resident"] == f"chat-{split['id']}"
        assert split["id"] in [m["id"] for m in httpx.get(url + "/v1/models").json()["data"]]
    with serve(create_app(library_settings)) as url:  # a restart keeps the choice and the settings
        listing = scanned(url)
        assert listing["active"]["chat"] == deep["id"]
        assert answer(url, "after the restart")["model"] == "deep-Q4_1.gguf"
        assert httpx.get(f"{url}/api/models/{deep['id']}").json()["loaded_context"] == 1024


def test_bad_choices_and_settings_are_clear_4xx_and_change_nothing(library_settings):
    with serve(create_app(library_settings)) as url:
        models = by_name(scanned(url)["models"])
        chat_id, broken_id = models["top level"]["id"], models["truncated.gguf"]["id"]
        cases = [
            (httpx.put(url + "/api/models/active", json={"role": "chat", "model_id": "0" * 12}), 404, "model_not_found"),
            (httpx.put(url + "/api/models/active", json={"role": "chat", "model_id": broken_id}), 422, "model_unusable"),
            (httpx.put(url + "/api/models/active", json={"role": "image", "model_id": chat_id}), 422, "wrong_role"),
            (httpx.put(url + "/api/models/active", json={"role": "chat",
                                                          "model_id": models["mmproj-other-512"]["id"]}), 422, "model_unusable"),
            (httpx.put(url + "/api/models/active", json={"role": "boss", "model_id": chat_id}), 422, "invalid_request"),
            (httpx.put(f"{url}/api/models/{chat_id}/settings", json={"n_ctx": 10}), 422, "invalid_settings"),
            (httpx.put(f"{url}/api/models/{chat_id}/settings", json={"bogus": 1}), 422, "invalid_settings"),
            (httpx.put(f"{url}/api/models/{chat_id}/settings", json={}), 422, "invalid_settings"),
            (httpx.put(f"{url}/api/models/{'f' * 12}/settings", json={"n_ctx": 1024}), 404, "model_not_found"),
            (httpx.get(f"{url}/api/models/{'f' * 12}"), 404, "model_not_found"),
        ]
        for response, status, code in cases:
            assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
        assert "n_ctx" in cases[5][0].json()["error"]["message"] and "bogus" in cases[6][0].json()["error"]["message"]
        listing = httpx.get(url + "/api/models").json()
        assert listing["active"]["chat"] is None or listing["active"]["chat"] != broken_id
        assert by_name(listing["models"])["top level"]["changed"] == []  # nothing kept from the refusals
        image = httpx.put(url + "/api/models/active", json={"role": "image", "model_id": models["sdxs"]["id"]})
        assert image.status_code == 200  # an image model chosen: the page's image mode turns on with it
        assert httpx.get(url + "/api/config").json()["image"]["model"] == "sdxs.safetensors"
        rescan = httpx.post(url + "/api/models/rescan")
        assert rescan.status_code == 202 and "scanning" in rescan.json()["scan"]


def test_a_vision_model_chosen_in_the_library_answers_image_questions(library_settings):
    from tests.tiny_models import png_data_url

    with serve(create_app(library_settings)) as url:
        models = by_name(scanned(url)["models"])
        assert httpx.get(url + "/api/config").json()["vision"] is False  # none configured
        vision = models["smol-vl-Q4_1"]
        assert httpx.put(url + "/api/models/active", json={"role": "vision", "model_id": vision["id"]}).status_code == 200
        assert httpx.get(url + "/api/config").json()["vision"] is True
        with httpx.stream("POST", url + "/chat_stream_sse_fetch", timeout=120,
                          json={"message": "what is this?", "images": [png_data_url()]}) as r:
            done = next(f for f in read_frames(r) if isinstance(f, dict) and f.get("type") == "done")
        assert done["model"] == "smol-vl-Q4_1.gguf"
        assert httpx.get(url + "/api/slot").json()["resident"] == f"vision-{vision['id']}"


def test_a_persona_answers_with_its_library_model_through_the_slot(library_settings):
    with serve(create_app(library_settings)) as url:
        deep = by_name(scanned(url)["models"])["deep-Q4_1"]
        persona = httpx.post(url + "/api/personas", json={"name": "깊은 도우미", "model": deep["id"]}).json()
        with httpx.stream("POST", url + "/chat_stream_sse_fetch", json={"message": "hello", "persona_id": persona["id"]},
                          timeout=120) as r:
            done = next(f for f in read_frames(r) if isinstance(f, dict) and f.get("type") == "done")
        assert done["model"] == "deep-Q4_1.gguf"  # loaded through the slot like any library model
        assert httpx.get(url + "/api/slot").json()["resident"] == f"chat-{deep['id']}"
        assert answer(url, "hello")["model"] == embedded_chat_model_path().name  # a plain chat: the configured one
        missing = httpx.post(url + "/api/personas", json={"name": "없는 모델", "model": "0" * 12})
        assert missing.status_code == 404 and "model" in missing.json()["error"]["message"]
