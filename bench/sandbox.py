"""The sandbox: what isolation costs a run, and what a CPU-bound run costs the chat.

1. Wall time of `print("hi")` through the sandbox (Sandbox.run: bubblewrap, namespaces, mounts,
   rlimits, the runner) ÷ a bare `python -c 'print("hi")'` started the same way (asyncio
   subprocess), alternating, medians. Goal ≤ 1.5×.
2. The server's chat tok/s while a CPU-bound run (`while True: pass`) is going ÷ without: one
   server process with the embedded SmolLM2, messages alternate between idle and busy. The chat
   model uses every core here (n_threads = cores), the harshest case; the run is at nice 19 (the
   default, for the process and its scheduling group) and, for comparison, at nice 0. Goal ≥ 0.8
   on 2 cores.

    .venv/bin/python bench/sandbox.py [--runs 20] [--chats 4] [--tokens 64]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_process import ServerProcess  # noqa: E402
from core.events import RunFinished  # noqa: E402
from sandbox.runs import Sandbox  # noqa: E402
from settings import Sandbox as SandboxSettings  # noqa: E402

QUESTION = "Message {n}: tell me a long story about a lighthouse keeper and a storm."


async def _bare(python: str) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(python, "-c", 'print("hi")', stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert out == b"hi\n"
    return time.perf_counter() - started


async def _sandboxed(sandbox: Sandbox) -> float:
    started = time.perf_counter()
    async for event in sandbox.run('print("hi")', sandbox.new_run_id()):
        if isinstance(event, RunFinished):
            assert event.result.stdout == "hi\n", event.result
    return time.perf_counter() - started


async def startup_cost(runs: int) -> dict:
    sandbox = Sandbox(SandboxSettings())
    isolation = await sandbox.probe()
    python = sys._base_executable
    bare, boxed = [], []
    for n in range(runs):
        for which in ("bare", "boxed") if n % 2 else ("boxed", "bare"):
            (bare if which == "bare" else boxed).append(await _bare(python) if which == "bare"
                                                        else await _sandboxed(sandbox))
    b, s = statistics.median(bare), statistics.median(boxed)
    return {"isolation": isolation.kind, "bare_ms": round(b * 1000, 1), "sandbox_ms": round(s * 1000, 1),
            "ratio": round(s / b, 2), "runs": runs}


def _start_busy_run(server: ServerProcess) -> str:
    """A CPU-bound run in the background; returns its run id once it runs."""
    found: dict[str, str] = {}
    ready = threading.Event()

    def run() -> None:
        with server.client.stream("POST", server.url + "/api/sandbox/run",
                                  json={"code": "while True:\n    pass"}) as response:
            for line in response.iter_lines():
                if line.startswith("data:") and '"run_id"' in line and "run_id" not in found:
                    found["run_id"] = json.loads(line[5:])["run_id"]
                    ready.set()
    threading.Thread(target=run, daemon=True).start()
    if not ready.wait(30):
        raise RuntimeError("the busy run did not start")
    time.sleep(0.3)  # let it get going
    return found["run_id"]


def chat_cost(chats: int, tokens: int, nice: int) -> dict:
    cores = os.cpu_count() or 2
    env = {"AIONE_CHAT__MAX_TOKENS": str(tokens), "AIONE_CHAT__TEMPERATURE": "0", "AIONE_CHAT__SEED": "1",
           "AIONE_CHAT__N_THREADS": str(cores), "AIONE_ANALYSIS__ENABLED": "false",
           "AIONE_SANDBOX__NICE": str(nice), "AIONE_SANDBOX__TIMEOUT_S": "600", "AIONE_SANDBOX__CPU_SECONDS": "600"}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(env, Path(tmp))
        speeds: dict[str, list[float]] = {"idle": [], "busy": []}
        try:
            server.chat(QUESTION.format(n=0))  # warm-up
            for n in range(1, chats + 1):
                for mode in ("idle", "busy") if n % 2 else ("busy", "idle"):
                    run_id = _start_busy_run(server) if mode == "busy" else None
                    try:
                        speeds[mode].append(server.chat(QUESTION.format(n=n)))
                    finally:
                        if run_id:
                            server.client.post(f"{server.url}/api/sandbox/runs/{run_id}/stop")
                            time.sleep(0.3)
        finally:
            server.close()
    idle, busy = statistics.median(speeds["idle"]), statistics.median(speeds["busy"])
    return {"nice": nice, "chat_threads": cores, "tok_s_idle": round(idle, 1), "tok_s_busy": round(busy, 1),
            "ratio": round(busy / idle, 3), "all_idle": speeds["idle"], "all_busy": speeds["busy"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--chats", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    startup = asyncio.run(startup_cost(args.runs))
    print(f'print("hi"): sandbox ({startup["isolation"]}) {startup["sandbox_ms"]} ms, bare python '
          f'{startup["bare_ms"]} ms -> ratio {startup["ratio"]} (goal <= 1.5)')
    costs = [chat_cost(args.chats, args.tokens, nice) for nice in (19, 0)]
    for cost in costs:
        print(f"chat tok/s with a CPU-bound run at nice {cost['nice']} (chat on {cost['chat_threads']} threads): "
              f"idle {cost['tok_s_idle']}, busy {cost['tok_s_busy']} -> ratio {cost['ratio']} (goal >= 0.8)")
    print(json.dumps({"startup": startup, "chat": costs}))


if __name__ == "__main__":
    main()
