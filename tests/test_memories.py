"""Memories across conversations: cues, what is kept and how it is used, the API, proposals,
export/import. The real embedded chat model and the real embedder where the prompt matters;
the scripted chat engine where only the HTTP layer and the stores do."""
from __future__ import annotations

import io
import json
import time

import httpx
import pytest

from chat import create_app
from memories.cues import parse_cue
from memories.proposals import candidates
from settings import Memory
from tests.conftest import make_settings, read_frames, serve
from tests.fakes import FakeChatEngine
from tests.memory_eval_set import NO_CUE
from turns.turn_memory import keep_prefix

CHAT = "/chat_stream_sse_fetch"


def say(client: httpx.Client, message: str, **extra) -> list:
    response = client.post(CHAT, json={"message": message, **extra})
    assert response.status_code == 200, response.text
    frames = read_frames(response)
    errors = [f for f in frames if isinstance(f, dict) and f["type"] == "error"]
    assert not errors, errors
    return frames


def of_type(frames: list, kind: str) -> list[dict]:
    return [f for f in frames if isinstance(f, dict) and f["type"] == kind]


# ---- cues ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("message,action,fact", [
    ("기억해 줘: 내 이름은 민지야", "remember", "내 이름은 민지야"),
    ("내 이름은 민지라고 기억해", "remember", "내 이름은 민지"),
    ("나는 회사에서 파이썬으로 데이터 분석을 한다고 기억해 줘", "remember", "나는 회사에서 파이썬으로 데이터 분석을 한다"),
    ("우리 팀장님 이름은 김철수야. 기억해 둬", "remember", "우리 팀장님 이름은 김철수야"),
    ("remember that my dog is called Bori", "remember", "my dog is called Bori"),
    ("Please remember: I prefer tabs", "remember", "I prefer tabs"),
    ("forget that I live in Busan", "forget", "I live in Busan"),
    ("부산에 산다는 거 잊어 줘", "forget", "부산에 산다"),
])
def test_explicit_requests_are_cues(message, action, fact):
    cue = parse_cue(message)
    assert cue is not None and (cue.action, cue.fact) == (action, fact)


def test_ordinary_turns_are_no_cue_and_no_proposal():
    assert len(NO_CUE) >= 100
    assert [m for m in NO_CUE if parse_cue(m) is not None] == []
    assert candidates(NO_CUE) == []  # nor would a quiet conversation propose anything from them


def test_the_part_keeps_its_start_and_the_stale_leave_first():
    cost = {1: 10, 2: 10, 3: 10, 4: 10}
    assert keep_prefix([1, 2], [3], cost, 100) == [1, 2, 3]  # new ones come after what the prompt held
    assert keep_prefix([1, 2], [2, 3], cost, 20) == [2, 3]  # full: the one not relevant now leaves
    assert keep_prefix([], [4, 3, 2], cost, 25) == [4, 3]  # the best first


# ---- the HTTP layer with the scripted engine --------------------------------------------------------
@pytest.fixture
def fake_server(isolated_data):
    fake = FakeChatEngine()
    settings = make_settings(isolated_data)
    settings.memory = Memory(quiet_s=0.2)
    with serve(create_app(settings, engines={"chat": fake})) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, fake


def test_a_cue_is_saved_at_once_undone_and_used_in_a_new_chat(fake_server):
    client, fake = fake_server
    frames = say(client, "기억해 줘: 나는 판교의 게임 회사에서 데이터 분석을 해")
    saved = of_type(frames, "memory")[0]
    assert saved["action"] == "added" and saved["memory"]["text"] == "나는 판교의 게임 회사에서 데이터 분석을 해"
    done = of_type(say(client, "내가 회사에서 무슨 일을 한다고 했지?"), "done")[0]  # a new conversation
    assert [m["id"] for m in done["memories_used"]] == [saved["memory"]["id"]]
    assert "[사용자에 대해 기억하는 것]\n- 나는 판교의 게임 회사에서 데이터 분석을 해" in fake.prompts[-1][0]["content"]
    session_id = of_type(say(client, "내가 회사에서 무슨 일을 한다고 했지?"), "session")[0]["session_id"]
    answer = client.get(f"/api/sessions/{session_id}/turns").json()["turns"][-1]
    assert answer["sources"] == [{"type": "memory", "id": saved["memory"]["id"], "text": saved["memory"]["text"]}]
    markdown = client.get("/api/export", params={"format": "markdown", "session_id": session_id})
    assert markdown.status_code == 200 and "> [" not in markdown.text  # a memory is no document reference
    assert of_type(say(client, "파이썬에서 리스트를 정렬하는 방법"), "done")[0]["memories_used"] == []  # unrelated
    assert client.delete(f"/api/memories/{saved['memory']['id']}").status_code == 200  # 되돌리기
    assert client.get("/api/memories").json()["memories"] == []
    assert of_type(say(client, "내가 회사에서 무슨 일을 한다고 했지?"), "done")[0]["memories_used"] == []


def test_the_same_subject_said_again_updates_and_forget_turns_it_off(fake_server):
    client, _ = fake_server
    first = of_type(say(client, "내 이름은 민지라고 기억해"), "memory")[0]
    second = of_type(say(client, "내 이름은 수진이라고 기억해 줘"), "memory")[0]
    assert second["action"] == "updated" and second["previous"]["text"] == "내 이름은 민지"
    assert second["memory"]["id"] == first["memory"]["id"]
    assert [m["text"] for m in client.get("/api/memories").json()["memories"]] == ["내 이름은 수진"]
    again = of_type(say(client, "기억해 줘: 내 이름은 수진"), "memory")[0]
    assert again["action"] == "unchanged"
    gone = of_type(say(client, "내 이름이 수진이라는 거 잊어 줘"), "memory")[0]
    assert gone["action"] == "forgotten" and gone["memory"]["enabled"] is False
    assert of_type(say(client, "내 이름이 뭐라고 했지?"), "done")[0]["memories_used"] == []
    undo = client.put(f"/api/memories/{gone['memory']['id']}", json={"enabled": True})  # 되돌리기
    assert undo.status_code == 200 and undo.json()["enabled"] is True
    assert of_type(say(client, "내 이름이 뭐라고 했지?"), "done")[0]["memories_used"][0]["text"] == "내 이름은 수진"


def test_the_switch_per_conversation_and_the_part_kept_between_turns(fake_server):
    client, fake = fake_server
    memory = client.post("/api/memories", json={"text": "I am allergic to peanuts"}).json()
    frames = say(client, "Which food am I allergic to?")
    session_id = frames[0]["session_id"]
    assert of_type(frames, "done")[0]["memories_used"] == [{"id": memory["id"], "text": "I am allergic to peanuts"}]
    head = fake.prompts[-1][0]["content"]
    # the next turn is about something else: the part stays as it was (the cached prefix survives)
    assert of_type(say(client, "Write a haiku about autumn", session_id=session_id), "done")[0]["memories_used"]
    assert fake.prompts[-1][0]["content"] == head
    assert client.put(f"/api/sessions/{session_id}/memory", json={"memory_off": True}).json() == {"memory_off": True}
    assert of_type(say(client, "Which food am I allergic to?", session_id=session_id), "done")[0]["memories_used"] == []
    assert "peanuts" not in fake.prompts[-1][0]["content"]
    assert client.get(f"/api/sessions/{session_id}/memory").json()["memory_off"] is True


def test_bad_input_is_a_clear_4xx_and_nothing_is_lost(fake_server):
    client, _ = fake_server
    kept = client.post("/api/memories", json={"text": "My favourite film is Spirited Away"})
    assert kept.status_code == 201
    cases = [
        (client.post("/api/memories", json={"text": "   "}), 422, "empty_memory"),
        (client.post("/api/memories", json={"text": "x" * 301}), 422, "memory_too_long"),
        (client.post("/api/memories", json={"text": "ok fact", "persona_id": "nobody"}), 404, "persona_not_found"),
        (client.post("/api/memories", json={"text": "ok", "colour": 1}), 422, "invalid_request"),
        (client.put("/api/memories/999", json={"enabled": False}), 404, "memory_not_found"),
        (client.put(f"/api/memories/{kept.json()['id']}", json={}), 422, "empty_change"),
        (client.put(f"/api/memories/{kept.json()['id']}", json={"enabled": "yes"}), 422, "invalid_request"),
        (client.delete("/api/memories/999"), 404, "memory_not_found"),
        (client.post("/api/memories/proposals/5/accept"), 404, "proposal_not_found"),
        (client.get("/api/sessions/nope/memory"), 404, "session_not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert "persona_id" in cases[2][0].json()["error"]["message"]  # names the field
    assert [m["text"] for m in client.get("/api/memories").json()["memories"]] == ["My favourite film is Spirited Away"]
    found = client.get("/api/memories", params={"q": "spirited"}).json()["memories"]
    assert len(found) == 1 and client.get("/api/memories", params={"q": "서울"}).json()["memories"] == []


def test_a_quiet_conversation_proposes_and_nothing_is_stored_unseen(fake_server):
    client, fake = fake_server
    fake.enqueue(["좋아요"])
    frames = say(client, "저는 대전에 사는 초등학교 교사예요. 오늘 수업 아이디어 좀 줘")
    fake.enqueue(["- 사용자는 대전에 사는 초등학교 교사이다", "\n- 사용자는 화성에서 왔다"])  # the proposal pass
    deadline = time.monotonic() + 20
    while not (proposals := client.get("/api/memories/proposals").json()["proposals"]):
        assert time.monotonic() < deadline, "no proposal came"
        time.sleep(0.1)
    assert [p["text"] for p in proposals] == ["사용자는 대전에 사는 초등학교 교사이다"]  # the invented one is not grounded
    assert proposals[0]["session_id"] == frames[0]["session_id"]
    assert client.get("/api/memories").json()["memories"] == []  # a proposal is not a memory
    accepted = client.post(f"/api/memories/proposals/{proposals[0]['id']}/accept", json={"text": "나는 대전의 초등학교 교사"})
    assert accepted.status_code == 201 and accepted.json()["memory"]["text"] == "나는 대전의 초등학교 교사"
    assert client.post(f"/api/memories/proposals/{proposals[0]['id']}/reject").status_code == 409
    assert client.get("/api/memories/proposals").json()["proposals"] == []


def test_ordinary_turns_store_nothing_through_the_route(fake_server):
    client, _ = fake_server
    session_id = None
    for message in NO_CUE[:30]:
        frames = say(client, message, **({"session_id": session_id} if session_id else {}))
        session_id = frames[0]["session_id"]
        assert of_type(frames, "memory") == []
    assert client.get("/api/memories").json()["memories"] == []


def test_memories_travel_with_the_export_and_come_back_once(isolated_data, fake_server):
    client, _ = fake_server
    client.post("/api/memories", json={"text": "I commute by bicycle"})
    record = client.get("/api/export", params={"format": "json"}).content
    assert json.loads(record)["memories"][0]["text"] == "I commute by bicycle"
    client.delete(f"/api/memories/{client.get('/api/memories').json()['memories'][0]['id']}")
    for expected in (1, 0):  # a second import adds nothing
        response = client.post("/api/import", files={"file": ("export.json", io.BytesIO(record), "application/json")})
        assert response.status_code == 200 and response.json()["memories_imported"] == expected
    assert [m["text"] for m in client.get("/api/memories").json()["memories"]] == ["I commute by bicycle"]
    assert of_type(say(client, "How do I get to work, as I told you?"), "done")[0]["memories_used"]


# ---- the real model and embedder -------------------------------------------------------------------
def test_the_memory_part_sits_before_the_history_in_the_real_prompt(isolated_data):
    """The embedded model: the memory is in the prompt (the context view shows the part), and the
    next turn of the conversation reuses the prefix (llama-cpp-python's cached tokens)."""
    settings = make_settings(isolated_data, n_ctx=2048)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=180) as client:
        client.post("/api/memories", json={"text": "My daughter is called Emma"})
        frames = say(client, "What is my daughter's name?")
        session_id, done = frames[0]["session_id"], of_type(frames, "done")[0]
        assert [m["text"] for m in done["memories_used"]] == ["My daughter is called Emma"]
        view = client.get(f"/api/sessions/{session_id}/context").json()
        kinds = [part["kind"] for part in view["parts"]]
        assert kinds.index("memory") < kinds.index("turn")
        memory = next(part for part in view["parts"] if part["kind"] == "memory")
        assert memory["memories"] == ["My daughter is called Emma"] and 5 < memory["tokens"] < 40
        second = of_type(say(client, "And tell me a short joke", session_id=session_id), "done")[0]
        assert second["usage"]["cached_tokens"] >= done["usage"]["prompt_tokens"] - 1  # the prefix was reused
