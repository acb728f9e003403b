"""Regenerate, edit and branch; feedback; message search; export in every format; import."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest

from chat import create_app
from settings import DEFAULT_SYSTEM_PROMPT
from tests.conftest import make_settings, read_frames, serve
from tests.fakes import FakeChatEngine


def chat(client: httpx.Client, body: dict) -> list:
    with client.stream("POST", "/chat_stream_sse_fetch", json=body) as response:
        assert response.status_code == 200, response.read()
        return read_frames(response)


def turns(client: httpx.Client, session_id: str) -> list[dict]:
    return client.get(f"/api/sessions/{session_id}/turns").json()["turns"]


def test_a_tree_with_two_regenerations_and_an_edit_with_the_real_model(isolated_data: Path) -> None:
    with serve(create_app(make_settings(isolated_data, max_tokens=12))) as url, httpx.Client(base_url=url,
                                                                                             timeout=120) as client:
        first = chat(client, {"message": "Name a colour."})
        session_id, answer1 = first[0]["session_id"], first[-2]["turn_id"]
        follow = chat(client, {"message": "Name an animal.", "session_id": session_id})
        question2 = turns(client, session_id)[2]["id"]
        answer2a = follow[-2]["turn_id"]
        answer2b = chat(client, {"regenerate": answer2a})[-2]["turn_id"]
        answer2c = chat(client, {"regenerate": answer2b, "session_id": session_id})[-2]["turn_id"]
        path = turns(client, session_id)
        assert [t["id"] for t in path][-1] == answer2c and path[-1]["sibling_ids"] == [answer2a, answer2b, answer2c]
        assert path[-1]["sibling_index"] == 2 and path[-1]["parent_id"] == question2
        assert len([t for t in path if t["role"] == "user"]) == 2  # a regeneration adds no message

        edited = chat(client, {"edit": question2, "message": "Name a fruit.", "session_id": session_id})
        path = turns(client, session_id)
        assert [t["text"] for t in path if t["role"] == "user"] == ["Name a colour.", "Name a fruit."]
        assert path[2]["sibling_ids"] == [question2, path[2]["id"]] and path[3]["id"] == edited[-2]["turn_id"]

        # The branch decides what the model sees: a follow-up on the edited branch sends fewer
        # prompt tokens than the same follow-up on the original branch (its answers are longer).
        on_edit = chat(client, {"message": "And another?", "session_id": session_id})[-2]["usage"]["prompt_tokens"]
        switched = client.post(f"/api/sessions/{session_id}/branch", json={"turn_id": answer2a}).json()["turns"]
        assert [t["id"] for t in switched] == [path[0]["id"], answer1, question2, answer2a]
        on_original = chat(client, {"message": "And another?", "session_id": session_id})
        history = turns(client, session_id)
        assert [t["text"] for t in history if t["role"] == "user"] == ["Name a colour.", "Name an animal.",
                                                                       "And another?"]
        assert on_original[-2]["usage"]["prompt_tokens"] != on_edit

        # Feedback on answers only; bad input refused, nothing changed.
        assert client.put(f"/api/turns/{answer2b}/feedback", json={"rating": 1, "comment": "좋아요"}).status_code == 200
        assert client.put(f"/api/turns/{question2}/feedback", json={"rating": 1}).status_code == 422
        assert client.put(f"/api/turns/{answer2b}/feedback", json={"rating": 5}).status_code == 422
        assert client.put("/api/turns/999999/feedback", json={"rating": 1}).status_code == 404
        shown = client.post(f"/api/sessions/{session_id}/branch", json={"turn_id": answer2b}).json()["turns"]
        assert shown[-1]["id"] == answer2b and shown[-1]["rating"] == 1 and shown[-1]["comment"] == "좋아요"
        assert client.post(f"/api/sessions/{session_id}/branch", json={"turn_id": 999999}).status_code == 404
        assert client.post("/chat_stream_sse_fetch", json={"regenerate": question2}).status_code == 422
        assert client.post("/chat_stream_sse_fetch", json={"edit": answer1, "message": "x"}).status_code == 422
        assert client.post("/chat_stream_sse_fetch", json={"edit": question2, "message": " "}).status_code == 422
        assert client.post("/chat_stream_sse_fetch", json={"regenerate": 999999}).status_code == 404


def test_branch_switching_changes_the_prompt_exactly(isolated_data: Path) -> None:
    fake = FakeChatEngine(replies=[["A1"], ["B1"], ["A2"], ["C1"]])
    with serve(create_app(make_settings(isolated_data), engines={"chat": fake})) as url, httpx.Client(
            base_url=url, timeout=30) as client:
        session_id = chat(client, {"message": "first"})[0]["session_id"]
        regen_of = turns(client, session_id)[1]["id"]
        chat(client, {"regenerate": regen_of})  # B1 beside A1
        assert fake.prompts[-1][1:] == [{"role": "user", "content": "first"}]
        chat(client, {"message": "second", "session_id": session_id})
        assert [m["content"] for m in fake.prompts[-1][1:]] == ["first", "B1", "second"]
        client.post(f"/api/sessions/{session_id}/branch", json={"turn_id": regen_of})
        chat(client, {"message": "third", "session_id": session_id})
        assert [m["content"] for m in fake.prompts[-1][1:]] == ["first", "A1", "third"]


def test_straight_sessions_from_before_become_chains(isolated_data: Path) -> None:
    import asyncio
    import sqlite3

    from store import open_stores

    isolated_data.mkdir(parents=True)
    db = isolated_data / "aione.sqlite3"

    async def old_store() -> None:
        store = (await open_stores(db, isolated_data / "logs")).sessions
        session = await store.create_session("old")
        for n in range(4):
            await store.add_turn(session["id"], "user" if n % 2 == 0 else "assistant", f"turn {n}")
        await store.close()

    asyncio.run(old_store())
    with sqlite3.connect(db) as raw:  # undo m006 as if the data were from before it
        raw.execute("DELETE FROM _migrations WHERE name = 'm006_tree_feedback_search'")
        raw.execute("DROP TABLE turn_feedback")
        raw.execute("DROP TABLE turn_search")
        raw.execute("DROP INDEX turns_by_parent")
        raw.execute("ALTER TABLE turns DROP COLUMN parent_id")
        raw.execute("ALTER TABLE sessions DROP COLUMN active_leaf")
    with serve(create_app(make_settings(isolated_data))) as url, httpx.Client(base_url=url, timeout=30) as client:
        session_id = client.get("/api/sessions").json()["sessions"][0]["id"]
        chain = turns(client, session_id)
        assert [t["text"] for t in chain] == [f"turn {n}" for n in range(4)]
        assert [t["parent_id"] for t in chain] == [None] + [t["id"] for t in chain[:-1]]
        assert client.get("/api/search", params={"q": "turn"}).json()["results"]  # indexed by the migration


def test_search_finds_korean_with_particles_and_filters(isolated_data: Path) -> None:
    fake = FakeChatEngine(replies=[["부산은 바다가 유명해요."], ["ok"]])
    with serve(create_app(make_settings(isolated_data), engines={"chat": fake})) as url, httpx.Client(
            base_url=url, timeout=30) as client:
        one = chat(client, {"message": "서울에서 열린 축제에 다녀왔어요"})[0]["session_id"]
        two = chat(client, {"message": "The Seoul festival was great"})[0]["session_id"]
        hits = client.get("/api/search", params={"q": "서울"}).json()["results"]
        assert [h["session_id"] for h in hits if h["matched"] == "text"] == [one]
        assert hits[0]["snippet"]["highlights"] == [[0, 2]] and hits[0]["snippet"]["text"].startswith("서울에서")
        assert client.get("/api/search", params={"q": "축제에"}).json()["results"][0]["session_id"] == one
        assert client.get("/api/search", params={"q": "seoul"}).json()["results"][0]["session_id"] == two
        assert client.get("/api/search", params={"q": "바다"}).json()["results"][0]["role"] == "assistant"
        assert client.get("/api/search", params={"q": "서울", "session_id": two}).json()["results"] == []
        assert client.get("/api/search", params={"q": "축"}).json()["results"][0]["session_id"] == one  # 1 syllable
        assert client.get("/api/search", params={"q": "100%_"}).json()["results"] == []  # LIKE wildcards are text
        assert client.get("/api/search", params={"q": "  "}).status_code == 422
        assert client.get("/api/search", params={"q": '"서울" OR *'}).status_code == 200  # no FTS syntax leaks


# ---- export and import ----------------------------------------------------------------------------
@pytest.fixture
def rated_tree(isolated_data: Path):
    """A session with one question answered three times (👍, 👎, unrated) and a follow-up."""
    fake = FakeChatEngine(replies=[["good"], ["bad"], ["kept"], ["next answer"]])
    with serve(create_app(make_settings(isolated_data), engines={"chat": fake})) as url, httpx.Client(
            base_url=url, timeout=30) as client:
        session_id = chat(client, {"message": "질문입니다"})[0]["session_id"]
        good = turns(client, session_id)[1]["id"]
        bad = chat(client, {"regenerate": good})[-2]["turn_id"]
        kept = chat(client, {"regenerate": bad})[-2]["turn_id"]
        chat(client, {"message": "follow-up", "session_id": session_id})
        client.put(f"/api/turns/{good}/feedback", json={"rating": 1})
        client.put(f"/api/turns/{bad}/feedback", json={"rating": -1})
        yield client, session_id, {"good": good, "bad": bad, "kept": kept}


def jsonl(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    return [json.loads(line) for line in response.text.splitlines()]


def test_export_formats_field_by_field(rated_tree) -> None:
    client, session_id, ids = rated_tree
    sft = jsonl(client.get("/api/export", params={"format": "openai"}))
    assert sft == [{"messages": [{"role": "user", "content": "질문입니다"}, {"role": "assistant", "content": "kept"},
                                 {"role": "user", "content": "follow-up"},
                                 {"role": "assistant", "content": "next answer"}]}]
    every = jsonl(client.get("/api/export", params={"format": "openai", "all_branches": 1}))
    assert sorted(r["messages"][1]["content"] for r in every) == ["bad", "good", "kept"]
    liked = jsonl(client.get("/api/export", params={"format": "openai", "all_branches": 1, "min_rating": 1}))
    assert [r["messages"][1]["content"] for r in liked] == ["good"]
    share = jsonl(client.get("/api/export", params={"format": "sharegpt"}))
    assert share[0]["conversations"][:2] == [{"from": "human", "value": "질문입니다"}, {"from": "gpt", "value": "kept"}]
    with_context = jsonl(client.get("/api/export", params={"format": "sharegpt", "include_context": 1}))
    assert with_context[0]["conversations"][0] == {"from": "system", "value": DEFAULT_SYSTEM_PROMPT}

    pairs = {(p["chosen"][0]["content"], p["rejected"][0]["content"])
             for p in jsonl(client.get("/api/export", params={"format": "dpo"}))}
    # 👍 beats 👎 and unrated; unrated beats 👎; the two unrated... only one is unrated here.
    assert pairs == {("good", "bad"), ("good", "kept"), ("kept", "bad")}
    dpo = jsonl(client.get("/api/export", params={"format": "dpo"}))[0]
    assert dpo["prompt"] == [{"role": "user", "content": "질문입니다"}] and set(dpo) == {"prompt", "chosen", "rejected"}
    openai_dpo = jsonl(client.get("/api/export", params={"format": "openai-dpo"}))[0]
    assert set(openai_dpo) == {"input", "preferred_output", "non_preferred_output"}
    assert openai_dpo["input"]["messages"] == [{"role": "user", "content": "질문입니다"}]
    assert "\\u" not in client.get("/api/export", params={"format": "openai"}).text  # UTF-8, not escaped

    markdown = client.get("/api/export", params={"format": "markdown", "session_id": session_id})
    assert "# 질문입니다" in markdown.text and "**You**" in markdown.text and "kept" in markdown.text
    bundle = zipfile.ZipFile(io.BytesIO(client.get("/api/export", params={"format": "markdown"}).content))
    assert len(bundle.namelist()) == 1 and bundle.namelist()[0].endswith(".md")
    record = client.get("/api/export", params={"format": "json"}).json()
    turns_out = record["sessions"][0]["turns"]
    assert record["format"] == "pkc-aione-export" and len(turns_out) == 6
    assert {t["id"]: (t["feedback"] or {}).get("rating") for t in turns_out}[ids["good"]] == 1
    assert client.get("/api/export", params={"format": "csv"}).status_code == 422
    with_images = zipfile.ZipFile(io.BytesIO(client.get("/api/export", params={"format": "json",
                                                                              "include_images": 1}).content))
    assert "export.json" in with_images.namelist()


def test_unrated_siblings_prefer_the_one_kept(isolated_data: Path) -> None:
    fake = FakeChatEngine(replies=[["first try"], ["second try"]])
    with serve(create_app(make_settings(isolated_data), engines={"chat": fake})) as url, httpx.Client(
            base_url=url, timeout=30) as client:
        session_id = chat(client, {"message": "q"})[0]["session_id"]
        first = turns(client, session_id)[1]["id"]
        chat(client, {"regenerate": first})
        client.post(f"/api/sessions/{session_id}/branch", json={"turn_id": first})  # the user went back to it
        pairs = jsonl(client.get("/api/export", params={"format": "dpo"}))
        assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [("first try", "second try")]


def test_export_then_import_into_a_fresh_folder_is_identical(rated_tree, tmp_path: Path) -> None:
    client, session_id, _ = rated_tree
    exported = client.get("/api/export", params={"format": "json"}).content
    before = client.get("/api/export", params={"format": "json"}).json()["sessions"]
    fresh = make_settings(tmp_path / "fresh")
    with serve(create_app(fresh)) as url, httpx.Client(base_url=url, timeout=30) as other:
        assert other.post("/api/import", files={"file": ("export.json", exported)}).json() == {
            "imported": [session_id], "skipped": [], "pictures": 0, "memories_imported": 0}
        again = other.post("/api/import", files={"file": ("export.json", exported)}).json()
        assert again == {"imported": [], "skipped": [session_id], "pictures": 0, "memories_imported": 0}  # idempotent
        after = other.get("/api/export", params={"format": "json"}).json()["sessions"]
        assert _shape(after) == _shape(before)
        assert len(other.get("/api/sessions").json()["sessions"]) == 1
        assert other.get("/api/search", params={"q": "질문"}).json()["results"]

        # Bad files: clear 4xx, nothing changed.
        changed = json.loads(exported)
        changed["sessions"][0]["turns"][0]["text"] = "something else"
        conflict = other.post("/api/import", files={"file": ("e.json", json.dumps(changed).encode())})
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "import_conflict"
        broken = json.loads(exported)
        broken["sessions"][0]["id"] = "f" * 32
        broken["sessions"][0]["turns"][1]["parent_id"] = 424242
        assert other.post("/api/import", files={"file": ("e.json", json.dumps(broken).encode())}).status_code == 422
        for bad in (b"{not json", b'{"format": "other"}', b'{"format": "pkc-aione-export", "version": 9}'):
            assert other.post("/api/import", files={"file": ("e.json", bad)}).status_code in (400, 422)
        assert other.post("/api/import", files={"file": ("e.zip", b"PK\x03\x04rest")}).status_code == 400  # not a zip
        assert other.post("/api/import").status_code == 400
        assert len(other.get("/api/sessions").json()["sessions"]) == 1


def _shape(sessions: list[dict]) -> list:
    """A session's tree independent of turn numbering: texts, parents by position, labels, feedback."""
    shaped = []
    for session in sessions:
        position = {t["id"]: i for i, t in enumerate(session["turns"])}
        shaped.append((session["id"], session["title"], position.get(session["active_leaf"]),
                       [(position.get(t["parent_id"]), t["role"], t["text"], t["created"], t["labels"],
                         (t["feedback"] or {}).get("rating")) for t in session["turns"]]))
    return shaped
