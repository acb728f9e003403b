"""One image question: the chat model swapped out for the vision model and back.

Steps (each timed): unload chat, load the vision model (+ projector), encode the image and
the prompt until the first token, tokens/s, and the swap back until the chat model is
ready. The server's total (HTTP, validation, storage, slot) is compared with the same steps
done directly with llama-cpp-python in one process; the modes alternate.

The vision model is SmolLM2 with a generated random-weight projector (no VLM ships in any
package): the timings are those of the real load / encode / generate path at this size.

    .venv/bin/python bench/vision.py [--runs 3] [--tokens 64]
"""
from __future__ import annotations

import argparse
import base64
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
from tests.tiny_models import make_tiny_mmproj, png_data_url  # noqa: E402

QUESTION = "What is in this picture? Describe it in detail."
N_CTX = 2048


def raw_run(model: Path, mmproj: Path, image_url: str, tokens: int, threads: int) -> dict:
    from llama_cpp import Llama

    from vlm_engine import _stored_image_handler

    image_bytes = base64.b64decode(image_url.split(",", 1)[1])
    chat = Llama(model_path=str(model), n_ctx=N_CTX, n_threads=threads, n_gpu_layers=0, verbose=False)
    t = {"start": time.perf_counter()}
    chat.close()
    t["unloaded"] = time.perf_counter()
    handler = _stored_image_handler(str(mmproj), False, lambda _id: image_bytes)
    vlm = Llama(model_path=str(model), n_ctx=N_CTX, n_threads=threads, n_gpu_layers=0, chat_handler=handler,
                verbose=False)
    handler._init_mtmd_context(vlm)
    t["loaded"] = time.perf_counter()
    messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "aione-image:x"}},
                                             {"type": "text", "text": QUESTION}]}]
    count = 0
    for chunk in vlm.create_chat_completion(messages=messages, stream=True, max_tokens=tokens, temperature=0.0,
                                            seed=1):
        if chunk["choices"][0]["delta"].get("content"):
            count += 1
            t.setdefault("first_token", time.perf_counter())
    t["done"] = time.perf_counter()
    vlm.close()
    Llama(model_path=str(model), n_ctx=N_CTX, n_threads=threads, n_gpu_layers=0, verbose=False).close()
    t["back"] = time.perf_counter()  # (the reload above, closed again only to free it)
    return steps(t, count)


def server_run(server: ServerProcess, image_url: str) -> dict:
    t = {"start": time.perf_counter()}
    count = 0
    with server.client.stream("POST", server.url + "/chat_stream_sse_fetch",
                              json={"message": QUESTION, "images": [image_url]}) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            frame = json.loads(line[6:])
            if frame["type"] == "status" and frame["state"] == "loading":
                t.setdefault("unloaded", time.perf_counter())
            if frame["type"] == "status" and frame["state"] == "ready":
                t["loaded"] = time.perf_counter()
            if frame["type"] == "token":
                count += 1
                t.setdefault("first_token", time.perf_counter())
            if frame["type"] == "done":
                t["done"] = time.perf_counter()
    back_started = time.perf_counter()
    with server.client.stream("POST", server.url + "/chat_stream_sse_fetch", json={"message": "Thanks!"}) as r:
        for line in r.iter_lines():  # read to the end: a half-read answer would still run beside the next run
            if '"state": "ready"' in line:
                t["back"] = t["done"] + (time.perf_counter() - back_started)  # swap-back time only
    return steps(t, count)


def steps(t: dict, tokens: int) -> dict:
    decode = t["done"] - t["first_token"]
    return {
        "unload_chat_s": t["unloaded"] - t["start"],
        "load_vision_s": t["loaded"] - t["unloaded"],
        "encode_to_first_token_s": t["first_token"] - t["loaded"],
        "tokens": tokens,
        "tokens_per_s": (tokens - 1) / decode if decode > 0 else None,
        "back_on_chat_s": t["back"] - t["done"],
        "total_s": (t["back"] - t["start"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    model, threads = embedded_chat_model_path(), ChatModel().n_threads
    image_url = png_data_url(640, 480, (40, 120, 200))
    results: dict[str, list[dict]] = {"raw": [], "server": []}
    with tempfile.TemporaryDirectory() as folder:
        mmproj = make_tiny_mmproj(Path(folder) / "mmproj.gguf")
        env = {"AIONE_CHAT__N_CTX": str(N_CTX), "AIONE_CHAT__N_THREADS": str(threads),
               "AIONE_VISION__MODEL_PATH": str(model), "AIONE_VISION__MMPROJ_PATH": str(mmproj),
               "AIONE_VISION__MMPROJ_ON_GPU": "false", "AIONE_VISION__N_CTX": str(N_CTX),
               "AIONE_VISION__MAX_TOKENS": str(args.tokens), "AIONE_VISION__TEMPERATURE": "0",
               "AIONE_VISION__SEED": "1", "AIONE_VISION__N_THREADS": str(threads),
               "AIONE_VISION__HISTORY_TURNS": "0"}
        server = ServerProcess(env, Path(folder) / "data")
        try:
            for n in range(args.runs + 1):  # the first pair warms caches and is not counted
                raw = raw_run(model, mmproj, image_url, args.tokens, threads)
                served = server_run(server, image_url)
                if n:
                    results["raw"].append(raw)
                    results["server"].append(served)
        finally:
            server.close()
    summary = {"model": f"{model.name} + tiny random mmproj", "runs": args.runs, "threads": threads}
    for mode in ("raw", "server"):
        summary[mode] = {key: round(statistics.median(r[key] for r in results[mode]), 4)
                         for key in results[mode][0] if results[mode][0][key] is not None}
        m = summary[mode]
        print(f"{mode:6s}: unload chat {m['unload_chat_s'] * 1000:.0f} ms, load vision {m['load_vision_s'] * 1000:.0f} ms, "
              f"encode + prompt to first token {m['encode_to_first_token_s'] * 1000:.0f} ms, "
              f"{m['tokens_per_s']:.1f} tok/s ({m['tokens']} tokens), back on chat {m['back_on_chat_s'] * 1000:.0f} ms, "
              f"total {m['total_s'] * 1000:.0f} ms")
    summary["overhead"] = round(summary["server"]["total_s"] / summary["raw"]["total_s"] - 1, 4)
    print(f"server total vs library: {summary['overhead'] * 100:+.1f} % (target <= 5 %)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
