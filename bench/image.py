"""Image generation through the server, measured against the raw library in the same run.

1. Time split of one generation that needs a swap (chat resident -> image -> chat): swap out
   (unload chat), load, per step, decode, swap back (the next chat's wait for its model).
2. Overhead: the server's total for a generation with the image model resident (request
   sent until [DONE], PNG encode + save + SQLite + base64 included) vs
   StableDiffusion.generate_image with the same parameters in this process, alternating.

Default model: the random-weight SDXS test checkpoint (generated if missing); point --model
at a real checkpoint for real figures. Prints each figure and a last line of JSON.

    .venv/bin/python bench/image.py [--model FILE] [--size 256] [--steps 4] [--rounds 5]
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
from settings import ImageModel  # noqa: E402

DEFAULT_MODEL = ROOT / "tests" / ".cache" / "tiny-sdxs-random.safetensors"


def timed_frames(server: ServerProcess, path: str, body: dict) -> tuple[list[tuple[float, dict]], float]:
    """POST and read the SSE stream; each frame with seconds since the request was sent."""
    started = time.perf_counter()
    frames = []
    with server.client.stream("POST", server.url + path, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data:"):
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                frames.append((time.perf_counter() - started, json.loads(payload)))
    return frames, time.perf_counter() - started


def first(frames: list[tuple[float, dict]], kind: str, state: str | None = None) -> float:
    return next(t for t, f in frames if f["type"] == kind and (state is None or f.get("state") == state))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not args.model.is_file() and args.model == DEFAULT_MODEL:
        from tests.tiny_models import make_tiny_sd_checkpoint

        make_tiny_sd_checkpoint(DEFAULT_MODEL)
    threads = ImageModel().n_threads
    params = {"prompt": "a lighthouse on a cliff at sunset", "width": args.size, "height": args.size,
              "steps": args.steps, "cfg_scale": 1.0, "seed": 1234, "sampler": "euler_a", "batch_count": 1}
    env = {"AIONE_IMAGE__MODEL_PATH": str(args.model), "AIONE_IMAGE__N_THREADS": str(threads),
           "AIONE_IMAGE__MAX_WIDTH": str(max(args.size, 64)), "AIONE_IMAGE__MAX_HEIGHT": str(max(args.size, 64)),
           "AIONE_CHAT__MAX_TOKENS": "8", "AIONE_CHAT__TEMPERATURE": "0"}
    print(f"model {args.model.name}, {args.size}x{args.size}, {args.steps} steps, {threads} thread(s)")

    with tempfile.TemporaryDirectory() as data:
        server = ServerProcess(env, Path(data))  # chat preloaded and resident
        try:
            # 1. time split, chat -> image -> chat
            frames, total = timed_frames(server, "/api/images/generate", params)
            done = next(f for _, f in frames if f["type"] == "done")
            picture = done["timings"]["pictures"][0]
            unload_at, load_at = first(frames, "status", "unloading"), first(frames, "status", "loading")
            ready_at = first(frames, "status", "ready")
            chat_frames, _ = timed_frames(server, "/chat_stream_sse_fetch", {"message": "Hi"})
            swap_back = first(chat_frames, "status", "ready")
            split = {"swap_out_s": load_at - unload_at, "load_s": ready_at - load_at,
                     "encode_s": picture["encode_s"], "per_step_s": picture["per_step_s"],
                     "sampling_s": picture["sampling_s"], "decode_s": picture["decode_s"],
                     "after_picture_s": total - first(frames, "image"), "request_total_s": total,
                     "swap_back_s": swap_back}
            print("time split (s): " + ", ".join(f"{k} {v:.3f}" for k, v in split.items()))

            # 2. overhead with the model resident, alternating with the raw library
            from stable_diffusion_cpp import StableDiffusion

            raw_sd = StableDiffusion(model_path=str(args.model), n_threads=threads, verbose=False)
            raw_times, server_times = [], []
            timed_frames(server, "/api/images/generate", params)  # the image model is resident again
            for _ in range(args.rounds):
                started = time.perf_counter()
                raw_sd.generate_image(prompt=params["prompt"], width=args.size, height=args.size,
                                      sample_steps=args.steps, cfg_scale=1.0, seed=1234, sample_method="euler_a",
                                      batch_count=1)
                raw_times.append(time.perf_counter() - started)
                _, took = timed_frames(server, "/api/images/generate", params)
                server_times.append(took)
            raw_sd.close()
            raw, served = statistics.median(raw_times), statistics.median(server_times)
            ratio = served / raw
            print(f"raw library  median {raw:.3f} s  {[round(t, 3) for t in raw_times]}")
            print(f"server       median {served:.3f} s  {[round(t, 3) for t in server_times]}")
            print(f"server / raw {ratio:.3f}  (overhead {100 * (ratio - 1):+.1f} %, target <= +5 %)")
            print(json.dumps({"split": {k: round(v, 4) for k, v in split.items()}, "raw_median_s": round(raw, 4),
                              "server_median_s": round(served, 4), "ratio": round(ratio, 4)}))
        finally:
            server.close()


if __name__ == "__main__":
    main()
