"""The chat's own tools, with a scripted model (tests.fakes) that calls them in the generic
format: the call and its result as steps of the answer, the result given back to the model,
code runs confirmed by the user (or allowed for the conversation), everything kept with the
answer. The real sandbox, document library and message search do the work."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from chat import create_app
from tests.conftest import make_settings, serve
from tests.fakes import FakeChatEngine

CHAT = "/chat_stream_sse_fetch"


def call(name: str, **arguments) -> str:
    return f'<tool_call>{{"name": "{name}", "arguments": {json.dumps(arguments, ensure_ascii=False)}}}</tool_call>'


@pytest.fixture
def fake(isolated_data):
    engine = FakeChatEngine()
    with serve(create_app(make_settings(isolated_data), engines={"chat": engine})) as url:
        yield url, engine


def chat(url: str, body: dict, on_frame=None) -> list:
    frames = []
    with httpx.stream("POST", url + CHAT, json=body, timeout=60) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data:"):
                payload = line[5:].strip()
                frame = payload if payload == "[DONE]" else json.loads(payload)
                frames.append(frame)
                if on_frame:
                    on_frame(url, frame)
    return frames


def of(frames: list, kind: str) -> list[dict]:
    return [f for f in frames if isinstance(f, dict) and f.get("type") == kind]


def test_search_documents_step_then_an_answer_from_its_result_kept_with_the_turn(fake):
    url, engine = fake
    doc = httpx.post(url + "/api/documents", files={"file": ("규정.md", "# 휴가\n\n연차 휴가는 매년 15일이다.".encode())})
    deadline = time.monotonic() + 60
    while httpx.get(url + "/api/documents").json()["documents"][0]["status"] != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    engine.enqueue(["찾아볼게요.\n", call("search_documents", query="연차 휴가")[:20], call("search_documents", query="연차 휴가")[20:]])
    engine.enqueue(["연차는 ", "15일입니다 [1]."])
    frames = chat(url, {"message": "연차 며칠이야?", "tools": ["search_documents"], "doc_scope": "none"})
    (made,) = of(frames, "tool_call")
    (result,) = of(frames, "tool_result")
    assert made["name"] == "search_documents" and json.loads(made["arguments"]) == {"query": "연차 휴가"}
    assert result["ok"] and "15일" in result["content"] and result["id"] == made["id"]
    text = "".join(f["text"] for f in of(frames, "token"))
    assert text == "찾아볼게요.\n연차는 15일입니다 [1]." and "<tool_call>" not in text  # the call never as text
    assert of(frames, "sources")[-1]["sources"][0]["document_id"] == doc.json()["id"]
    second = engine.prompts[-1]
    assert second[-1] == {"role": "tool", "content": result["content"], "tool_call_id": made["id"]}
    assert second[-2]["tool_calls"][0]["function"]["name"] == "search_documents"
    assert of(frames, "done")[0]["finish_reason"] == "done"
    session = of(frames, "session")[0]["session_id"]
    saved = httpx.get(f"{url}/api/sessions/{session}/turns").json()["turns"][-1]
    steps = [s for s in saved["sources"] if s.get("type") == "tool"]
    assert saved["text"] == text and steps[0]["name"] == "search_documents" and "15일" in steps[0]["result"]
    sft = [json.loads(line) for line in httpx.get(f"{url}/api/export?format=openai").text.splitlines()]
    chat_messages = sft[0]["messages"]  # training data keeps the call and its result before the answer
    assert [m["role"] for m in chat_messages] == ["user", "assistant", "tool", "assistant"]
    assert chat_messages[1]["tool_calls"][0]["function"]["name"] == "search_documents"
    assert chat_messages[2]["tool_call_id"] == made["id"] and "15일" in chat_messages[2]["content"]
    share = [json.loads(line) for line in httpx.get(f"{url}/api/export?format=sharegpt").text.splitlines()]
    assert [m["from"] for m in share[0]["conversations"]] == ["human", "function_call", "observation", "gpt"]


def test_a_code_run_waits_for_the_users_yes_and_a_no_is_told_to_the_model(fake):
    url, engine = fake
    decided = []

    def answer(decision: bool):
        def on_frame(url, frame):
            if isinstance(frame, dict) and frame.get("type") == "tool_confirm":
                threading.Thread(target=lambda: decided.append(httpx.post(
                    f"{url}/api/tools/{frame['id']}/decision", json={"run": decision}).status_code)).start()
        return on_frame

    engine.enqueue([call("run_python", code="print(6 * 7)")])
    engine.enqueue(["답은 42입니다."])
    frames = chat(url, {"message": "6 곱하기 7을 코드로", "tools": ["run_python"]}, answer(True))
    (confirm,) = of(frames, "tool_confirm")
    assert json.loads(confirm["arguments"])["code"] == "print(6 * 7)"
    (result,) = of(frames, "tool_result")
    assert result["ok"] and "42" in result["content"] and decided == [200]
    engine.enqueue([call("run_python", code="import os; os.remove('x')")])
    engine.enqueue(["알겠습니다, 실행하지 않았어요."])
    frames = chat(url, {"message": "지워 줘", "tools": ["run_python"]}, answer(False))
    (result,) = of(frames, "tool_result")
    assert not result["ok"] and "did not allow" in result["content"]
    assert "did not allow" in engine.prompts[-1][-1]["content"]  # the model was told
    engine.enqueue([call("run_python", code="print('allowed')")])
    engine.enqueue(["실행했어요."])
    frames = chat(url, {"message": "돌려 줘", "tools": ["run_python"], "allow_run_python": True})
    assert not of(frames, "tool_confirm") and "allowed" in of(frames, "tool_result")[0]["content"]


def test_search_conversations_and_bad_tool_requests(fake):
    url, engine = fake
    engine.enqueue(["제주 여행은 3박 4일로 가기로 했어요."])
    chat(url, {"message": "제주 여행 계획 세워 줘"})
    engine.enqueue([call("search_conversations", query="제주 여행")])
    engine.enqueue(["지난 대화에서 3박 4일로 정했어요."])
    frames = chat(url, {"message": "지난번 여행 얘기 뭐였지?", "tools": ["search_conversations"]})
    assert "3박 4일" in of(frames, "tool_result")[0]["content"]
    refused = httpx.post(url + CHAT, json={"message": "x", "tools": ["rm_rf"]})
    assert refused.status_code == 422 and "rm_rf" in refused.json()["error"]["message"]
    assert httpx.post(url + "/api/tools/call_nope/decision", json={"run": True}).status_code == 404
    assert httpx.post(url + "/api/tools/call_nope/decision", json={"run": "yes"}).status_code == 422



def test_generate_image_needs_an_image_model_and_leaves_the_drawing_to_after_the_answer(fake, isolated_data, tmp_path):
    url, _ = fake
    refused = httpx.post(url + CHAT, json={"message": "고양이 그려 줘", "tools": ["generate_image"]})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "image_not_configured"
    from tests.conftest import image_settings
    from tests.fakes import FakeImageEngine

    checkpoint = tmp_path / "fake-sdxs.safetensors"
    checkpoint.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    settings = image_settings(isolated_data / "drawing", checkpoint)
    engine = FakeChatEngine()
    with serve(create_app(settings, engines={"chat": engine, "image": FakeImageEngine(settings.image)})) as image_url:
        engine.enqueue([call("generate_image", prompt="a cat in a spacesuit")])
        engine.enqueue(["그림을 아래에 그려 드릴게요."])
        frames = chat(image_url, {"message": "우주복 입은 고양이 그려 줘", "tools": ["generate_image"]})
        (result,) = of(frames, "tool_result")
        assert result["ok"] and "after this answer" in result["content"]
        assert result["page"] == {"draw": "a cat in a spacesuit"}  # the page's work, said by the server's tool
        assert "".join(f["text"] for f in of(frames, "token")) == "그림을 아래에 그려 드릴게요."
