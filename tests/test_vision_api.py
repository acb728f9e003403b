"""Image questions end to end: chat -> vision -> chat through the slot, on the real libraries."""
from __future__ import annotations

import io

import httpx
from PIL import Image

from chat import create_app
from tests.conftest import make_settings, read_frames, serve, vision_settings
from tests.test_image_store import bomb_png, data_url
from tests.tiny_models import png_data_url

CHAT = "/chat_stream_sse_fetch"


def post(url: str, body: dict) -> list:
    with httpx.stream("POST", url + CHAT, json=body, timeout=120) as r:
        assert r.status_code == 200, r.read()
        return read_frames(r)


def statuses(frames: list) -> list[tuple]:
    seen = []
    for f in frames:
        if isinstance(f, dict) and f["type"] == "status" and f["state"] in ("unloading", "loading"):
            item = (f["state"], f["model"])
            if not seen or seen[-1] != item:
                seen.append(item)
    return seen


def text(frames: list) -> str:
    return "".join(f["text"] for f in frames if isinstance(f, dict) and f["type"] == "token")


def test_chat_then_image_then_chat_swaps_models_and_keeps_the_image(isolated_data, tiny_mmproj):
    with serve(create_app(vision_settings(isolated_data, tiny_mmproj))) as url:
        first = post(url, {"message": "Hello!"})
        session = first[0]["session_id"]
        image = post(url, {"message": "What is in this picture?", "session_id": session,
                           "images": [png_data_url(120, 90, (30, 160, 40))]})
        assert statuses(image) == [("unloading", "chat"), ("loading", "vision")]
        assert image[1]["type"] == "turn" and image[2]["type"] == "images" and len(image[2]["ids"]) == 1
        assert text(image) and image[-2]["type"] == "done"
        image_id = image[2]["ids"][0]

        follow_up = post(url, {"message": "And its colour?", "session_id": session, "image_ids": [image_id]})
        assert statuses(follow_up) == [] and text(follow_up)  # still the vision model, no swap

        back = post(url, {"message": "Thanks. Summarise our chat.", "session_id": session})
        assert statuses(back) == [("unloading", "vision"), ("loading", "chat")] and text(back)

        turns = httpx.get(f"{url}/api/sessions/{session}/turns").json()["turns"]
        assert [t["images"] for t in turns if t["role"] == "user"] == [[], [image_id], [], []]
        assert [t["model"] for t in turns if t["role"] == "assistant"] == ["SmolLM2-135M-Instruct.Q4_1.gguf"] * 4
        assert turns[3]["text"] == text(image)  # the vision answer is in the history the chat model sees
        served = httpx.get(f"{url}/api/images/{image_id}")
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(served.content)).size == (120, 90)
        assert httpx.get(url + "/api/slot").json()["resident"] == "chat"

        # Deleting the session removes its image files too.
        httpx.delete(f"{url}/api/sessions/{session}")
        assert httpx.get(f"{url}/api/images/{image_id}").status_code == 404


def test_bad_images_are_refused_before_anything_reaches_a_model(isolated_data, tiny_mmproj):
    truncated = io.BytesIO()
    Image.effect_noise((200, 200), 50).convert("RGB").save(truncated, "PNG")
    cases = [
        ("not an image", [data_url(b"hello, not a picture")], 415, "unsupported_image"),
        ("truncated", [data_url(truncated.getvalue()[:3000])], 400, "invalid_image"),
        ("bomb", [data_url(bomb_png())], 413, "image_too_large"),
        ("too many", [png_data_url()] * 5, 422, "too_many_images"),
        ("too large", [data_url(b"\x89PNG" + b"\0" * 250_000)], 413, "image_too_large"),
        ("not a data url", ["http://127.0.0.1:9/x.png"], 400, "invalid_image"),
    ]
    with serve(create_app(vision_settings(isolated_data, tiny_mmproj))) as url:
        for name, images, status, code in cases:
            r = httpx.post(url + CHAT, json={"message": "look", "images": images}, timeout=30)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), name
        good_then_bad = httpx.post(url + CHAT, json={"message": "two", "images": [png_data_url(), data_url(b"not")]})
        assert good_then_bad.status_code == 415  # and the good first image was not stored either
        assert httpx.get(url + "/api/sessions").json()["sessions"] == []  # no request above created one
        other = post(url, {"message": "hi", "images": [png_data_url()]})
        foreign = httpx.post(url + CHAT, json={"message": "again", "image_ids": other[2]["ids"]})
        assert foreign.status_code == 404  # an image of another session (no session: a new one)
        mine = httpx.post(url + CHAT, json={"message": "again", "image_ids": ["f" * 32],
                                            "session_id": other[0]["session_id"]})
        assert mine.status_code == 404
        assert [s["id"] for s in httpx.get(url + "/api/sessions").json()["sessions"]] == [other[0]["session_id"]]
        state = httpx.get(url + "/api/slot").json()
        assert state["busy"] is False and state["swaps"] == 1  # only the good request loaded a model
        assert len(list((isolated_data / "uploads").glob("*.png"))) == 1
    with serve(create_app(make_settings(isolated_data))) as url:  # no vision model configured
        r = httpx.post(url + CHAT, json={"message": "look", "images": [png_data_url()]})
        assert r.status_code == 503 and "AIONE_VISION__MODEL_PATH" in r.json()["error"]["message"]


def test_a_projector_that_does_not_fit_fails_clearly_and_chat_keeps_working(isolated_data, mismatched_mmproj):
    with serve(create_app(vision_settings(isolated_data, mismatched_mmproj))) as url:
        assert text(post(url, {"message": "Hi"}))
        failed = post(url, {"message": "What is this?", "images": [png_data_url()]})
        error = [f for f in failed if isinstance(f, dict) and f["type"] == "error"]
        assert error and error[0]["code"] == "model_load_failed" and "AIONE_VISION__MMPROJ_PATH" in error[0]["message"]
        state = httpx.get(url + "/api/slot").json()
        assert state["busy"] is False and state["residents"] == {} and "vision" in state["cooldowns"]
        again = post(url, {"message": "Still there?"})
        assert statuses(again) == [("loading", "chat")] and text(again)
