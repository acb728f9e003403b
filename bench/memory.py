"""The server's resident memory after warm-up, every default feature on (and with turn
analysis off, to show what it costs), and the keywords kiwipiepy gives under the project's
options beside its defaults, on the Korean seed sentences.

Warm-up, as the figure was first measured: `--streams` concurrent chat streams, `--rounds`
times, on the embedded SmolLM2 (answers capped at `--tokens`), then the labeller labels them
all. RSS (from /proc) is read as the labeller finishes (everything loaded) and once the server
is idle: after the keyword analyser's keep-alive (settings.analysis.keywords_keep_s) it is let go.

    .venv/bin/python bench/memory.py [--streams 32] [--rounds 4] [--tokens 24]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_process import ServerProcess  # noqa: E402
from settings import Analysis  # noqa: E402

KEEP_S = Analysis().keywords_keep_s  # the default: the bench measures what a user's server does

MESSAGES = ["오늘 서울 날씨가 어때요?", "Write a short poem about the sea.", "회의 일정을 정리해 주세요.",
            "What is 12 times 7?", "강아지가 아파서 너무 걱정돼요.", "Explain recursion in one sentence."]


def warmed_rss(analysis: bool, streams: int, rounds: int, tokens: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        env = {"AIONE_ANALYSIS__ENABLED": str(analysis).lower(), "AIONE_CHAT__MAX_TOKENS": str(tokens),
               "AIONE_SLOT__QUEUE_LIMIT": str(streams + 1)}
        server = ServerProcess(env, Path(folder))
        try:
            started_mb = server.rss_mb()
            for round_ in range(rounds):
                with ThreadPoolExecutor(streams) as pool:
                    list(pool.map(lambda n, round_=round_: server.chat(MESSAGES[n % len(MESSAGES)] + f" ({round_}.{n})"),
                                  range(streams)))
            if analysis:
                _wait_labelled(server)
            after_work = server.rss_mb()  # the labeller has just finished: everything still loaded
            samples = []
            for _ in range(round(KEEP_S) + 8):  # past the keyword analyser's keep-alive; flat by then
                time.sleep(1.0)
                samples.append(server.rss_mb())
            return {"analysis": analysis, "rss_at_start_mb": round(started_mb), "rss_after_work_mb": round(after_work),
                    "rss_warm_idle_mb": round(samples[-1]), "rss_last_samples_mb": [round(s) for s in samples[-4:]]}
        finally:
            server.close()


def _wait_labelled(server: ServerProcess, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(server.url + "/api/analysis", timeout=30).json()["unlabelled"] == 0:
            return
        time.sleep(1.0)
    raise RuntimeError("turns not labelled in time")


KIWI_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[2])
def rss():
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')) / 1024
from emotion_engine import SEED_DIR, load_seed
from kiwipiepy import Kiwi
before = rss()
options = json.loads(sys.argv[1])
kiwi = Kiwi(**options)
texts = [e.text for e in load_seed(SEED_DIR / "emotion_ko.txt")]
nouns = [[t.form for t in kiwi.tokenize(text) if t.tag in ("NNG", "NNP") and len(t.form) >= 2] for text in texts]
print(json.dumps({"added_mb": round(rss() - before), "nouns": nouns, "texts": texts}, ensure_ascii=False))
"""


def kiwi_figures() -> dict:
    """kiwipiepy's defaults vs the options analytics/keywords.py uses, each in a fresh process."""
    from analytics.keywords import KIWI_OPTIONS

    runs = {}
    for name, options in (("default", {}), ("project", KIWI_OPTIONS)):
        out = subprocess.run([sys.executable, "-c", KIWI_PROBE, json.dumps(options), str(ROOT)], capture_output=True,
                             text=True, check=True).stdout
        runs[name] = json.loads(out)
    same = sum(a == b for a, b in zip(runs["default"]["nouns"], runs["project"]["nouns"]))
    differing = [(text, a, b) for text, a, b in zip(runs["default"]["texts"], runs["default"]["nouns"],
                                                    runs["project"]["nouns"]) if a != b]
    return {"default_added_mb": runs["default"]["added_mb"], "project_added_mb": runs["project"]["added_mb"],
            "sentences": len(runs["default"]["texts"]), "same_nouns": same, "differing": differing[:5],
            "examples": [(text, nouns) for text, nouns in zip(runs["project"]["texts"][:3], runs["project"]["nouns"])]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=24)
    args = parser.parse_args()
    print(json.dumps({"kiwi": kiwi_figures()}, ensure_ascii=False, indent=1))
    for analysis in (True, False):
        print(json.dumps(warmed_rss(analysis, args.streams, args.rounds, args.tokens)))
    print(json.dumps({"bench_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
