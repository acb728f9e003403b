"""Personas (도우미): the API, what a persona changes in an answer, and that its prompt never
reaches another conversation (switching, a new chat, deleting it, a restart); /v1 with
"model": "persona:<id>" through the official openai client."""
from __future__ import annotations

import httpx
import openai
import pytest

from chat import create_app
from tests.conftest import make_settings, read_frames, serve
from tests.fakes import FakeChatEngine

CHAT = "/chat_stream_sse_fetch"
PROMPT = "너는 해적처럼 말하는 도우미다."


def say(client: httpx.Client, message: str, **extra) -> list:
    response = client.post(CHAT, json={"message": message, **extra})
    assert response.status_code == 200, response.text
    return read_frames(response)


def system_of(fake: FakeChatEngine) -> str:
    return fake.prompts[-1][0]["content"]


@pytest.fixture
def app_and_fake(isolated_data):
    fake = FakeChatEngine()
    settings = make_settings(isolated_data)
    return settings, fake


@pytest.fixture
def client(app_and_fake):
    settings, fake = app_and_fake
    with serve(create_app(settings, engines={"chat": fake})) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_builtin_personas_and_validation(client):
    personas = client.get("/api/personas").json()["personas"]
    assert [p["id"] for p in personas][:1] == ["default"] and {"report", "code"} <= {p["id"] for p in personas}
    assert personas[0]["builtin"] is True and personas[0]["system_prompt"] is None
    cases = [
        (client.post("/api/personas", json={}), 422, "empty_name"),
        (client.post("/api/personas", json={"name": "  "}), 422, "empty_name"),
        (client.post("/api/personas", json={"name": "x" * 41}), 422, "name_too_long"),
        (client.post("/api/personas", json={"name": "a", "temperature": 3}), 422, "invalid_request"),
        (client.post("/api/personas", json={"name": "a", "color": "red"}), 422, "invalid_color"),
        (client.post("/api/personas", json={"name": "a", "tools": ["rm_rf"]}), 422, "invalid_tools"),
        (client.post("/api/personas", json={"name": "a", "documents": ["nope"]}), 404, "document_not_found"),
        (client.post("/api/personas", json={"name": "a", "model": "nope"}), 404, "model_not_found"),
        (client.post("/api/personas", json={"name": "a", "memory": "sometimes"}), 422, "invalid_request"),
        (client.post("/api/personas", json={"name": "a", "mood": "happy"}), 422, "invalid_request"),
        (client.get("/api/personas/nope"), 404, "persona_not_found"),
        (client.put("/api/personas/nope", json={"name": "b"}), 404, "persona_not_found"),
        (client.delete("/api/personas/default"), 409, "persona_builtin"),
        (client.post(CHAT, json={"message": "hi", "persona_id": "nope"}), 404, "persona_not_found"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    assert "documents" in cases[6][0].json()["error"]["message"] and "model" in cases[7][0].json()["error"]["message"]
    assert len(client.get("/api/personas").json()["personas"]) == len(personas)  # nothing was made


def test_a_persona_applies_to_its_chat_and_never_leaks(app_and_fake, client):
    _, fake = app_and_fake
    pirate = client.post("/api/personas", json={"name": "해적", "system_prompt": PROMPT, "temperature": 1.3,
                                                 "icon": "🏴", "color": "#112233"})
    assert pirate.status_code == 201
    pirate = pirate.json()
    frames = say(client, "안녕", persona_id=pirate["id"])
    pirate_chat = frames[0]["session_id"]
    assert system_of(fake) == PROMPT and fake.samplings[-1].temperature == 1.3
    say(client, "안녕")  # a new chat: the plain assistant
    assert PROMPT not in system_of(fake) and fake.samplings[-1].temperature is None
    # the conversation keeps its persona; another cannot be switched in
    switched = client.post(CHAT, json={"message": "다음", "session_id": pirate_chat, "persona_id": "report"})
    assert switched.status_code == 422 and switched.json()["error"]["code"] == "persona_fixed"
    session = next(s for s in client.get("/api/sessions").json()["sessions"] if s["id"] == pirate_chat)
    assert (session["persona_id"], session["persona_version"]) == (pirate["id"], 1)
    # an edit applies to the next turn; the saved turns stay as they were
    edited = client.put(f"/api/personas/{pirate['id']}", json={"system_prompt": PROMPT + " 짧게."}).json()
    assert edited["version"] == 2
    say(client, "계속", session_id=pirate_chat)
    assert system_of(fake) == PROMPT + " 짧게."
    turns = client.get(f"/api/sessions/{pirate_chat}/turns").json()["turns"]
    assert [t["text"] for t in turns if t["role"] == "user"] == ["안녕", "계속"]
    # deleted: its conversations go on with the plain assistant
    assert client.delete(f"/api/personas/{pirate['id']}").status_code == 200
    say(client, "아직 있어?", session_id=pirate_chat)
    assert PROMPT not in system_of(fake)


def test_a_restart_keeps_the_persona_of_each_conversation(isolated_data):
    fake = FakeChatEngine()
    settings = make_settings(isolated_data)
    with serve(create_app(settings, engines={"chat": fake})) as url, httpx.Client(base_url=url, timeout=60) as client:
        persona = client.post("/api/personas", json={"name": "해적", "system_prompt": PROMPT}).json()
        pirate_chat = say(client, "안녕", persona_id=persona["id"])[0]["session_id"]
        plain_chat = say(client, "안녕")[0]["session_id"]
    fake = FakeChatEngine()
    with serve(create_app(settings, engines={"chat": fake})) as url, httpx.Client(base_url=url, timeout=60) as client:
        say(client, "다시", session_id=plain_chat)
        assert PROMPT not in system_of(fake)
        say(client, "다시", session_id=pirate_chat)
        assert system_of(fake) == PROMPT


def test_own_memory_scope_stays_with_its_persona(client):
    coder = client.get("/api/personas/code").json()
    assert coder["memory"] == "own"
    frames = say(client, "기억해 줘: 나는 파이썬 3.12와 uv를 써", persona_id="code")
    saved = next(f for f in frames if isinstance(f, dict) and f["type"] == "memory")
    assert saved["memory"]["persona_id"] == "code"
    done = next(f for f in say(client, "내가 쓰는 파이썬 버전이 뭐였지?") if isinstance(f, dict) and f["type"] == "done")
    assert done["memories_used"] == []  # the plain assistant does not see the coder's own memories
    done = next(f for f in say(client, "내가 쓰는 파이썬 버전이 뭐였지?", persona_id="code")
                if isinstance(f, dict) and f["type"] == "done")
    assert [m["id"] for m in done["memories_used"]] == [saved["memory"]["id"]]
    assert client.get("/api/memories", params={"persona_id": "code"}).json()["memories"][0]["id"] == saved["memory"]["id"]
    client.delete("/api/personas/code")  # its own memories go with it
    assert client.get("/api/memories").json()["memories"] == []


def test_v1_persona_with_the_official_client(isolated_data):
    """The real embedded model answers as a persona: listed in /v1/models, its prompt applied."""
    settings = make_settings(isolated_data)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=120) as http:
        persona = http.post("/api/personas", json={"name": "Pirate", "system_prompt": "Always answer like a pirate.",
                                                   "max_tokens": 8}).json()
        view_before = http.get("/v1/models").json()["data"]
        api = openai.OpenAI(base_url=f"{url}/v1", api_key="local")
        ids = [model.id for model in api.models.list().data]
        assert f"persona:{persona['id']}" in ids and "persona:report" in ids
        assert any(m["id"] == f"persona:{persona['id']}" and m["label"] == "Pirate" for m in view_before)
        answer = api.chat.completions.create(model=f"persona:{persona['id']}",
                                             messages=[{"role": "user", "content": "Hello"}])
        assert answer.choices[0].message.content and answer.usage.completion_tokens <= 8  # its max_tokens
        with pytest.raises(openai.NotFoundError) as missing:
            api.chat.completions.create(model="persona:nobody", messages=[{"role": "user", "content": "Hello"}])
        assert missing.value.code == "model_not_found"


def test_v1_persona_prompt_comes_before_the_clients_own(app_and_fake, client):
    _, fake = app_and_fake
    body = {"model": "persona:report", "messages": [{"role": "system", "content": "Be brief."},
                                                     {"role": "user", "content": "보고서 제목"}]}
    assert client.post("/v1/chat/completions", json=body).status_code == 200
    report = client.get("/api/personas/report").json()
    assert system_of(fake) == report["system_prompt"] + "\n\nBe brief." and fake.samplings[-1].temperature == 0.3
