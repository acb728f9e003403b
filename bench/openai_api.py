"""The OpenAI-compatible API's overhead, in two comparisons, each alternating its two modes:

(1) streamed tokens/s and TTFT through POST /v1/chat/completions (the official `openai` client)
    vs raw llama-cpp-python on the same model, rendered prompt and seed (bench/sse_overhead.Raw);
(2) a remote backend: llama-cpp-python's own OpenAI server (`python -m llama_cpp.server`) called
    directly with the `openai` client vs through PKC AI-ONE configured with
    AIONE_CHAT__BASE_URL pointing at it (/v1 in front of the remote role).

    .venv/bin/python bench/openai_api.py [--runs 5] [--tokens 128]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_process import ServerProcess  # noqa: E402
from bench.sse_overhead import QUESTION, SEED, Raw, start_server, timed  # noqa: E402
from settings import DEFAULT_SYSTEM_PROMPT, embedded_chat_model_path  # noqa: E402
from tests.servers import start_llama_server  # noqa: E402


def stream_openai(base_url: str, question: str, max_tokens: int, model: str = "chat") -> dict:
    """Time one streamed completion through an OpenAI-compatible server with the official client."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=300)
    started = time.perf_counter()
    stamps = []
    for chunk in client.chat.completions.create(
            model=model, stream=True, max_tokens=max_tokens, temperature=0, seed=SEED, top_p=0.9,
            messages=[{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": question}]):
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.perf_counter())
    client.close()
    return timed(stamps, started)


def alternate(modes: dict, runs: int, label: str) -> dict[str, list[dict]]:
    for run in modes.values():
        run(QUESTION.format(n=0))  # warm-up, not counted
    results: dict[str, list[dict]] = {name: [] for name in modes}
    for n in range(1, runs + 1):
        for name, run in modes.items():
            result = run(QUESTION.format(n=n))
            results[name].append(result)
            print(f"{label} run {n} {name:8s} tokens={result['tokens']:4d} ttft={result['ttft_ms']:.1f} ms "
                  f"{result['tokens_per_s']:.1f} tok/s")
    return results


def compare(results: dict[str, list[dict]], base: str, other: str) -> dict:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    return {f"{base}_tokens_per_s": round(median(base, "tokens_per_s"), 2),
            f"{other}_tokens_per_s": round(median(other, "tokens_per_s"), 2),
            "tokens_per_s_ratio": round(median(other, "tokens_per_s") / median(base, "tokens_per_s"), 4),
            f"{base}_ttft_ms": round(median(base, "ttft_ms"), 2), f"{other}_ttft_ms": round(median(other, "ttft_ms"), 2),
            "ttft_overhead_ms": round(median(other, "ttft_ms") - median(base, "ttft_ms"), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args()
    model = embedded_chat_model_path()
    import bench.sse_overhead as sse

    summary: dict = {"model": model.name, "runs": args.runs, "max_new_tokens": args.tokens, "threads": sse.THREADS}
    raw = Raw(model, args.n_ctx, args.tokens)
    with tempfile.TemporaryDirectory() as data:
        server = start_server(model, args.n_ctx, args.tokens, Path(data))
        try:
            results = alternate({"raw": raw.run,
                                 "openai": lambda q: stream_openai(server.url + "/v1", q, args.tokens)},
                                args.runs, "(1)")
        finally:
            server.close()
            raw.close()
    summary["local"] = compare(results, "raw", "openai")
    local = summary["local"]
    print(f"(1) /v1 vs raw llama-cpp-python: tokens/s ratio {local['tokens_per_s_ratio']:.3f} (target >= 0.98), "
          f"TTFT overhead {local['ttft_overhead_ms']:.1f} ms (target <= 15)")

    upstream, base = start_llama_server(model, args.n_ctx, sse.THREADS)
    try:
        with tempfile.TemporaryDirectory() as data:
            server = ServerProcess({"AIONE_CHAT__BASE_URL": base, "AIONE_CHAT__MAX_TOKENS": str(args.tokens)},
                                   Path(data), wait_for_model=None)
            try:
                results = alternate({"direct": lambda q: stream_openai(base, q, args.tokens, model="any"),
                                     "through": lambda q: stream_openai(server.url + "/v1", q, args.tokens)},
                                    args.runs, "(2)")
            finally:
                server.close()
    finally:
        upstream.kill()
        upstream.wait(30)
    summary["remote"] = compare(results, "direct", "through")
    remote = summary["remote"]
    print(f"(2) remote backend through PKC AI-ONE vs called directly: tokens/s ratio "
          f"{remote['tokens_per_s_ratio']:.3f} (target >= 0.95), TTFT overhead {remote['ttft_overhead_ms']:.1f} ms")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
