"""POST /api/images/generate over a real server with a fake generator (frames, storage, gallery,
seeds, img2img records, validation, disconnects), and once end to end with the real library on
the tiny SDXS checkpoint: chat -> image -> chat through the slot."""
from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from chat import create_app
from tests.conftest import (
    fake_image_app,
    image_settings,
    make_settings,
    read_frames,
    serve,
)
from tests.tiny_models import png_data_url


@pytest.fixture
def image_server(isolated_data: Path, tiny_sd: Path):
    with serve(create_app(image_settings(isolated_data, tiny_sd))) as url:
        yield url


@pytest.fixture
def fake_image_server(isolated_data: Path, tmp_path: Path):
    """The real routes, slot and stores, with a fake generator (0.05 s per step)."""
    with serve(fake_image_app(isolated_data, tmp_path)) as url:
        yield url


def generate(url: str, body: dict, timeout: float = 120) -> tuple[int, list]:
    with httpx.stream("POST", f"{url}/api/images/generate", json=body, timeout=timeout) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, [response.json()]
        return 200, read_frames(response)


def of_type(frames: list, kind: str) -> list[dict]:
    return [f for f in frames if isinstance(f, dict) and f.get("type") == kind]


def test_generate_streams_steps_then_pictures_and_saves_them(fake_image_server: str, isolated_data: Path):
    image_server = fake_image_server
    status, frames = generate(image_server, {"prompt": "사과 한 개", "width": 64, "height": 128, "steps": 2,
                                             "seed": 42, "batch_count": 2, "sampler": "euler", "cfg_scale": 1.5})
    assert status == 200
    assert frames[0]["type"] == "session" and frames[-1] == "[DONE]" and frames[-2]["type"] == "done"
    kinds = [f["type"] for f in frames[:-1]]
    assert kinds.index("status") < kinds.index("progress") < kinds.index("image")
    progress = [(f["image"], f["step"], f["steps"]) for f in of_type(frames, "progress")]
    assert progress == [(1, 1, 2), (1, 2, 2), (2, 1, 2), (2, 2, 2)]
    pictures = of_type(frames, "image")
    assert [p["seed"] for p in pictures] == [42, 43]
    done = frames[-2]
    assert done["finish_reason"] == "done" and done["seeds"] == [42, 43]
    assert done["images"] == [p["id"] for p in pictures]

    png = base64.b64decode(pictures[0]["png_base64"])
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (64, 128)
    saved = isolated_data / "images" / f"{pictures[0]['id']}.png"
    assert saved.read_bytes() == png  # the file under data/images is what was streamed
    record = json.loads(image.text["aione"])
    assert record["prompt"] == "사과 한 개" and record["seed"] == 42 and record["steps"] == 2
    assert record["sampler"] == "euler" and record["cfg_scale"] == 1.5 and record["width"] == 64
    assert "Seed: 42" in image.text["parameters"] and "Size: 64x128" in image.text["parameters"]

    session_id = frames[0]["session_id"]
    gallery = httpx.get(f"{image_server}/api/sessions/{session_id}/images").json()["images"]
    assert [g["id"] for g in gallery] == done["images"]
    assert gallery[1]["seed"] == 43 and gallery[1]["params"]["seed"] == 43
    assert gallery[0]["params"]["prompt"] == "사과 한 개" and gallery[0]["width"] == 64
    turns = httpx.get(f"{image_server}/api/sessions/{session_id}/turns").json()["turns"]
    assert [(t["role"], t["kind"]) for t in turns] == [("user", "image"), ("assistant", "image")]
    assert turns[1]["images"] == done["images"] and turns[1]["finish_reason"] == "done"
    assert turns[1]["pictures"][1] == {"id": done["images"][1], "seed": 43, "width": 64, "height": 128}

    download = httpx.get(f"{image_server}{pictures[0]['url']}?download=1")
    assert download.status_code == 200 and download.content == png
    assert download.headers["content-disposition"].startswith("attachment")


def test_random_seed_is_returned_and_reproduces_the_picture(fake_image_server: str):
    image_server = fake_image_server
    _, first = generate(image_server, {"prompt": "a boat", "width": 64, "height": 64, "steps": 1, "seed": -1})
    picture = of_type(first, "image")[0]
    assert 0 <= picture["seed"] < 2**32
    _, again = generate(image_server, {"prompt": "a boat", "width": 64, "height": 64, "steps": 1,
                                       "seed": picture["seed"]})
    pixels = [Image.open(io.BytesIO(base64.b64decode(of_type(f, "image")[0]["png_base64"]))).tobytes()
              for f in (first, again)]
    assert pixels[0] == pixels[1]


def test_img2img_from_a_generated_picture_and_from_an_upload(fake_image_server: str):
    image_server = fake_image_server
    _, frames = generate(image_server, {"prompt": "a house", "width": 64, "height": 64, "steps": 1, "seed": 1})
    session_id = frames[0]["session_id"]
    source = of_type(frames, "image")[0]["id"]
    status, frames = generate(image_server, {"prompt": "a house at night", "width": 64, "height": 64, "steps": 4,
                                             "seed": 2, "init_image_id": source, "strength": 0.5,
                                             "session_id": session_id})
    assert status == 200 and of_type(frames, "done")  # (that img2img runs part of the schedule: test_image_engine)
    record = httpx.get(f"{image_server}/api/sessions/{session_id}/images").json()["images"][-1]
    assert record["params"]["init_image_id"] == source and record["params"]["strength"] == 0.5

    status, frames = generate(image_server, {"prompt": "a cat", "width": 64, "height": 64, "steps": 2, "seed": 3,
                                             "init_image": png_data_url(80, 60), "session_id": session_id})
    assert status == 200
    uploaded = of_type(frames, "images")[0]["ids"][0]
    assert httpx.get(f"{image_server}/api/images/{uploaded}").status_code == 200
    assert Image.open(io.BytesIO(base64.b64decode(of_type(frames, "image")[0]["png_base64"]))).size == (64, 64)


BAD_INPUTS = [
    ({"width": 100}, 422, "invalid_size"),
    ({"height": 320}, 422, "invalid_size"),  # over the test limit of 256
    ({"width": 0}, 422, "invalid_size"),
    ({"steps": 0}, 422, "invalid_steps"),
    ({"steps": 5}, 422, "invalid_steps"),  # over the test maximum of 4
    ({"batch_count": 5}, 422, "invalid_batch"),
    ({"batch_count": 0}, 422, "invalid_batch"),
    ({"sampler": "dpm_fast"}, 422, "unknown_sampler"),
    ({"scheduler": "linear"}, 422, "unknown_scheduler"),
    ({"prompt": "   "}, 422, "empty_prompt"),
    ({"prompt": "x" * 2001}, 422, "prompt_too_long"),
    ({"cfg_scale": -1}, 422, "invalid_cfg"),
    ({"seed": -2}, 422, "invalid_seed"),
    ({"mode": "img2img"}, 422, "missing_init_image"),
    ({"init_image": png_data_url(8, 8), "strength": 0}, 422, "invalid_strength"),
    ({"init_image": "data:image/png;base64,aGVsbG8="}, 415, "unsupported_image"),
    ({"init_image": "not a data url"}, 400, "invalid_image"),
    ({"init_image_id": "0" * 32, "session_id": None}, 404, "image_not_found"),
    ({"sample_steps": 3}, 422, "invalid_request"),  # misspelt option
    ({"steps": "many"}, 422, "invalid_request"),
]


@pytest.mark.parametrize("change,status,code", BAD_INPUTS, ids=[c for _, _, c in BAD_INPUTS])
def test_bad_input_is_refused_before_anything_happens(fake_image_server: str, change: dict, status: int, code: str):
    body = {"prompt": "a tree", "width": 64, "height": 64, "steps": 1} | change
    got, frames = generate(fake_image_server, body)
    assert (got, frames[0]["error"]["code"]) == (status, code), frames[0]
    assert frames[0]["error"]["message"]
    slot = httpx.get(f"{fake_image_server}/api/slot").json()
    assert slot["queue"] == 0 and slot["swaps"] == 0 and slot["resident"] is None
    assert httpx.get(f"{fake_image_server}/api/sessions").json()["sessions"] == []


def test_malformed_json_and_wrong_content_type(fake_image_server: str):
    image_server = fake_image_server
    response = httpx.post(f"{image_server}/api/images/generate", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"
    response = httpx.post(f"{image_server}/api/images/generate", content=b"prompt=x")
    assert response.status_code == 415


def test_missing_model_file_names_the_setting(isolated_data: Path, tmp_path: Path):
    settings = image_settings(isolated_data, tmp_path / "gone.safetensors")
    with serve(create_app(settings)) as url:
        status, frames = generate(url, {"prompt": "a tree"})
        assert status == 409 and frames[0]["error"]["code"] == "model_missing"
        assert "AIONE_IMAGE__MODEL_PATH" in frames[0]["error"]["message"]
        health = httpx.get(f"{url}/health").json()["models"]["image"]
        assert health["present"] is False and "not found" in health["message"]
        assert httpx.get(f"{url}/api/slot").json()["swaps"] == 0


def test_generation_off_by_default_says_how_to_turn_it_on(isolated_data: Path):
    with serve(create_app(make_settings(isolated_data))) as url:
        status, frames = generate(url, {"prompt": "a tree"})
        assert status == 409 and frames[0]["error"]["code"] == "image_not_configured"
        assert "AIONE_IMAGE__MODEL_PATH" in frames[0]["error"]["message"]
        assert httpx.get(f"{url}/api/config").json()["image"] is None


def test_config_tells_the_page_the_defaults_and_limits(fake_image_server: str):
    image_server = fake_image_server
    image = httpx.get(f"{image_server}/api/config").json()["image"]
    assert image["family"] == "sdxs" and image["defaults"]["steps"] == 1 and image["defaults"]["width"] == 512
    assert image["max_width"] == 256 and image["max_batch"] == 4 and "euler_a" in image["samplers"]


def test_chat_then_image_then_chat_swaps_through_the_slot(image_server: str):
    def chat(message: str, session_id: str | None = None) -> list:
        body = {"message": message} | ({"session_id": session_id} if session_id else {})
        with httpx.stream("POST", f"{image_server}/chat_stream_sse_fetch", json=body, timeout=120) as response:
            return read_frames(response)

    first = chat("Say hello.")
    session_id = first[0]["session_id"]
    assert of_type(first, "token") and of_type(first, "done")
    assert httpx.get(f"{image_server}/api/slot").json()["resident"] == "chat"

    _, frames = generate(image_server, {"prompt": "a dog", "width": 64, "height": 64, "steps": 1,
                                        "session_id": session_id})
    states = [f["state"] for f in of_type(frames, "status")]
    assert "unloading" in states and "loading" in states  # the chat model made room
    assert of_type(frames, "image")
    assert httpx.get(f"{image_server}/api/slot").json()["resident"] == "image"

    again = chat("And goodbye?", session_id)
    assert of_type(again, "token") and of_type(again, "done")[0]["finish_reason"] in ("done", "trimmed")
    slot = httpx.get(f"{image_server}/api/slot").json()
    assert slot["resident"] == "chat" and slot["swaps"] == 3
    turns = httpx.get(f"{image_server}/api/sessions/{session_id}/turns").json()["turns"]
    assert [t["kind"] for t in turns] == ["chat", "chat", "image", "image", "chat", "chat"]


def test_disconnect_mid_batch_keeps_the_pictures_made(fake_image_server: str):
    image_server = fake_image_server
    body = {"prompt": "a field", "width": 256, "height": 256, "steps": 4, "batch_count": 4, "seed": 9}
    session_id = None
    with httpx.stream("POST", f"{image_server}/api/images/generate", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            frame = json.loads(line[5:])
            session_id = session_id or frame.get("session_id")
            if frame["type"] == "image":
                break  # the page closed: the rest of the batch is not made
    deadline = time.monotonic() + 90  # the picture under way finishes first (the library cannot stop mid-picture)
    while True:
        turns = httpx.get(f"{image_server}/api/sessions/{session_id}/turns").json()["turns"]
        if len(turns) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert turns[1]["finish_reason"] == "stopped"
    assert 1 <= len(turns[1]["images"]) < 4
    gallery = httpx.get(f"{image_server}/api/sessions/{session_id}/images").json()["images"]
    assert [g["id"] for g in gallery] == turns[1]["images"]
    assert httpx.get(f"{image_server}/api/slot").json()["busy"] is False


def test_the_chat_route_does_not_take_the_image_model(fake_image_server: str):
    image_server = fake_image_server
    response = httpx.post(f"{image_server}/chat_stream_sse_fetch", json={"message": "hi", "model": "image"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "not_a_chat_model"
    assert "/api/images/generate" in response.json()["error"]["message"]
    assert httpx.get(f"{image_server}/api/sessions").json()["sessions"] == []
