"""Turn analysis: how fast the default classifier labels, and what it costs the chat.

1. Labels per second of the embedded classifiers (emotion head + intent rules/head + keywords)
   over the seed sentences, in batches as the worker takes them; and their held-out accuracy.
2. Chat tokens/s with analysis on ÷ off: two server processes with the embedded SmolLM2, each
   with the same backlog of unlabelled turns (the "on" one labels it in the background). They
   take turns: one is paused (SIGSTOP) while the other answers, so only one runs at a time, and
   each waits the same pause between messages (the labeller's chance to work). Tokens/s come
   from the server's own `done` timings.

    .venv/bin/python bench/analysis.py [--runs 6] [--tokens 96] [--backlog 5000] [--pause 0.5]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.labeller import classifiers_from_settings  # noqa: E402
from bench.server_process import ServerProcess  # noqa: E402
from emotion_engine import SEED_DIR, TurnContext, load_seed  # noqa: E402
from models.embedder import shared_embedder  # noqa: E402
from settings import Analysis, Rag  # noqa: E402

QUESTION = "Message {n}: tell me a long story about a lighthouse keeper and a storm."


def labels_per_second(batch: int = 16) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        c = classifiers_from_settings(Analysis(), shared_embedder(Rag()), Path(cache))
        texts = [e.text for p in ("emotion_ko.txt", "emotion_en.txt") for e in load_seed(SEED_DIR / p)]
        c.emotion.classify(texts[:2]), c.intent.classify(texts[:2], [TurnContext()] * 2), c.keywords.terms("워밍업")
        started = time.perf_counter()
        for i in range(0, len(texts), batch):
            part = texts[i:i + batch]
            c.emotion.classify(part)
            c.intent.classify(part, [TurnContext()] * len(part))
            for text in part:
                c.keywords.terms(text)
        elapsed = time.perf_counter() - started
        return {"turns": len(texts), "labels_per_s": round(len(texts) / elapsed, 1),
                "held_out_accuracy": c.emotion.accuracy, "intent_accuracy": c.intent.accuracy}


async def _backlog(data: Path, turns: int) -> None:
    from store import open_stores
    from tests.history_fixture import HISTORY

    store = (await open_stores(data / "aione.sqlite3", data / "logs")).sessions
    try:
        session = await store.create_session("backlog")
        texts = [text for _, _, pairs in HISTORY for _, text in pairs]
        for n in range(turns):
            await store.add_turn(session["id"], "user" if n % 2 == 0 else "assistant", f"{texts[n % len(texts)]} ({n})")
    finally:
        await store.close()


async def _backfill(turns: int) -> dict:
    """The whole pipeline (store → worker → classifiers → store) over a backlog, in-process."""
    from analytics.labeller import TurnAnalyzer
    from store import open_stores
    from store.labels import LabelStore

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        await _backlog(data, turns)
        store = (await open_stores(data / "aione.sqlite3", data / "logs")).sessions
        labels = LabelStore(store.db, store.log)
        classifiers = classifiers_from_settings(Analysis(), shared_embedder(Rag()), data / "cache")
        classifiers.emotion.classify(["워밍업"]), classifiers.intent.classify(["워밍업"], [TurnContext()])
        classifiers.keywords.terms("워밍업 문장")
        analyzer = TurnAnalyzer(labels, classifiers, busy=lambda: False)
        started = time.perf_counter()
        analyzer.start()
        while (await labels.counts(analyzer.emotion_model, analyzer.intent_model))["unlabelled"]:
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        await analyzer.close()
        await store.close()
    return {"turns": turns, "seconds": round(elapsed, 1), "turns_per_s": round(turns / elapsed, 1)}


def chat_cost(runs: int, tokens: int, backlog: int, pause: float) -> dict:
    env = {"AIONE_CHAT__MAX_TOKENS": str(tokens), "AIONE_CHAT__TEMPERATURE": "0", "AIONE_CHAT__SEED": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {}
        for mode in ("off", "on"):
            data = Path(tmp) / mode
            data.mkdir()
            asyncio.run(_backlog(data, backlog))
            servers[mode] = ServerProcess(env | {"AIONE_ANALYSIS__ENABLED": "true" if mode == "on" else "false"}, data)
        speeds: dict[str, list[float]] = {"off": [], "on": []}
        try:
            for mode, server in servers.items():  # warm-up (and the "on" server loads its classifiers)
                server.chat(QUESTION.format(n=0))
            for n in range(1, runs + 1):
                for mode in ("off", "on") if n % 2 else ("on", "off"):
                    other = servers["on" if mode == "off" else "off"]
                    os.kill(other.proc.pid, signal.SIGSTOP)  # only one server runs at a time
                    try:
                        time.sleep(pause)  # between messages: the labeller's turn
                        speeds[mode].append(servers[mode].chat(QUESTION.format(n=n)))
                    finally:
                        os.kill(other.proc.pid, signal.SIGCONT)
            labelled = servers["on"].client.get(servers["on"].url + "/api/analysis").json()
        finally:
            for server in servers.values():
                server.close()
    off, on = statistics.median(speeds["off"]), statistics.median(speeds["on"])
    return {"tok_s_off": round(off, 1), "tok_s_on": round(on, 1), "ratio_on_off": round(on / off, 3),
            "runs": runs, "labelled_during_run": labelled["labelled"], "backlog": backlog,
            "all_off": speeds["off"], "all_on": speeds["on"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between messages")
    args = parser.parse_args()
    speed = labels_per_second()
    print(f"labels: {speed['labels_per_s']} turns/s over {speed['turns']} sentences; held-out accuracy "
          f"{speed['held_out_accuracy']}, intent {speed['intent_accuracy']}")
    backfill = asyncio.run(_backfill(args.backlog))
    print(f"backfill through the pipeline: {backfill['turns']} turns in {backfill['seconds']} s = "
          f"{backfill['turns_per_s']} turns/s ({backfill['turns_per_s'] / speed['labels_per_s']:.2f} of the "
          f"classifiers alone)")
    cost = chat_cost(args.runs, args.tokens, args.backlog, args.pause)
    print(f"chat tok/s: analysis off {cost['tok_s_off']}, on {cost['tok_s_on']} -> ratio {cost['ratio_on_off']} "
          f"(goal >= 0.97); {cost['labelled_during_run']} of the {cost['backlog']}-turn backlog labelled meanwhile")
    print(json.dumps({"labels": speed, "backfill": backfill, "chat": cost}, ensure_ascii=False))


if __name__ == "__main__":
    main()
