"""PKC Mark: the task sets and their scorers on known answers, and runs through the real app:
results stored and exported, a chat request answered first during a run, cancel frees the slot."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx
import pytest

from chat import create_app
from mark import scoring
from mark.items import LANGUAGES, TASKS, items
from tests.conftest import make_settings, read_frames, serve
from tests.fakes import FakeChatEngine


def test_every_task_has_at_least_20_items_per_language_and_quick_has_5():
    assert set(TASKS) == {"instruct", "reasoning", "summary", "documents", "json", "code", "tools", "vision"}
    for task in TASKS:
        made = items(task)
        for language in LANGUAGES:
            assert sum(item.language == language for item in made) >= 20, (task, language)
        assert len(items(task, quick=True)) == 10
    assert items("reasoning") == items("reasoning")  # fixed seeds: the same questions every run


def test_the_scorers_on_known_answers():
    bullets = next(i for i in items("instruct") if i.language == "en" and "bullets" in i.check)
    right = "\n".join(f"- tip {n} about {bullets.check['include']}" for n in range(bullets.check["bullets"]))
    assert scoring.score_instruct(bullets, right) == 1.0
    assert scoring.score_instruct(bullets, "- one\n- two") < 1.0
    korean = next(i for i in items("instruct") if i.language == "ko" and "max_sentences" in i.check)
    assert scoring.score_instruct(korean, f"{korean.check['include']}이 중요합니다.") == 1.0
    assert scoring.score_instruct(korean, "This is English only.") < 1.0
    number = next(i for i in items("reasoning") if "number" in i.check)
    assert scoring.score_reasoning(number, f"답: {number.check['number']}") == 1.0
    assert scoring.score_reasoning(number, f"{number.check['number'] + 1}") == 0.0
    day = next(i for i in items("reasoning") if "word" in i.check)
    assert scoring.score_reasoning(day, day.check["word"]) == 1.0
    choice = next(i for i in items("reasoning") if "letter" in i.check)
    assert choice.choices == ("A", "B", "C", "D") and scoring.score_reasoning(choice, f'"{choice.check["letter"]}"') == 1.0
    summary_item = items("summary")[0]
    kept = " ".join(summary_item.check["facts"])
    assert scoring.score_summary(summary_item, kept) == 1.0
    assert scoring.score_summary(summary_item, kept + " 그리고 99999명") == 0.75  # an invented number costs
    assert scoring.score_summary(summary_item, "모르겠습니다") == 0.0
    question = items("documents")[0]
    sources = [{"n": 1, "name": "출장 규정.md"}, {"n": 2, "name": question.check["document"]}]
    assert scoring.score_documents(question, f"{question.check['fact']}일입니다 [2].", sources) == 1.0
    assert scoring.score_documents(question, f"{question.check['fact']}일입니다 [1].", sources) == 0.5
    assert scoring.score_documents(question, "모릅니다 [2]", sources) == 0.0
    word = next(i for i in items("vision") if i.language == "en" and i.check["picture"][0].startswith("text:"))
    assert scoring.score_vision(word, f"It says {word.check['word'].lower()}.") == 1.0
    assert scoring.score_vision(word, "a red circle") == 0.0
    json_item = items("json")[0]
    expected = json_item.check["expected"]
    assert scoring.score_json(json_item, "```json\n" + __import__("json").dumps(expected, ensure_ascii=False) + "\n```") == (1.0, True)
    assert scoring.score_json(json_item, '{"name": "x", "age": 1, "city": "y"}') == (0.5, True)
    assert scoring.score_json(json_item, "name: x") == (0.0, False)
    tool = next(i for i in items("tools") if i.check["tool"] == "calculate")
    assert scoring.score_tools(tool, [("calculate", {"expression": next(iter(tool.check["arguments"].values())) + "*2"})]) == 1.0
    assert scoring.score_tools(tool, [("calculate", {})]) == 0.5 and scoring.score_tools(tool, [("run_python", {})]) == 0.0
    assert scoring.looping("같은 말을 반복합니다 계속.\n" * 4) and not scoring.looping("한 번만 말합니다.")
    assert scoring.hangul_share("안녕 hello") == pytest.approx(2 / 7)


@pytest.mark.parametrize("answer,passes", [
    ("```python\ndef gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n```", True),
    ("```python\ndef gcd(a, b):\n    return a * b\n```", False),
])
def test_code_answers_are_scored_by_their_hidden_tests(answer, passes):
    item = next(i for i in items("code") if i.check["function"] == "gcd")
    done = subprocess.run([sys.executable, "-c", scoring.test_program(item, answer)], capture_output=True, text=True)
    assert (done.returncode == 0 and "PASSED" in done.stdout) is passes


def wait(url: str, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = httpx.get(f"{url}/api/bench/runs/{run_id}").json()
        if run["status"] != "running":
            return run
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_run_is_stored_exported_and_a_chat_goes_first(isolated_data):
    engine = FakeChatEngine(token_seconds=0.05)  # every answer "ok": 50 ms
    with serve(create_app(make_settings(isolated_data), engines={"chat": engine})) as url:
        started = httpx.post(url + "/api/bench/runs", json={"models": ["chat"], "tasks": ["reasoning", "json"],
                                                            "seeds": 2, "quick": True})
        assert started.status_code == 201 and started.json()["total"] == 2 + 20 * 2
        run_id = started.json()["id"]
        time.sleep(0.3)
        with httpx.stream("POST", url + "/chat_stream_sse_fetch", json={"message": "hi"}, timeout=60) as r:
            frames = read_frames(r)
        assert frames[-2]["type"] == "done"
        assert frames[-2]["timings"]["wait_ms"] < 500  # it waited for the answer under way at most, not the run
        during = httpx.get(f"{url}/api/bench/runs/{run_id}").json()
        assert during["status"] == "running" and during["progress"]["done"] < during["progress"]["total"]
        run = wait(url, run_id)
        assert run["status"] == "done" and {(r["task"], r["language"]) for r in run["results"]} == {
            ("reasoning", "ko"), ("reasoning", "en"), ("json", "ko"), ("json", "en")}
        assert all(r["answers"] == 10 and r["invalid_json"] == (10 if r["task"] == "json" else 0) for r in run["results"])
        assert run["suite"] == "pkc-mark-1" and run["hardware"]["cores"] and "0" in run["speed"]["chat"]["depths"]
        assert run["speed"]["chat"]["load_s"] is not None and "load chat" in engine.log  # timed through the slot
        csv_text = httpx.get(f"{url}/api/bench/runs/{run_id}?format=csv").text
        assert csv_text.splitlines()[0].lstrip("\ufeff").startswith("model,task,language,score") and len(csv_text.splitlines()) == 5
        assert httpx.get(url + "/api/bench/runs").json()["runs"][0]["id"] == run_id
    with serve(create_app(make_settings(isolated_data), engines={"chat": FakeChatEngine()})) as url:
        assert httpx.get(f"{url}/api/bench/runs/{run_id}").json()["status"] == "done"  # kept across restarts


def test_the_load_of_a_model_already_loaded_is_timed_through_the_slot(isolated_data):
    """A resident model reported no load time before: PKC Mark unloads it and loads it again."""
    engine = FakeChatEngine()
    engine.load_seconds = 0.2
    with serve(create_app(make_settings(isolated_data), engines={"chat": engine})) as url:
        with httpx.stream("POST", url + "/chat_stream_sse_fetch", json={"message": "hi"}, timeout=60) as r:
            assert read_frames(r)[-2]["type"] == "done"
        assert engine.log == ["load chat"]  # resident now
        run_id = httpx.post(url + "/api/bench/runs", json={"models": ["chat"], "tasks": ["reasoning"], "seeds": 1,
                                                           "quick": True}).json()["id"]
        run = wait(url, run_id)
    assert run["status"] == "done" and engine.log[:3] == ["load chat", "unload chat", "load chat"]
    assert 0.2 <= run["speed"]["chat"]["load_s"] < 5  # the reload, timed from Loading to Ready


def test_cancel_frees_the_slot_and_bad_runs_are_refused(isolated_data):
    engine = FakeChatEngine(token_seconds=0.05)
    with serve(create_app(make_settings(isolated_data), engines={"chat": engine})) as url:
        for body, status in [({"models": ["nope"], "tasks": ["json"]}, 404), ({"models": ["chat"], "tasks": ["chess"]}, 422),
                             ({"models": ["chat"], "tasks": ["json"], "seeds": 9}, 422), ({"models": []}, 422)]:
            assert httpx.post(url + "/api/bench/runs", json=body).status_code == status, body
        run_id = httpx.post(url + "/api/bench/runs", json={"models": ["chat"], "tasks": ["instruct"]}).json()["id"]
        progress: list[str] = []

        def follow() -> None:
            with httpx.stream("GET", f"{url}/api/bench/runs/{run_id}/events", timeout=60) as events:
                progress.extend(line for line in events.iter_lines() if line.startswith("data:"))

        reader = threading.Thread(target=follow)
        reader.start()
        time.sleep(0.5)
        assert httpx.post(url + "/api/bench/runs", json={"models": ["chat"], "tasks": ["json"]}).status_code == 409
        cancelled = httpx.post(f"{url}/api/bench/runs/{run_id}/cancel").json()
        assert cancelled["status"] == "cancelled"
        slot = httpx.get(url + "/api/slot").json()
        assert slot["holders"] == [] and slot["queue"] == 0  # freed at once
        reader.join(10)
        assert progress and progress[-1] == "data: [DONE]"
        assert httpx.get(f"{url}/api/bench/runs/{run_id}").json()["status"] == "cancelled"


def test_a_quick_run_on_the_embedded_model_through_the_real_engine(isolated_data):
    settings = make_settings(isolated_data, max_tokens=64)
    settings.models.scan_on_start = False
    with serve(create_app(settings)) as url:
        run_id = httpx.post(url + "/api/bench/runs", json={"models": ["chat"], "tasks": ["reasoning", "documents"], "seeds": 1,
                                                           "quick": True}).json()["id"]
        run = wait(url, run_id, timeout=300)
        assert run["status"] == "done", run["error"]
        speed = run["speed"]["chat"]
        assert speed["gen_tokens_per_s"] > 0 and speed["depths"]["0"]["ttft_ms"] > 0 and speed["load_s"] > 0
        assert speed["fully_on_gpu"] is False  # the tests' models run with 0 GPU layers
        assert speed["depths"]["2000"]["prompt_tokens"] > 1500  # a 2k-token prompt really went in
        rows = {(r["task"], r["language"]): r for r in run["results"]}
        assert set(rows) == {("reasoning", "ko"), ("reasoning", "en"), ("documents", "ko"), ("documents", "en")}
        assert all(0 <= r["score"] <= 1 and r["answers"] == 5 for r in rows.values())


def test_an_image_model_is_timed_and_a_vision_model_answers_the_picture_task(isolated_data, tmp_path, tiny_mmproj):
    from tests.conftest import image_settings, vision_settings
    from tests.fakes import FakeImageEngine

    checkpoint = tmp_path / "fake-sdxs.safetensors"
    checkpoint.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    settings = image_settings(isolated_data / "image", checkpoint)
    engines = {"chat": FakeChatEngine(), "image": FakeImageEngine(settings.image)}
    with serve(create_app(settings, engines=engines)) as url:
        started = httpx.post(url + "/api/bench/runs", json={"models": ["chat", "image"], "tasks": ["json"], "seeds": 1,
                                                            "quick": True}).json()
        assert started["total"] == (2 + 10) + 1  # the image model: one timed picture, no text tasks
        run = wait(url, started["id"])
        assert run["status"] == "done" and run["speed"]["image"]["kind"] == "image"
        assert run["speed"]["image"]["size"] and run["speed"]["image"]["steps"] >= 1
        assert {r["model"] for r in run["results"]} == {"chat"}
    with serve(create_app(vision_settings(isolated_data / "vision", tiny_mmproj))) as url:
        run_id = httpx.post(url + "/api/bench/runs", json={"models": ["vision"], "tasks": ["vision", "json"], "seeds": 1,
                                                           "quick": True}).json()["id"]
        run = wait(url, run_id, timeout=300)
        assert run["status"] == "done", run["error"]
        assert {(r["task"], r["language"]) for r in run["results"]} == {("vision", "ko"), ("vision", "en")}
        assert all(r["answers"] == 5 and r["failed"] == 0 for r in run["results"])  # random weights: scores ~0
        assert run["speed"]["vision"]["image_ttft_ms"] > 0


def test_the_benchmark_tells_smollm2_from_its_random_weight_twin(isolated_data, tmp_path):
    """The same architecture with meaningless weights (quantisation blocks shuffled) must score
    below the real model where the real one can do anything: here, English summaries."""
    from settings import embedded_chat_model_path
    from tests.test_model_library import scanned
    from tests.tiny_models import random_twin

    random_twin(embedded_chat_model_path(), tmp_path / "twin" / "random-twin.gguf")
    settings = make_settings(isolated_data, max_tokens=96)
    settings.models.dirs = [tmp_path / "twin"]
    with serve(create_app(settings)) as url:
        twin = next(m["id"] for m in scanned(url)["models"] if m["name"] == "random-twin")
        run_id = httpx.post(url + "/api/bench/runs", json={"models": ["chat", twin], "tasks": ["summary"], "seeds": 1,
                                                           "quick": True}).json()["id"]
        run = wait(url, run_id, timeout=400)
        assert run["status"] == "done", run["error"]
        score = {(r["model"], r["language"]): r["score"] for r in run["results"]}
        assert score[("chat", "en")] > score[(twin, "en")], score
        assert run["recommendation"].get("요약") == "chat"
