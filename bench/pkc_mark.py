"""PKC Mark from the command line: the same runs as the 모델 벤치 page, through a server process
(the same slot and turns), printing the table and a JSON last line.

    .venv/bin/python bench/pkc_mark.py [--models chat <library ids>...] [--tasks ...] [--full] [--seeds 3]
        [--random-twin]

--random-twin adds a model of the chat model's architecture with meaningless weights (its
quantisation blocks shuffled: tests/tiny_models.random_twin): the benchmark must tell the two
apart wherever the real model can do anything at all.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_process import ServerProcess  # noqa: E402
from mark.items import TASKS  # noqa: E402


def run(server: ServerProcess, models: list[str], tasks: list[str], seeds: int, quick: bool) -> dict:
    started = server.client.post(f"{server.url}/api/bench/runs", json={"models": models, "tasks": tasks, "seeds": seeds,
                                                                        "quick": quick})
    started.raise_for_status()
    run_id, begun = started.json()["id"], time.perf_counter()
    while True:
        result = server.client.get(f"{server.url}/api/bench/runs/{run_id}").json()
        if result["status"] != "running":
            result["wall_s"] = round(time.perf_counter() - begun, 1)
            return result
        time.sleep(1)


def table(result: dict, names: dict[str, str]) -> None:
    print(f"{'model':28} {'task':10} {'lang':4} {'score':>6} {'95% CI':>13} {'flags'}")
    for row in result["results"]:
        flags = ", ".join(f"{k} {row[k]}" for k in ("empty", "truncated", "looping", "invalid_json", "failed") if row[k])
        hangul = f", hangul {row['hangul_share']:.2f}" if "hangul_share" in row else ""
        print(f"{names.get(row['model'], row['model'])[:28]:28} {row['task']:10} {row['language']:4} {row['score']:6.2f} "
              f"{row['ci_low']:5.2f}-{row['ci_high']:5.2f}   {flags}{hangul}")
    for model, speed in result["speed"].items():
        print(f"speed {names.get(model, model)}: {json.dumps(speed)}")
    print(f"recommendation: {result['recommendation']}; wall time {result['wall_s']} s ({result['status']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=["chat"])
    parser.add_argument("--tasks", nargs="*", default=[t for t in TASKS if t != "vision"])
    parser.add_argument("--full", action="store_true", help="every item (default: the quick suite)")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--random-twin", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"AIONE_ANALYSIS__ENABLED": "false", "AIONE_CHAT__MAX_TOKENS": "256"}
        names = {"chat": "chat (configured)"}
        if args.random_twin:
            from settings import Settings
            from tests.tiny_models import random_twin

            random_twin(Settings().chat.model_path, Path(tmp) / "twin" / "random-twin.gguf")
            env["AIONE_MODELS__DIRS"] = json.dumps([str(Path(tmp) / "twin")])
        server = ServerProcess(env, Path(tmp) / "data")
        try:
            models = list(args.models)
            if args.random_twin:
                deadline = time.monotonic() + 60
                while not (listing := server.client.get(f"{server.url}/api/models").json())["scan"]["scanned"]:
                    assert time.monotonic() < deadline, "the model scan did not finish"
                    time.sleep(0.5)
                twin = next(m["id"] for m in listing["models"] if m["name"] == "random-twin")
                models.append(twin)
                names[twin] = "random twin"
            result = run(server, models, args.tasks, args.seeds, not args.full)
        finally:
            server.close()
    table(result, names)
    print(json.dumps({"results": result["results"], "speed": result["speed"], "wall_s": result["wall_s"],
                      "recommendation": result["recommendation"], "status": result["status"]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
