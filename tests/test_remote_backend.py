"""A chat role served by a real separate OpenAI-compatible server: llama-cpp-python's own
(`python -m llama_cpp.server`) with the embedded SmolLM2 on a loopback port."""
from __future__ import annotations

import json
import time

import httpx
import pytest

from chat import create_app
from settings import embedded_chat_model_path
from tests.conftest import make_settings, read_frames, serve
from tests.servers import start_llama_server

CHAT = "/chat_stream_sse_fetch"


@pytest.fixture
def upstream():
    """llama-cpp-python's OpenAI server in its own process; yields (base URL, process)."""
    process, base = start_llama_server(embedded_chat_model_path())
    try:
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def remote_settings(data, base: str, **chat):
    settings = make_settings(data, **chat)
    settings.chat.base_url = base
    return settings


def test_chat_streams_through_from_the_remote_server(isolated_data, upstream):
    base, _ = upstream
    with serve(create_app(remote_settings(isolated_data, base, max_tokens=24))) as url:
        with httpx.stream("POST", url + CHAT, json={"message": "Say hello in five words."}, timeout=120) as r:
            frames = read_frames(r)
        kinds = [f["type"] if isinstance(f, dict) else f for f in frames]
        assert kinds[0] == "session" and kinds[-2:] == ["done", "[DONE]"] and "token" in kinds
        text = "".join(f["text"] for f in frames if isinstance(f, dict) and f["type"] == "token")
        done = frames[-2]
        assert text.strip() and done["finish_reason"] in ("done", "trimmed") and "@ 127.0.0.1" in done["model"]
        turns = httpx.get(f"{url}/api/sessions/{frames[0]['session_id']}/turns").json()["turns"]
        assert turns[-1]["text"] == text  # stored like any answer
        slot = httpx.get(url + "/api/slot").json()
        assert slot["resident"] is None and slot["swaps"] == 0  # no VRAM, no swap here
        assert slot["remote"]["chat"]["url"] == base and slot["remote"]["chat"]["running"] == 0


def test_tools_pass_through_to_the_remote_server_and_its_calls_come_back(isolated_data, upstream):
    import openai

    base, _ = upstream
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    with serve(create_app(remote_settings(isolated_data, base, max_tokens=48))) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
        reply = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "Weather in Busan?"}], tools=[tool],
            tool_choice={"type": "function", "function": {"name": "get_weather"}}, temperature=0, seed=1)
        (call,) = reply.choices[0].message.tool_calls  # llama-cpp-python's server made it (a forced function)
        assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
        assert reply.choices[0].finish_reason == "tool_calls"


def test_killing_the_remote_server_mid_answer_is_a_clean_error(isolated_data, upstream):
    base, process = upstream
    with serve(create_app(remote_settings(isolated_data, base, max_tokens=400))) as url:
        frames, killed = [], False
        with httpx.stream("POST", url + CHAT, json={"message": "Count from 1 to 200."}, timeout=120) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    frames.append(line[5:].strip())
                    if '"type": "token"' in line and not killed:
                        process.kill()
                        killed = True
        assert killed and frames[-1] == "[DONE]"
        import json

        error = json.loads(frames[-2])
        assert error["type"] == "error" and error["code"] in ("remote_backend_failed", "remote_backend_unreachable")
        assert base in error["message"] and "AIONE_CHAT__BASE_URL" in error["message"]
        slot = httpx.get(url + "/api/slot").json()
        assert slot["busy"] is False and slot["swaps"] == 0 and slot["remote"]["chat"]["running"] == 0

        with httpx.stream("POST", url + CHAT, json={"message": "hello?"}, timeout=60) as r:  # upstream now down
            again = read_frames(r)
        assert again[-2]["type"] == "error" and again[-2]["code"] == "remote_backend_unreachable"
        assert "cannot be reached" in again[-2]["message"]


def test_stop_closes_the_remote_request_at_once(isolated_data, upstream):
    base, _ = upstream
    with serve(create_app(remote_settings(isolated_data, base, max_tokens=600))) as url:
        session_id, tokens = None, 0
        with httpx.stream("POST", url + CHAT, json={"message": "Count from 1 to 300."}, timeout=60) as r:
            for line in r.iter_lines():
                if '"type": "session"' in line:
                    session_id = line.split('"session_id": "')[1].split('"')[0]
                tokens += '"type": "token"' in line
                if tokens == 5:
                    break  # the page's Stop: the connection closes
        stopped_at = time.monotonic()
        while True:
            turns = httpx.get(f"{url}/api/sessions/{session_id}/turns").json()["turns"]
            if turns[-1]["role"] == "assistant" and turns[-1]["finish_reason"] != "streaming":
                break
            assert time.monotonic() - stopped_at < 5, "the remote answer did not stop"
            time.sleep(0.05)
        assert turns[-1]["finish_reason"] == "stopped" and len(turns[-1]["text"]) < 200
        assert httpx.get(url + "/api/slot").json()["remote"]["chat"]["running"] == 0


# ---- vision, image and embeddings on another PKC AI-ONE's /v1 (a real OpenAI-compatible server) ----
def test_image_questions_pictures_and_embeddings_from_remote_roles(isolated_data, tmp_path, tiny_mmproj, tiny_sd):
    from settings import ImageModel, Rag
    from tests.conftest import vision_settings
    from tests.tiny_models import png_data_url

    upstream = vision_settings(tmp_path / "upstream", tiny_mmproj)
    upstream.image = ImageModel(model_path=tiny_sd, n_threads=2, max_width=256, max_height=256, max_steps=4)
    with serve(create_app(upstream)) as far:
        settings = make_settings(isolated_data)
        settings.vision.base_url, settings.vision.remote_model = far + "/v1", "vision"
        settings.image = ImageModel(base_url=far + "/v1", max_width=256, max_height=256, max_steps=4)
        # the far side embeds with USE multilingual: its calibrated threshold, as a user would set it
        settings.rag = Rag(embedder="openai", embedding_base_url=far + "/v1", embedding_remote_model="embeddings",
                           min_similarity=0.14)
        with serve(create_app(settings)) as url:
            config = httpx.get(url + "/api/config").json()
            assert config["vision"] is True and config["image"]["model"].endswith("@ " + far.split("//")[1])
            with httpx.stream("POST", url + CHAT, timeout=120, json={
                    "message": "What is this?", "images": [png_data_url(64, 64, (10, 200, 10))]}) as r:
                frames = read_frames(r)
            assert frames[-2]["type"] == "done" and "vision @" in frames[-2]["model"], frames[-2]
            assert any(isinstance(f, dict) and f["type"] == "token" for f in frames)

            with httpx.stream("POST", url + "/api/images/generate", timeout=300, json={
                    "prompt": "a lake", "width": 64, "height": 64, "steps": 1, "seed": 7, "batch_count": 2}) as r:
                frames = read_frames(r)
            pictures = [f for f in frames if isinstance(f, dict) and f["type"] == "image"]
            assert [p["seed"] for p in pictures] == [7, 8] and frames[-2]["finish_reason"] == "done"
            assert (isolated_data / "images" / f"{pictures[0]['id']}.png").is_file()  # stored here, made there

            created = httpx.post(url + "/api/documents", timeout=120,
                                 files={"file": ("lake.md", "# 호수\n\n푸른 호수에는 백조 두 마리가 산다.".encode())})
            assert created.status_code == 201
            deadline = time.monotonic() + 60
            while httpx.get(url + "/api/documents").json()["documents"][0]["status"] == "ingesting":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            hits = httpx.post(url + "/api/rag/search", json={"query": "How many swans live on the lake?"}).json()
            assert hits["hits"] and hits["hits"][0]["similarity"] is not None  # found by meaning, across languages
            slot = httpx.get(url + "/api/slot").json()
            assert slot["swaps"] == 0 and set(slot["remote"]) == {"vision", "image"}
