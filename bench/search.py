"""Message search over 100,000 turns: latency of GET /api/search's query (store.turn_search.search)
against the raw FTS5 lookup it is built on and a plain LIKE scan, in the same run.

Turns are Korean and English sentences with particles attached; queries are two-syllable
Korean nouns (the case a trigram index cannot serve), longer Korean words and English words.

    .venv/bin/python bench/search.py [--turns 100000] [--queries 200]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from store import open_stores  # noqa: E402
from store.sessions import SessionStore  # noqa: E402
from store.turn_search import index_tokens, match_query, search  # noqa: E402

NOUNS = ["서울", "부산", "축제", "날씨", "회의", "보고서", "강아지", "고양이", "여행", "계약", "음식", "시험", "병원",
         "학교", "회사", "가족", "친구", "영화", "음악", "커피", "도서관", "지하철", "바다", "산책", "운동", "프로젝트"]
PARTICLES = ["에서", "은", "는", "이", "가", "을", "를", "에", "로", "와", "도", "까지"]
ENGLISH = ["festival", "weather", "meeting", "report", "travel", "contract", "music", "coffee", "library", "project"]


def sentence(rng: random.Random) -> str:
    words = [rng.choice(NOUNS) + rng.choice(PARTICLES) for _ in range(rng.randint(4, 12))]
    words += [rng.choice(ENGLISH) for _ in range(rng.randint(0, 3))]
    rng.shuffle(words)
    return " ".join(words) + "."


async def build(folder: Path, turns: int) -> SessionStore:
    store = (await open_stores(folder / "aione.sqlite3", folder / "logs")).sessions
    rng, db = random.Random(1), store.db.connection
    for start in range(0, turns, 10_000):
        session = await store.create_session(f"session {start}")
        rows = [(session["id"], "user" if n % 2 == 0 else "assistant", sentence(rng)) for n in range(10_000)]
        cur = await db.execute("SELECT COALESCE(MAX(id), 0) FROM turns")
        first = (await cur.fetchone())[0] + 1
        await db.executemany("INSERT INTO turns (session_id, role, text, created) VALUES (?, ?, ?, '2026-11-01T00:00:00Z')",
                             rows)
        await db.executemany("INSERT INTO turn_search (rowid, tokens) VALUES (?, ?)",
                             [(first + i, index_tokens(text)) for i, (_, _, text) in enumerate(rows)])
        await db.commit()
    return store


async def timed(run, queries: list[str]) -> list[float]:
    times = []
    for q in queries:
        started = time.perf_counter()
        await run(q)
        times.append((time.perf_counter() - started) * 1000)
    return times


def p(values: list[float], q: float) -> float:
    return round(sorted(values)[min(len(values) - 1, int(q * len(values)))], 2)


async def main_async(turns: int, count: int) -> dict:
    rng = random.Random(2)
    queries = [rng.choice([rng.choice(NOUNS), rng.choice(NOUNS) + rng.choice(PARTICLES), rng.choice(ENGLISH)])
               for _ in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        store = await build(Path(tmp), turns)
        build_s = time.perf_counter() - started
        db = store.db.connection

        async def ours(q: str) -> None:
            await search(db, q, limit=30)

        async def raw_fts(q: str) -> None:
            async with db.execute("SELECT rowid FROM turn_search WHERE turn_search MATCH ? ORDER BY rank LIMIT 30",
                                  (match_query(q),)) as cur:
                await cur.fetchall()

        async def like_scan(q: str) -> None:
            async with db.execute("SELECT id FROM turns WHERE text LIKE ? LIMIT 30 OFFSET 1000000", (f"%{q}%",)) as cur:
                await cur.fetchall()  # OFFSET: the whole table is scanned, as a ranked LIKE search must

        await ours(queries[0])
        results = {name: await timed(fn, queries) for name, fn in
                   (("search", ours), ("raw_fts5", raw_fts), ("like_scan", like_scan))}
        await store.close()
    figures = {name: {"p50_ms": p(t, 0.5), "p95_ms": p(t, 0.95), "mean_ms": round(statistics.mean(t), 2)}
               for name, t in results.items()}
    return {"turns": turns, "queries": count, "build_s": round(build_s, 1), **figures,
            "ratio_p95_search_vs_raw_fts5": round(figures["search"]["p95_ms"] / figures["raw_fts5"]["p95_ms"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.turns, args.queries))
    for name in ("search", "raw_fts5", "like_scan"):
        print(f"{name:10} p50 {result[name]['p50_ms']} ms  p95 {result[name]['p95_ms']} ms  (over {args.turns} turns)")
    print(f"search p95 / raw FTS5 p95 = {result['ratio_p95_search_vs_raw_fts5']} (goal: search p95 <= 50 ms)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
