"""A small conversation history over several days, written straight into a fresh store (the
analytics tests and the dashboard's browser test label it through the real pipeline)."""
from __future__ import annotations

import asyncio
from pathlib import Path

from store import open_stores

# (day, session title, [(role, text)]): emotions chosen so each is unmistakable.
HISTORY = [
    ("2026-11-02", "시험 결과", [("user", "드디어 시험에 합격했어요! 너무 기뻐요!"),
                              ("assistant", "축하드려요! 정말 잘됐네요.")]),
    ("2026-11-02", "강아지", [("user", "오늘 키우던 강아지가 하늘나라로 갔어요. 너무 슬퍼요."),
                            ("assistant", "마음이 많이 아프시겠어요.")]),
    ("2026-11-09", "택배 문제", [("user", "택배가 일주일째 안 오는데 고객센터는 전화도 안 받아요. 진짜 화가 나요!"),
                              ("assistant", "불편을 드려 죄송합니다.")]),
    ("2026-11-16", "Trip", [("user", "I got tickets to my favourite singer's concert! So excited!"),
                           ("assistant", "That's wonderful news!")]),
    ("2026-11-16", "번역 부탁", [("user", "이 문장을 영어로 번역해 줘: 서울에서 축제가 열렸어요."),
                              ("assistant", "A festival was held in Seoul.")]),
]


async def write_history(data: Path) -> dict[str, str]:
    """The sessions, their turns dated on the fixture's days; {title: session id}."""
    store = (await open_stores(data / "aione.sqlite3", data / "logs")).sessions
    ids = {}
    try:
        for day, title, turns in HISTORY:
            session = await store.create_session(title)
            ids[title] = session["id"]
            for n, (role, text) in enumerate(turns):
                metrics = {"model": "fixture-model", "tokens_per_s": 50.0 + n, "ttft_ms": 200.0,
                           "completion_tokens": 10, "prompt_tokens": 20} if role == "assistant" else {}
                turn = await store.add_turn(session["id"], role, text, **metrics)
                await store.db.connection.execute("UPDATE turns SET created = ? WHERE id = ?",
                                               (f"{day}T10:0{n}:00.000Z", turn["id"]))
            await store.db.connection.commit()
    finally:
        await store.close()
    return ids


def write_history_sync(data: Path) -> dict[str, str]:
    """From sync code, even where an event loop runs (Playwright's sync API): its own thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, write_history(data)).result()
