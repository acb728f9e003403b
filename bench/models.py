"""The model library: how long a scan takes, and how good its memory estimate is.

(1) 500 model files in nested folders (hard links of the embedded SmolLM2, so no disk is spent;
    with a few broken ones): a cold scan (no cache), a cached rescan (nothing changed), and the
    raw `gguf.GGUFReader` opening the same files, per file.
(2) Estimate vs measured for every model available here. No GPU on this machine, so what is
    measured is the process's RSS growth when the real library loads the model (llama-cpp-python
    with n_gpu_layers=0 and mmap off, so the weights are really read into memory; stable-diffusion-
    cpp-python for the image model) against the library's estimate without the compute headroom
    (weights + KV cache at the context). On a GPU the same figures come from NVML.

    .venv/bin/python bench/models.py [--files 500]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.fit import image_fit, llm_fit  # noqa: E402
from catalog.scan import ModelCatalog  # noqa: E402
from settings import embedded_chat_model_path  # noqa: E402

MIB = 1 << 20


def make_folder(root: Path, files: int) -> Path:
    smol = embedded_chat_model_path()
    for index in range(files):
        folder = root.joinpath(*[f"level{d}-{index % (d + 3)}" for d in range(index % 4)])
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"model-{index:04d}-Q4_1.gguf"
        if index % 50 == 49:
            target.write_bytes(b"not a model at all")
        else:
            os.link(smol, target)
    return root


def bench_scan(files: int) -> dict:
    from gguf import GGUFReader

    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp) / "models", files)
        cache = Path(tmp) / "cache.json"
        started = time.perf_counter()
        models = ModelCatalog([folder], cache).scan()
        cold = time.perf_counter() - started
        started = time.perf_counter()
        ModelCatalog([folder], cache).scan()
        cached = time.perf_counter() - started
        sample = [m.path for m in models if m.status == "ok"][:50]
        started = time.perf_counter()
        for path in sample:
            GGUFReader(str(path))
        raw_per_file = (time.perf_counter() - started) / len(sample)
    broken = sum(1 for m in models if m.status == "broken")
    result = {"files": files, "models": len(models), "broken": broken, "cold_s": cold, "cached_s": cached,
              "cold_ms_per_file": cold / files * 1000, "raw_gguf_reader_ms_per_file": raw_per_file * 1000}
    print(f"(1) {files} files ({broken} broken): cold scan {cold:.2f} s ({result['cold_ms_per_file']:.1f} ms a file), "
          f"cached rescan {cached * 1000:.0f} ms; raw GGUFReader {result['raw_gguf_reader_ms_per_file']:.1f} ms a file")
    return result


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_llm(path: Path, mmproj: Path | None, n_ctx: int) -> float:
    from llama_cpp import Llama

    before = rss_mb()
    llm = Llama(model_path=str(path), n_ctx=n_ctx, n_gpu_layers=0, use_mmap=False, verbose=False,
                **({"chat_handler": _handler(mmproj)} if mmproj else {}))
    llm.eval(llm.tokenize(b"Hello " * 64))  # the KV cache touched
    grown = rss_mb() - before
    llm.close()
    return grown


def _handler(mmproj: Path):
    from llama_cpp.llama_chat_format import Llava15ChatHandler

    return Llava15ChatHandler(clip_model_path=str(mmproj), verbose=False)


def bench_estimates(tiny_sd: Path | None) -> list[dict]:
    from tests.tiny_models import make_tiny_mmproj

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copyfile(embedded_chat_model_path(), folder / "smol.gguf")
        make_tiny_mmproj(folder / "mmproj-smol.gguf")
        if tiny_sd is not None:
            os.link(tiny_sd, folder / "sdxs.safetensors")
        for model in ModelCatalog([folder], folder / "cache.json").scan():
            if model.status != "ok" or not set(model.roles) & {"chat", "image"}:
                continue
            if "image" in model.roles:
                estimate = image_fit(model.file_bytes, 8192 * MIB, 0)["full_mb"]
                measured = measure_image(model.path)
            else:
                projector = model.projector.stat().st_size if model.projector else 0
                estimate = llm_fit(model.facts, model.file_bytes, projector, 2048, -1, "f16", 8192 * MIB, 0)["full_mb"]
                measured = measure_llm(model.path, model.projector, 2048)
            error = (estimate - measured) / measured
            rows.append({"model": model.name, "roles": model.roles, "estimate_mb": estimate,
                         "measured_rss_mb": round(measured, 1), "error": round(error, 3)})
            print(f"(2) {model.name} ({'+'.join(model.roles)}): estimate {estimate} MB, measured RSS growth "
                  f"{measured:.0f} MB: error {error * 100:+.1f} %")
    return rows


def measure_image(path: Path) -> float:
    from stable_diffusion_cpp import StableDiffusion

    before = rss_mb()
    sd = StableDiffusion(model_path=str(path), verbose=False)
    grown = rss_mb() - before
    del sd
    return grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--sd", type=Path, default=ROOT / "tests" / ".cache" / "tiny-sdxs-random.safetensors",
                        help="the generated SD checkpoint (tests make it); skipped when absent")
    args = parser.parse_args()
    scan = bench_scan(args.files)
    estimates = bench_estimates(args.sd if args.sd.is_file() else None)
    print(json.dumps({"scan": scan, "estimates": estimates}))


if __name__ == "__main__":
    main()
