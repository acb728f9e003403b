"""Conversations longer than the context, through the page's route with the embedded model.

(1) A 40-turn conversation at AIONE_CHAT__N_CTX=2048 with ~150-token messages: failed turns,
    TTFT per turn (the server's own done timings), and TTFT of turns 31-40 ÷ the early turns
    before the first overflow (turns 2-5), target <= 1.5. Between turns the "user" reads: the
    next message goes when the server's background work (the window's upkeep) has finished, at
    most --pause seconds; `--back-to-back` sends at once instead (reported as well).
(2) The same 10 long turns through the page route and straight through llama-cpp-python's own
    `create_chat_completion` (which reuses its prefix), same model, n_ctx and messages,
    alternating: TTFT per turn and the ratio at turns 9-10 (target <= 1.10).
(3) Summaries never delay a user's token: TTFT of a message sent while the model is writing a
    summary in the background ÷ the same message sent when the server is idle.

    .venv/bin/python bench/long_conversation.py [--turns 40] [--pause 60] [--back-to-back] [--memories]

`--memories`: (1) with memories about the conversation's topics stored first, so each turn's
prompt holds a memory part (after the system prompt, before the summary): the prefix must
survive it.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_process import ServerProcess  # noqa: E402
from settings import DEFAULT_SYSTEM_PROMPT, embedded_chat_model_path  # noqa: E402

TOPICS = ["the harbour festival", "a budget meeting", "the new museum", "mountain trails", "the night market",
          "a train journey", "the science fair", "an old library", "the river bridge", "a rainy weekend"]


def message(turn: int, words: int = 110) -> str:
    """~150 tokens: a request about a topic, with details (different every turn)."""
    topic = TOPICS[turn % len(TOPICS)]
    body = (f"Turn {turn}: tell me about {topic}. I noted that {turn * 3} people came, the weather was mild, "
            f"and we discussed plans for next year. ")
    filler = "Please keep the details about the people, the places and the times in mind for later. "
    while len((body + filler).split()) < words:
        body += filler
    return body.strip()


def chat(server: ServerProcess, text: str, session_id: str | None) -> dict:
    started, first_token = time.perf_counter(), None
    frames = []
    with server.client.stream("POST", server.url + "/chat_stream_sse_fetch",
                              json={"message": text, "session_id": session_id}) as response:
        for line in response.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                frames.append(json.loads(line[5:]))
                if frames[-1].get("type") == "token" and first_token is None:
                    first_token = (time.perf_counter() - started) * 1000
    done = next((f for f in frames if f.get("type") == "done"), None)
    error = next((f for f in frames if f.get("type") == "error"), None)
    session = next((f["session_id"] for f in frames if f.get("type") == "session"), session_id)
    return {"done": done, "error": error, "session_id": session, "first_token_ms": first_token}


def wait_idle(server: ServerProcess, limit: float) -> float:
    """The user reads: at least until the upkeep could start (a second after the answer), then
    until the server's background work is done."""
    from turns.context_memory import UPKEEP_DELAY_S

    started = time.perf_counter()
    time.sleep(UPKEEP_DELAY_S + 0.3)
    while time.perf_counter() - started < limit:
        state = server.slot()
        if not state["holders"] and not state["queue"]:
            break
        time.sleep(0.05)
    return time.perf_counter() - started


MEMORIES = [f"I helped to organise {topic} and I care about what people said there" for topic in TOPICS]


def long_conversation(turns: int, pause: float, back_to_back: bool, memories: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess({"AIONE_CHAT__N_CTX": "2048", "AIONE_CHAT__MAX_TOKENS": "48",
                                "AIONE_CHAT__TEMPERATURE": "0"}, Path(folder), wait_for_model=None)
        used: list[int] = []
        try:
            for text in MEMORIES if memories else []:
                server.client.post(server.url + "/api/memories", json={"text": text}).raise_for_status()
            session, ttft, failed, waits, overflows = None, [], 0, [], []
            for turn in range(1, turns + 1):
                result = chat(server, message(turn), session)
                session = result["session_id"]
                done = result["done"]
                if result["error"] or done is None or done["finish_reason"] not in ("done", "trimmed"):
                    failed += 1
                    ttft.append(float("nan"))
                    continue
                ttft.append(done["timings"]["ttft_ms"])
                used.append(len(done["memories_used"]))
                overflows.append(done["context"]["summarized_turns"])
                waits.append(0.0 if back_to_back else wait_idle(server, pause))
        finally:
            server.close()
    first_drop = next((i for i, s in enumerate(overflows) if s), len(overflows))
    early = [t for t in ttft[1:min(5, first_drop)] if not math.isnan(t)]
    late = [t for t in ttft[30:40] if not math.isnan(t)]
    ratio = statistics.mean(late) / statistics.mean(early) if early and late else float("nan")
    return {"turns": turns, "failed": failed, "ttft_ms": ttft, "window_start": overflows, "early_ms": statistics.mean(early),
            "late_ms": statistics.mean(late) if late else None, "ratio": ratio, "mean_pause_s": statistics.mean(waits),
            "memories_used": used}


def against_raw(turns: int = 10) -> dict:
    """The page route vs llama-cpp-python's create_chat_completion, the same turns, alternating."""
    from llama_cpp import Llama

    path = embedded_chat_model_path()
    ours, raw = [], []
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess({"AIONE_CHAT__N_CTX": "2048", "AIONE_CHAT__MAX_TOKENS": "24",
                                "AIONE_CHAT__TEMPERATURE": "0", "AIONE_CHAT__N_THREADS": "2"}, Path(folder),
                               wait_for_model=None)
        llm = Llama(model_path=str(path), n_ctx=2048, n_threads=2, n_batch=512, verbose=False, seed=1)
        try:
            session = None
            messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}]
            for turn in range(1, turns + 1):
                text = message(turn, words=105)
                result = chat(server, text, session)
                session = result["session_id"]
                ours.append(result["done"]["timings"]["ttft_ms"] if result["done"] else float("nan"))
                wait_idle(server, 60)
                messages.append({"role": "user", "content": text})
                started = time.perf_counter()
                first = None
                answer = []
                for chunk in llm.create_chat_completion(messages, max_tokens=24, temperature=0, stream=True):
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        first = first or time.perf_counter()
                        answer.append(piece)
                raw.append(((first or time.perf_counter()) - started) * 1000)
                messages.append({"role": "assistant", "content": "".join(answer)})
        finally:
            llm.close()
            server.close()
    tail = statistics.mean(ours[8:10]) / statistics.mean(raw[8:10])
    return {"ours_ms": ours, "raw_ms": raw, "ratio_turns_9_10": tail}


def summary_does_not_delay(rounds: int = 3) -> dict:
    """Time to the first token (request to first token frame, as the user sees it) of a short
    question in another chat, sent while the model writes a summary ÷ a like question when idle
    (different words each time: no prompt cache helps either)."""
    busy, idle = [], []
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess({"AIONE_CHAT__N_CTX": "1024", "AIONE_CHAT__MAX_TOKENS": "24",
                                "AIONE_CHAT__TEMPERATURE": "0", "AIONE_CONTEXT__SUMMARY_TOKENS": "400"}, Path(folder),
                               wait_for_model=None)
        try:
            probe = "Question {n}: what is the capital of {country}? Answer in one word."
            countries = ["France", "Spain", "Italy", "Japan", "Korea", "Chile", "Kenya", "Peru"]
            for r in range(rounds):
                session, summarising = None, False
                for turn in range(1, 12):  # until an answer leaves the window near full: the upkeep summarises
                    result = chat(server, message(turn + 100 * r, words=90), session)
                    session = result["session_id"]
                    context = result["done"]["context"]
                    if context["used_tokens"] > 0.75 * (1024 - 24) and turn > 1:
                        summarising = True
                        break
                    wait_idle(server, 60)
                if not summarising:
                    continue
                deadline = time.perf_counter() + 10
                while not server.slot()["holders"] and time.perf_counter() < deadline:
                    time.sleep(0.05)  # the upkeep starts a second after the answer
                time.sleep(1.0)  # ... and is summarising now
                during = server.slot()["holders"]
                result = chat(server, probe.format(n=2 * r, country=countries[2 * r]), None)
                busy.append(result["first_token_ms"])
                wait_idle(server, 120)
                result = chat(server, probe.format(n=2 * r + 1, country=countries[2 * r + 1]), None)
                idle.append(result["first_token_ms"])
                print(f"  round {r}: upkeep holding the slot when sent: {bool(during)}; TTFT {busy[-1]:.0f} ms "
                      f"vs idle {idle[-1]:.0f} ms")
                wait_idle(server, 120)
        finally:
            server.close()
    return {"busy_ms": busy, "idle_ms": idle,
            "ratio": statistics.mean(busy) / statistics.mean(idle) if busy and idle else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--pause", type=float, default=60.0)
    parser.add_argument("--back-to-back", action="store_true")
    parser.add_argument("--only", choices=["long", "raw", "summary"], default=None)
    parser.add_argument("--memories", action="store_true", help="(1) with memories in every prompt")
    args = parser.parse_args()
    results = {}
    if args.only in (None, "long"):
        long = long_conversation(args.turns, args.pause, args.back_to_back, args.memories)
        results["long"] = long
        pause = "back to back" if args.back_to_back else f"reading pause until idle (mean {long['mean_pause_s']:.1f} s)"
        print(f"(1) {long['turns']} turns at n_ctx 2048, ~150-token messages, {pause}: {long['failed']} failed; TTFT early (turns 2-5) {long['early_ms']:.0f} ms, turns 31-40 "
              f"{long['late_ms']:.0f} ms: ratio {long['ratio']:.2f} (target <= 1.5)")
        print("    TTFT by turn (ms): " + " ".join(f"{t:.0f}" for t in long["ttft_ms"]))
        print("    window start by turn: " + " ".join(str(s) for s in long["window_start"]))
        if args.memories:
            print("    memories in the prompt by turn: " + " ".join(str(n) for n in long["memories_used"]))
    if args.only in (None, "raw"):
        raw = against_raw()
        results["raw"] = raw
        print(f"(2) 10 long turns, page route vs create_chat_completion: ours {' '.join(f'{t:.0f}' for t in raw['ours_ms'])}"
              f" ms; raw {' '.join(f'{t:.0f}' for t in raw['raw_ms'])} ms; turns 9-10 ratio {raw['ratio_turns_9_10']:.3f}"
              " (target <= 1.10)")
    if args.only in (None, "summary"):
        summary = summary_does_not_delay()
        results["summary"] = summary
        print(f"(3) TTFT while a summary is written ÷ idle: {summary['ratio']:.3f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
