"""Tool calling: what the parser costs a stream, and how well the configured chat model calls tools.

(1) Streamed tokens/s through /v1 (the openai client, greedy, the same prompt tokens both
    ways) with tools given in auto mode (every token goes through the call parser) ÷ without
    tools (the same system prompt written out by the client), alternating. Goal >= 0.98.
(2) The project's tool set (mark/tool_set.py: 8 tools in close pairs, 40 Korean and 40
    English requests, 8 a language where no tool fits) in auto mode: the right tool first (or
    rightly none), and arguments holding what the request asked for. With the embedded
    SmolLM2-135M this measures the pipeline more than a model; point AIONE_CHAT__MODEL_PATH at a
    7-8B model to rank real ones.

    .venv/bin/python bench/tools.py [--runs 5] [--tokens 128] [--items 80]
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
from core.contracts import ToolPlan  # noqa: E402
from mark.tool_set import ITEMS, TOOLS  # noqa: E402
from tools.syntax import generic_system  # noqa: E402

SYSTEM = "You are a helpful assistant."
STORY = "Tell me a long story about a lighthouse keeper and a storm."


def stream_rate(client, tokens: int, tools: bool) -> tuple[float, int]:
    """Decode tokens/s of one streamed answer (after its first token), and its tool calls."""
    if tools:
        extra = {"tools": TOOLS, "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": STORY}]}
    else:  # the prompt the server builds for tools, written out by the client: the same tokens
        extra = {"messages": [{"role": "system", "content": generic_system(SYSTEM, ToolPlan(tuple(TOOLS)))},
                              {"role": "user", "content": STORY}]}
    stream = client.chat.completions.create(model="chat", max_tokens=tokens, temperature=0, seed=1, stream=True,
                                            stream_options={"include_usage": True}, **extra)
    first = last = None
    completion, calls = 0, 0
    for chunk in stream:
        if chunk.usage:
            completion = chunk.usage.completion_tokens
        if chunk.choices and (chunk.choices[0].delta.content or chunk.choices[0].delta.tool_calls):
            last = time.perf_counter()
            first = first or last
            calls += len(chunk.choices[0].delta.tool_calls or [])
    return (completion - 1) / (last - first) if first and last and last > first else 0.0, calls


def bench_parser(url: str, runs: int, tokens: int) -> dict:
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=300)
    stream_rate(client, 16, True)  # warm-up
    rates: dict[str, list[float]] = {"on": [], "off": []}
    calls = 0
    for run in range(runs):
        for mode in ("on", "off") if run % 2 == 0 else ("off", "on"):
            rate, made = stream_rate(client, tokens, mode == "on")
            rates[mode].append(rate)
            calls += made
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    print(f"(1) streamed tok/s with the tool parser {on:.1f} vs without {off:.1f}: ratio {on / off:.3f} "
          f"(goal >= 0.98; calls made meanwhile: {calls})")
    return {"on": on, "off": off, "ratio": on / off, "calls_made": calls, "all": rates}


def score(reply, expected: str | None, wanted: dict[str, str]) -> dict:
    calls = reply.choices[0].message.tool_calls or []
    if expected is None:
        return {"tool": not calls, "arguments": not calls}
    if not calls or calls[0].function.name != expected:
        return {"tool": False, "arguments": False}
    try:
        arguments = json.loads(calls[0].function.arguments)
    except json.JSONDecodeError:
        return {"tool": True, "arguments": False}
    ok = all(part.lower() in str(arguments.get(key, "")).lower() for key, part in wanted.items())
    return {"tool": True, "arguments": ok}


def bench_accuracy(url: str, limit: int, choice: str = "auto") -> dict:
    """choice "required": only the items that need a call, the grammar making the model pick one
    tool: how well it chooses among close tools, whether or not it would call on its own."""
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=300)
    results: dict[str, list[dict]] = {}
    for language, request, expected, wanted in ITEMS[:limit]:
        if choice == "required" and expected is None:
            continue
        reply = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": request}],
                                               tools=TOOLS, tool_choice=choice, temperature=0, seed=1, max_tokens=96)
        kind = ("none" if expected is None else "call") + ("" if choice == "auto" else f" ({choice})")
        results.setdefault(f"{language}/{kind}", []).append(score(reply, expected, wanted))
    summary = {}
    for group, rows in sorted(results.items()):
        summary[group] = {"items": len(rows), "tool": sum(r["tool"] for r in rows) / len(rows),
                          "arguments": sum(r["arguments"] for r in rows) / len(rows)}
        print(f"(2) {group:18}: {len(rows):2} items, right tool {summary[group]['tool'] * 100:5.1f} %, "
              f"right arguments {summary[group]['arguments'] * 100:5.1f} %")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--items", type=int, default=len(ITEMS))
    args = parser.parse_args()
    env = {"AIONE_CHAT__N_CTX": "4096", "AIONE_ANALYSIS__ENABLED": "false", "AIONE_MODELS__SCAN_ON_START": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(env, Path(tmp))
        try:
            parser_cost = bench_parser(server.url, args.runs, args.tokens)
            accuracy = bench_accuracy(server.url, args.items)
            forced = bench_accuracy(server.url, args.items, "required")
        finally:
            server.close()
    print(json.dumps({"parser": parser_cost, "accuracy": accuracy, "required": forced}))


if __name__ == "__main__":
    main()
