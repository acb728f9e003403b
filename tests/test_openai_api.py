"""/v1 with the official openai client against a real server: the embedded SmolLM2 through the
same slot, the vision engine (generated projector), the shared embedder, a generated image
checkpoint; every error as the client's typed exception."""
from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from pydantic import SecretStr

from chat import create_app
from tests.conftest import image_settings, make_settings, serve, vision_settings
from tests.fakes import FakeChatEngine
from tests.tiny_models import png_data_url


@pytest.fixture
def client(isolated_data):
    settings = make_settings(isolated_data, max_tokens=32, n_ctx=1024)
    with serve(create_app(settings)) as url:
        yield openai.OpenAI(base_url=url + "/v1", api_key="anything", max_retries=0, timeout=120)


def test_models_lists_the_roles_users_can_pass(client):
    from tests.test_model_library import scanned

    scanned(str(client.base_url).removesuffix("/v1/"))  # the library's first scan runs in the background
    models = client.models.list().data
    ids = [model.id for model in models]
    assert ids[:2] == ["chat", "embeddings"]  # the roles, then the model library's models by id
    from settings import embedded_chat_model_path

    library = [m for m in models[2:] if m.label == embedded_chat_model_path().stem]
    assert len(library) == 1 and library[0].role == "chat"  # the embedded model's folder is scanned by default
    assert client.models.retrieve("chat").id == "chat"
    assert client.models.retrieve(library[0].id).id == library[0].id
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-17")


def test_chat_streamed_equals_non_streamed_and_reports_usage(client):
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Name three colours."}]
    whole = client.chat.completions.create(model="chat", messages=messages, temperature=0, seed=11, max_tokens=24)
    assert whole.object == "chat.completion" and whole.choices[0].message.role == "assistant"
    text = whole.choices[0].message.content
    assert text and whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage.prompt_tokens > 5 and whole.usage.completion_tokens > 0
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens

    chunks = list(client.chat.completions.create(model="chat", messages=messages, temperature=0, seed=11,
                                                 max_tokens=24, stream=True, stream_options={"include_usage": True}))
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    with httpx.Client() as raw:  # nothing went into the page's sessions
        assert raw.get(str(client.base_url).replace("/v1/", "") + "/api/sessions").json()["sessions"] == []


def test_max_tokens_gives_finish_reason_length(client):
    reply = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Tell a long story."}],
                                           max_completion_tokens=3, temperature=0)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 3


def test_json_schema_output_parses_and_validates(client):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "rank": {"type": "integer"}},
              "required": ["city", "rank"], "additionalProperties": False}
    reply = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "Give a city and a rank as JSON."}], temperature=0,
        max_tokens=64, response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}})
    data = json.loads(reply.choices[0].message.content)
    assert set(data) == {"city", "rank"} and isinstance(data["city"], str) and isinstance(data["rank"], int)
    reply = client.chat.completions.create(model="chat", max_tokens=48, temperature=0,
                                           messages=[{"role": "user", "content": "A JSON object please."}],
                                           response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_errors_arrive_as_the_clients_typed_exceptions(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "word " * 3000}])
    assert too_long.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as streamed:  # an early error is HTTP, not a 200 stream
        list(client.chat.completions.create(model="chat", stream=True,
                                            messages=[{"role": "user", "content": "word " * 3000}]))
    assert streamed.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chat", messages=[{"role": "assistant", "content": "no user"}])
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="chat", messages=[])
    assert "messages" in empty.value.message


def test_embeddings_shape_cosine_and_base64(client):
    texts = ["서울에서 열린 축제", "a festival held in Seoul", "주식 시장의 하락"]
    result = client.embeddings.create(model="embeddings", input=texts)
    vectors = np.array([d.embedding for d in result.data], dtype=np.float32)
    assert vectors.shape == (3, 512) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3  # Korean and English in one space
    raw = httpx.post(str(client.base_url) + "embeddings", json={"input": "hello", "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    single = client.embeddings.create(model="embeddings", input="hello").data[0].embedding
    assert decoded.shape == (512,) and np.allclose(decoded, single, atol=1e-6)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="embeddings", input=["ok", " "])


def test_a_full_queue_is_a_rate_limit_error_with_retry_after(isolated_data):
    engine = FakeChatEngine(token_seconds=0.2)
    for _ in range(4):
        engine.enqueue(["slow "] * 20)
    settings = make_settings(isolated_data)
    settings.slot.queue_limit = 1
    with serve(create_app(settings, engines={"chat": engine})) as url:
        api = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        holders = [threading.Thread(target=lambda: api.chat.completions.create(**body)) for _ in range(2)]
        for t in holders:
            t.start()
        import time

        time.sleep(0.5)  # one streams, one waits: the queue (limit 1) is full
        with pytest.raises(openai.RateLimitError) as limited:
            api.chat.completions.create(**body)
        assert int(limited.value.response.headers["retry-after"]) >= 1
        for t in holders:
            t.join(30)


def test_token_mode_needs_the_key(isolated_data):
    settings = make_settings(isolated_data)
    settings.server.api_token = SecretStr("the-server-token-0123456789")
    with serve(create_app(settings, engines={"chat": FakeChatEngine(replies=[["ok"]])})) as url:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()
        good = openai.OpenAI(base_url=url + "/v1", api_key="the-server-token-0123456789", max_retries=0)
        assert good.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}]
                                            ).choices[0].message.content == "ok"


def test_an_image_part_goes_to_the_vision_engine(isolated_data, tiny_mmproj: Path):
    with serve(create_app(vision_settings(isolated_data, tiny_mmproj))) as url:
        api = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
        reply = api.chat.completions.create(model="chat", max_tokens=8, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in the picture?"},
            {"type": "image_url", "image_url": {"url": png_data_url(64, 64, (200, 30, 30))}}]}])
        assert reply.choices[0].message.content is not None and reply.usage.completion_tokens > 0
        slot = httpx.get(url + "/api/slot").json()
        assert slot["resident"] == "vision"  # the slot swapped the chat model out for it
        assert list((isolated_data / "uploads").glob("*.png")) == []  # stateless: the image was not kept


def test_image_generation_on_the_generated_checkpoint(isolated_data, tiny_sd: Path):
    with serve(create_app(image_settings(isolated_data, tiny_sd))) as url:
        api = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=300)
        result = api.images.generate(model="image", prompt="a red apple", n=2, size="64x64",
                                     response_format="b64_json", extra_body={"steps": 1, "seed": 5})
        import io

        from PIL import Image

        pictures = [Image.open(io.BytesIO(base64.b64decode(d.b64_json))) for d in result.data]
        assert [p.size for p in pictures] == [(64, 64), (64, 64)]
        assert json.loads(pictures[1].text["aione"])["seed"] == 6
        with pytest.raises(openai.BadRequestError):
            api.images.generate(model="image", prompt="x", size="65x64", response_format="b64_json")
        assert httpx.get(url + "/api/sessions").json()["sessions"] == []


def test_a_model_that_cannot_load_is_503_naming_the_setting(isolated_data, tmp_path):
    settings = make_settings(isolated_data, model_path=tmp_path / "missing.gguf")
    with serve(create_app(settings)) as url:
        api = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as failed:
                result = api.chat.completions.create(model="chat", stream=stream,
                                                     messages=[{"role": "user", "content": "hi"}])
                list(result) if stream else None
            assert failed.value.status_code == 503 and "AIONE_CHAT__MODEL_PATH" in failed.value.message


@pytest.mark.parametrize("stream", [True, False])
def test_a_request_that_fails_before_its_first_token_leaves_no_upload_behind(isolated_data, tmp_path, stream):
    """The vision model's file is missing: the error comes before any token, as an HTTP error,
    and the picture the request carried is not left in data/uploads (a stateless API keeps nothing)."""
    settings = make_settings(isolated_data, vision={"model_path": tmp_path / "gone.gguf",
                                                    "mmproj_path": tmp_path / "gone-mmproj.gguf"})
    with serve(create_app(settings)) as url:
        response = httpx.post(url + "/v1/chat/completions", timeout=60, json={
            "model": "chat", "stream": stream, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": png_data_url(32, 32, (10, 200, 10))}}]}]})
        assert response.status_code >= 400 and response.json()["error"]["code"] == "model_missing"
        assert list((isolated_data / "uploads").glob("*")) == []
        assert httpx.get(url + "/api/slot").json()["busy"] is False
