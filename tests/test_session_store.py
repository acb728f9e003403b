"""Sessions and turns in SQLite + JSONL: migrations, CRUD, metrics, restart."""
from __future__ import annotations

import json
import sqlite3

import pytest

from core.errors import NotFound
from store import MIGRATIONS, open_stores

pytestmark = pytest.mark.anyio


async def test_migrations_are_recorded_once_and_wal_is_on(isolated_data):
    for _ in range(2):  # opening twice must not re-apply
        s = (await open_stores(isolated_data / "db.sqlite3", isolated_data / "logs")).sessions
        await s.close()
    db = sqlite3.connect(isolated_data / "db.sqlite3")
    assert [r[0] for r in db.execute("SELECT name FROM _migrations")] == [m.__name__ for m in MIGRATIONS]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_session_lifecycle(store):
    a = await store.create_session()
    b = await store.create_session("두 번째")
    assert {s["id"] for s in await store.list_sessions()} == {a["id"], b["id"]}
    renamed = await store.rename_session(a["id"], "여행 계획")
    assert renamed["title"] == "여행 계획"
    await store.delete_session(b["id"])
    assert [s["id"] for s in await store.list_sessions()] == [a["id"]]
    with pytest.raises(NotFound):
        await store.get_session(b["id"])
    with pytest.raises(NotFound):
        await store.rename_session("missing", "x")


async def test_title_comes_from_the_first_user_message(store):
    s = await store.create_session()
    await store.add_turn(s["id"], "user", "  서울에서   부산까지\n가는 가장 빠른 방법은 무엇인가요? 비용과 시간도 자세히 알려주세요  ")
    await store.add_turn(s["id"], "user", "second message does not rename")
    title = (await store.get_session(s["id"]))["title"]
    assert title.startswith("서울에서 부산까지 가는 가장 빠른 방법은")
    assert len(title) == 40 and "\n" not in title and "  " not in title


async def test_turns_keep_their_metrics_in_sqlite_and_jsonl(store, isolated_data):
    s = await store.create_session()
    await store.add_turn(s["id"], "user", "안녕")
    await store.add_turn(s["id"], "assistant", "안녕하세요!", model="m.gguf", prompt_tokens=12,
                         completion_tokens=5, ttft_ms=40.5, tokens_per_s=88.0, finish_reason="done")
    turns = await store.list_turns(s["id"])
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[1]["completion_tokens"] == 5 and turns[1]["finish_reason"] == "done" and turns[1]["ttft_ms"] == 40.5
    assert await store.history(s["id"]) == [{"role": "user", "content": "안녕", "images": [], "id": turns[0]["id"]},
                                            {"role": "assistant", "content": "안녕하세요!", "images": [],
                                             "id": turns[1]["id"]}]
    lines = [json.loads(line) for f in (isolated_data / "logs").glob("*.jsonl") for line in f.read_text("utf-8").splitlines()]
    logged = [line for line in lines if line["event"] == "turn"]
    assert [line["text"] for line in logged] == ["안녕", "안녕하세요!"]
    assert logged[1]["tokens_per_s"] == 88.0
    with pytest.raises(ValueError):
        await store.add_turn(s["id"], "assistant", "x", bogus=1)


async def test_everything_survives_a_restart(isolated_data):
    first = (await open_stores(isolated_data / "db.sqlite3", isolated_data / "logs")).sessions
    s = await first.create_session()
    await first.add_turn(s["id"], "user", "기억해 줘")
    await first.add_turn(s["id"], "assistant", "partial ans", finish_reason="stopped")
    await first.close()
    second = (await open_stores(isolated_data / "db.sqlite3", isolated_data / "logs")).sessions
    turns = await second.list_turns(s["id"])
    await second.close()
    assert [(t["text"], t["finish_reason"]) for t in turns] == [("기억해 줘", None), ("partial ans", "stopped")]


async def test_deleting_a_session_removes_its_turns(store, isolated_data):
    s = await store.create_session()
    await store.add_turn(s["id"], "user", "bye")
    await store.delete_session(s["id"])
    db = sqlite3.connect(isolated_data / "db.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0
