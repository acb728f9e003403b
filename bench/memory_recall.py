"""Memories across conversations, through the page's route with the embedded model and embedder.

(1) Retrieval: the 40 Korean and 40 English memories of tests/memory_eval_set.py stored, each
    asked about in a new conversation with a question in other words: the share whose memory is
    among the done frame's `memories_used` (target >= 0.95, Korean >= English - 0.03); the
    unrelated questions' memories on average (target <= 1); the harder requests that need a
    memory without asking about it, reported beside.
(2) Selectivity: the ordinary turns without a cue (>= 100, both languages) in conversations of
    10: memories stored (target 0), and proposals made once the conversations went quiet.
(3) Cost at 10,000 stored memories, new conversations with memory on and off (the conversation's
    switch), alternating: the server's wait before the model (the done frame's wait_ms: saving the
    message, the retrieval) p50/p95 and the p95 difference (target <= 30 ms); the retrieval alone
    (MemoryBook.recall) p50/p95; the client's time to the first token on and off, which also holds
    evaluating the memory part's tokens (each question is a new conversation, so no prompt has it
    cached); the memory part's tokens (GET /context) against its budget.

    .venv/bin/python bench/memory_recall.py [--only recall|selectivity|cost] [--stored 10000]
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

from bench.long_conversation import chat  # noqa: E402
from bench.server_process import ServerProcess  # noqa: E402
from tests.memory_eval_set import ENGLISH, IMPLICIT, KOREAN, NO_CUE, UNRELATED  # noqa: E402

ENV = {"AIONE_CHAT__MAX_TOKENS": "2", "AIONE_CHAT__TEMPERATURE": "0", "AIONE_MEMORY__QUIET_S": "1"}


def used_ids(server: ServerProcess, question: str) -> list[int]:
    result = chat(server, question, None)
    assert result["done"] is not None, result["error"]
    return [memory["id"] for memory in result["done"]["memories_used"]]


def recall() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess(ENV, Path(folder), wait_for_model=None)
        try:
            ids = {fact: server.client.post(server.url + "/api/memories", json={"text": fact}).json()["id"]
                   for fact, _ in KOREAN + ENGLISH}
            found = {"ko": 0, "en": 0}
            misses = []
            for language, pairs in (("ko", KOREAN), ("en", ENGLISH)):
                for fact, question in pairs:
                    if ids[fact] in used_ids(server, question):
                        found[language] += 1
                    else:
                        misses.append(question)
            unrelated = [len(used_ids(server, question)) for question in UNRELATED]
            implicit = sum(ids[fact] in used_ids(server, request) for fact, request in IMPLICIT)
            per_question = [len(used_ids(server, question)) for _, question in KOREAN[:10] + ENGLISH[:10]]
        finally:
            server.close()
    return {"korean": found["ko"] / len(KOREAN), "english": found["en"] / len(ENGLISH),
            "all": (found["ko"] + found["en"]) / (len(KOREAN) + len(ENGLISH)), "misses": misses,
            "unrelated_mean": statistics.mean(unrelated), "implicit": implicit / len(IMPLICIT),
            "used_per_question": statistics.mean(per_question)}


def selectivity() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess(ENV, Path(folder), wait_for_model=None)
        try:
            session = None
            for at, message in enumerate(NO_CUE):
                session = None if at % 10 == 0 else session
                session = chat(server, message, session)["session_id"]
            time.sleep(4)  # quiet: the proposal passes run (1 s after each conversation's last answer)
            deadline = time.monotonic() + 60
            while (server.slot()["holders"] or server.slot()["queue"]) and time.monotonic() < deadline:
                time.sleep(0.2)
            memories = server.client.get(server.url + "/api/memories").json()["memories"]
            proposals = server.client.get(server.url + "/api/memories/proposals").json()["proposals"]
        finally:
            server.close()
    return {"turns": len(NO_CUE), "memories": len(memories), "proposals": len(proposals)}


SUBJECTS = ["내 동료", "우리 팀", "내 친구", "우리 가족", "내 이웃", "my colleague", "my friend", "our team", "my cousin",
            "my neighbour"]
THINGS = ["좋아하는 음식은", "사는 곳은", "취미는", "쓰는 노트북은", "다니는 병원은", "favourite band is", "home town is",
          "hobby is", "laptop is", "dentist is"]
VALUES = ["김치찌개", "부산", "테니스", "맥북", "서울대병원", "Radiohead", "Leeds", "chess", "ThinkPad", "Dr. Kim", "수원",
          "배드민턴", "Lyon", "sushi", "kayaking"]


async def fill(data: Path, count: int) -> None:
    """`count` distinct memories written with their vectors straight into the store (the API
    would encode them one by one)."""
    from models.embedder import UseMultilingualEmbedder
    from store import open_stores

    rng = random.Random(7)
    texts = list(dict.fromkeys(f"{rng.choice(SUBJECTS)}의 {rng.choice(THINGS)} {rng.choice(VALUES)} #{i}"
                               for i in range(count)))
    embedder = UseMultilingualEmbedder()
    vectors = embedder.encode(texts)
    stores = await open_stores(data / "aione.sqlite3", data / "logs")
    try:
        for text, vector in zip(texts, vectors):
            await stores.memories.add(text, None, vector=vector, vector_model=embedder.name)
        for fact, _ in KOREAN + ENGLISH:
            await stores.memories.add(fact, None, vector=embedder.encode([fact])[0], vector_model=embedder.name)
    finally:
        await stores.close()


def recall_alone(data: Path, questions: list[str]) -> list[float]:
    """MemoryBook.recall on its own, over the same store."""
    from memories.book import MemoryBook
    from models.embedder import shared_embedder
    from settings import Settings
    from store import open_stores

    async def run() -> list[float]:
        settings = Settings(_env_file=None)
        stores = await open_stores(data / "aione.sqlite3", data / "logs")
        book = MemoryBook(stores.memories, shared_embedder(settings.rag), settings.memory)
        try:
            await book.ready()
            times = []
            for question in questions:
                started = time.perf_counter()
                await book.recall(question, {None})
                times.append((time.perf_counter() - started) * 1000)
            return times
        finally:
            await book.close()
            await stores.close()

    return asyncio.run(run())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def first_token_ms(server: ServerProcess, question: str, memory_off: bool) -> tuple[float, float, str]:
    """Request to the first token seen by the client (to the end, for an answer with none), and
    the server's wait before the model."""
    session = server.client.post(server.url + "/api/sessions", json={}).json()["id"]
    server.client.put(server.url + f"/api/sessions/{session}/memory", json={"memory_off": memory_off})
    started = time.perf_counter()
    result = chat(server, question, session)
    assert result["done"] is not None, result["error"]
    client = result["first_token_ms"] or (time.perf_counter() - started) * 1000
    return client, result["done"]["timings"]["wait_ms"], session


def cost(stored: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        asyncio.run(fill(data, stored))
        questions = [question for _, question in KOREAN + ENGLISH]
        alone = recall_alone(data, questions[:rounds] * 2)
        server = ServerProcess(ENV | {"AIONE_MEMORY__PROPOSALS": "false"}, data, wait_for_model=None)
        try:
            first_token_ms(server, "warm up", True)
            first_token_ms(server, "내 이름이 뭐였지?", False)  # the index built, the embedder loaded
            on, off, wait_on, wait_off, sessions = [], [], [], [], []
            for question in questions[:rounds]:
                for memory_off in ((False, True) if len(on) % 2 == 0 else (True, False)):
                    ms, wait, session = first_token_ms(server, question, memory_off)
                    (off if memory_off else on).append(ms)
                    (wait_off if memory_off else wait_on).append(wait)
                    if not memory_off:
                        sessions.append(session)
            parts = [part["tokens"] for session in sessions[:20]
                     for part in server.client.get(server.url + f"/api/sessions/{session}/context").json()["parts"]
                     if part["kind"] == "memory"]
        finally:
            server.close()
    return {"stored": stored + len(KOREAN) + len(ENGLISH), "rounds": rounds,
            "on_p50": percentile(on, 0.5), "on_p95": percentile(on, 0.95), "off_p50": percentile(off, 0.5),
            "off_p95": percentile(off, 0.95), "client_p95_added_ms": percentile(on, 0.95) - percentile(off, 0.95),
            "wait_on_p50": percentile(wait_on, 0.5), "wait_on_p95": percentile(wait_on, 0.95),
            "wait_off_p50": percentile(wait_off, 0.5), "wait_off_p95": percentile(wait_off, 0.95),
            "p95_added_ms": percentile(wait_on, 0.95) - percentile(wait_off, 0.95),
            "recall_p50": percentile(alone, 0.5), "recall_p95": percentile(alone, 0.95),
            "part_tokens_max": max(parts, default=0), "budget": 300}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["recall", "selectivity", "cost"], default=None)
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    results: dict = {}
    if args.only in (None, "recall"):
        r = results["recall"] = recall()
        print(f"(1) right memory among memories_used: all {r['all']:.3f}, Korean {r['korean']:.3f}, English "
              f"{r['english']:.3f} (target >= 0.95, Korean >= English - 0.03); unrelated questions bring "
              f"{r['unrelated_mean']:.2f} on average (target <= 1); memories per question {r['used_per_question']:.2f}; "
              f"requests that need a memory without asking: {r['implicit']:.3f}; missed: {r['misses']}")
    if args.only in (None, "selectivity"):
        s = results["selectivity"] = selectivity()
        print(f"(2) {s['turns']} ordinary turns without a cue: {s['memories']} memories stored (target 0), "
              f"{s['proposals']} proposals after the conversations went quiet")
    if args.only in (None, "cost"):
        c = results["cost"] = cost(args.stored, args.rounds)
        print(f"(3) {c['stored']} memories stored, {c['rounds']} new conversations each way: the server's wait "
              f"before the model with memory on p50 {c['wait_on_p50']:.1f} / p95 {c['wait_on_p95']:.1f} ms, off "
              f"p50 {c['wait_off_p50']:.1f} / p95 {c['wait_off_p95']:.1f} ms: p95 added {c['p95_added_ms']:.1f} ms "
              f"(target <= 30); the retrieval alone p50 {c['recall_p50']:.1f} / p95 {c['recall_p95']:.1f} ms; "
              f"client TTFT on p50 {c['on_p50']:.0f} / p95 {c['on_p95']:.0f} ms, off p50 {c['off_p50']:.0f} / "
              f"p95 {c['off_p95']:.0f} ms (with the memory part's tokens to evaluate); memory part at most "
              f"{c['part_tokens_max']} tokens (budget {c['budget']})")
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
