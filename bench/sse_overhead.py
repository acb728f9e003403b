"""SSE overhead: raw llama-cpp-python streaming in-process vs the server's SSE endpoint.

Same model file, same rendered prompt, same seed, greedy, up to 128 new tokens; the two
modes alternate (raw, server, raw, server, ...) so machine noise hits both alike. Each run
uses a different question (the same one in both modes) so neither side gets a free prefix
cache from the run before. Prints tokens/s and time to first token of each, their ratio and
difference, and a last line of JSON.

    .venv/bin/python bench/sse_overhead.py [--runs 5] [--tokens 128] [--model PATH]
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
from settings import DEFAULT_SYSTEM_PROMPT, ChatModel, embedded_chat_model_path  # noqa: E402

SEED = 42
THREADS = ChatModel().n_threads  # the server's default; --threads overrides it in both modes
QUESTION = "Story {n}: write a long, detailed story about a lighthouse keeper and a storm."


def timed(tokens_at: list[float], started: float) -> dict:
    n = len(tokens_at)
    decode = tokens_at[-1] - tokens_at[0] if n > 1 else 0.0
    return {"tokens": n, "ttft_ms": (tokens_at[0] - started) * 1000 if n else None,
            "tokens_per_s": (n - 1) / decode if decode > 0 else None}


class Raw:
    """The library alone: the GGUF's template, tokenize, create_completion(stream=True)."""

    def __init__(self, model: Path, n_ctx: int, max_tokens: int) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = Llama(model_path=str(model), n_ctx=n_ctx, n_threads=THREADS, n_gpu_layers=0,
                         seed=SEED, verbose=False)
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        self.formatter = Jinja2ChatFormatter(
            template=self.llm.metadata["tokenizer.chat_template"],
            eos_token=self.llm._model.token_get_text(eos), bos_token=self.llm._model.token_get_text(bos),
            stop_token_ids=[eos])
        self.max_tokens = max_tokens

    def run(self, question: str) -> dict:
        started = time.perf_counter()
        rendered = self.formatter(messages=[{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                                            {"role": "user", "content": question}])
        tokens = self.llm.tokenize(rendered.prompt.encode(), add_bos=not rendered.added_special, special=True)
        stamps = []
        for chunk in self.llm.create_completion(tokens, max_tokens=self.max_tokens, temperature=0.0, top_p=0.9,
                                                top_k=40, repeat_penalty=1.1, seed=SEED, stop=rendered.stop,
                                                stopping_criteria=rendered.stopping_criteria, stream=True):
            if chunk["choices"][0]["text"]:
                stamps.append(time.perf_counter())
        return timed(stamps, started)

    def close(self) -> None:
        self.llm.close()


def start_server(model: Path, n_ctx: int, max_tokens: int, data: Path) -> ServerProcess:
    """The server, configured to match Raw."""
    return ServerProcess({
        "AIONE_CHAT__MODEL_PATH": str(model), "AIONE_CHAT__N_CTX": str(n_ctx),
        "AIONE_CHAT__MAX_TOKENS": str(max_tokens), "AIONE_CHAT__TEMPERATURE": "0", "AIONE_CHAT__SEED": str(SEED),
        "AIONE_CHAT__N_THREADS": str(THREADS), "AIONE_CHAT__N_GPU_LAYERS": "0", "AIONE_CHAT__TOP_P": "0.9",
        "AIONE_CHAT__TOP_K": "40", "AIONE_CHAT__REPEAT_PENALTY": "1.1", "AIONE_CHAT__SYSTEM_PROMPT": DEFAULT_SYSTEM_PROMPT,
    }, data)


def run_server(server: ServerProcess, question: str) -> dict:
    started = time.perf_counter()
    stamps = []
    with server.client.stream("POST", server.url + "/chat_stream_sse_fetch", json={"message": question}) as r:
        for line in r.iter_lines():
            if line.startswith('data: {"type": "token"'):
                stamps.append(time.perf_counter())
    return timed(stamps, started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--model", type=Path, default=embedded_chat_model_path())
    parser.add_argument("--threads", type=int, default=THREADS, help="llama.cpp threads in both modes")
    args = parser.parse_args()
    globals()["THREADS"] = args.threads

    raw = Raw(args.model, args.n_ctx, args.tokens)
    with tempfile.TemporaryDirectory() as data:
        server = start_server(args.model, args.n_ctx, args.tokens, Path(data))
        modes = {"raw": raw.run, "server": lambda question: run_server(server, question)}
        try:
            modes["raw"](QUESTION.format(n=0)), modes["server"](QUESTION.format(n=0))  # warm-up, not counted
            results: dict[str, list[dict]] = {"raw": [], "server": []}
            for n in range(1, args.runs + 1):
                for name, run in modes.items():
                    result = run(QUESTION.format(n=n))
                    results[name].append(result)
                    print(f"run {n} {name:6s} tokens={result['tokens']:4d} "
                          f"ttft={result['ttft_ms']:.1f} ms  {result['tokens_per_s']:.1f} tok/s")
        finally:
            server.close()
            raw.close()

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    raw_tps, server_tps = median("raw", "tokens_per_s"), median("server", "tokens_per_s")
    raw_ttft, server_ttft = median("raw", "ttft_ms"), median("server", "ttft_ms")
    summary = {
        "model": args.model.name, "runs": args.runs, "max_new_tokens": args.tokens,
        "tokens_raw": [r["tokens"] for r in results["raw"]], "tokens_server": [r["tokens"] for r in results["server"]],
        "raw_tokens_per_s": round(raw_tps, 2), "server_tokens_per_s": round(server_tps, 2),
        "tokens_per_s_ratio": round(server_tps / raw_tps, 4),
        "raw_ttft_ms": round(raw_ttft, 2), "server_ttft_ms": round(server_ttft, 2),
        "ttft_overhead_ms": round(server_ttft - raw_ttft, 2),
    }
    print(f"tokens/s  raw {raw_tps:.1f}  server {server_tps:.1f}  ratio {summary['tokens_per_s_ratio']:.3f} (target >= 0.98)")
    print(f"TTFT      raw {raw_ttft:.1f} ms  server {server_ttft:.1f} ms  overhead {summary['ttft_overhead_ms']:.1f} ms (target <= 15)")
    summary["threads"] = THREADS
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
