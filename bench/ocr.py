"""OCR of Korean scans, and what the text-layer checks cost text PDFs.

(1) Pages rendered from Korean text (Noto Sans CJK KR at 10, 12 and 16 pt; each clean, and with
    Gaussian noise and a 1-2 degree turn, as a scanner gives them), saved as an image-only PDF
    and read through the project's path (PDFium render at AIONE_OCR__DPI, tesseract kor+eng,
    one thread, nice 19): character error rate per page, spaces ignored (Korean spacing is not
    what a search depends on) and with spaces.
(2) Speed on this machine: pages per minute through that path, and the same rendered pages
    through a bare `tesseract` call with its defaults (every core): the ratio.
(3) Text PDFs are not slowed by the checks: a 40-page Korean text PDF parsed, checked, chunked
    and ingested by the library path vs the raw embedder encoding the same chunks (>= 0.90).
(4) OCR never delays a user's token: the server's chat tok/s (embedded SmolLM2 on every core,
    the harshest case) while a 12-page scan is being read ÷ idle, alternating.

    .venv/bin/python bench/ocr.py [--lines 8] [--rounds 3] [--chats 4]
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from documents.chunking import chunk_sections  # noqa: E402
from documents.ocr import TesseractOcr  # noqa: E402
from documents.parsing import parse  # noqa: E402
from documents.scans import read_scans  # noqa: E402
from rag_engine import RagEngine  # noqa: E402
from settings import Ocr, Rag  # noqa: E402
from tests.doc_samples import korean_pdf_bytes, scanned_page, scanned_pdf_bytes  # noqa: E402

SENTENCES = [
    "서울특별시는 대한민국의 수도이며 한강이 도시의 가운데를 흐른다.",
    "직원은 매년 열다섯 일의 연차 휴가를 받고 인사팀 포털에서 신청한다.",
    "경주는 신라의 천년 수도로 불국사와 석굴암이 유명하다.",
    "점심 식대는 하루 만이천 원까지 지원되며 영수증을 첨부해야 한다.",
    "제주도의 한라산은 높이가 1,947미터로 남한에서 가장 높은 산이다.",
    "회의록은 회의가 끝난 뒤 사흘 안에 공유 폴더에 올려야 한다.",
    "The contract renewal is due on the first of March next year.",
    "부산 해운대 해수욕장은 여름마다 백만 명이 넘는 사람이 찾는다.",
    "도서관은 매주 월요일에 쉬고 평일에는 밤 열 시까지 문을 연다.",
    "보고서의 표와 그림에는 반드시 출처를 밝혀야 한다.",
]
PAGES = [(size, rotate, noise) for size in (10, 12, 16) for rotate, noise in ((0.0, 0.0), (1.5, 10.0))]


def distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), two rows at a time."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(reference: str, read: str, spaces: bool) -> float:
    if spaces:
        reference, read = " ".join(reference.split()), " ".join(read.split())
    else:
        reference, read = "".join(reference.split()), "".join(read.split())
    return distance(reference, read) / max(1, len(reference))


def bench_quality(lines_per_page: int, cfg: Ocr) -> dict:
    ocr = TesseractOcr(cfg)
    status = ocr.status()
    if not status.available:
        raise SystemExit(f"OCR is not available: {status.reason}")
    texts, pictures = [], []
    for index, (size, rotate, noise) in enumerate(PAGES):
        lines = [SENTENCES[(index + k) % len(SENTENCES)] for k in range(lines_per_page)]
        texts.append("\n".join(lines))
        pictures.append(scanned_page(lines, size, rotate * (-1) ** index, noise, seed=index))
    data = scanned_pdf_bytes(pictures)
    sections = parse(data, "scan.pdf")
    started = time.perf_counter()
    read, problems = read_scans(data, "pdf", "scan.pdf", sections, ocr, cfg.dpi, cfg.max_image_pixels)
    seconds = time.perf_counter() - started
    rows = []
    for (size, rotate, noise), reference, section in zip(PAGES, texts, read):
        row = {"pt": size, "rotate": rotate, "noise": noise, "cer": round(cer(reference, section.text, False), 4),
               "cer_with_spaces": round(cer(reference, section.text, True), 4)}
        rows.append(row)
        print(f"(1) {size:>2} pt, turn {rotate:.1f}°, noise {noise:>4.1f}: CER {row['cer'] * 100:5.2f} % "
              f"(with spaces {row['cer_with_spaces'] * 100:5.2f} %)")
    clean12 = next(r["cer"] for r in rows if r["pt"] == 12 and r["noise"] == 0)
    print(f"    clean 12 pt CER {clean12 * 100:.2f} % (goal <= 5 %); problems: {problems or 'none'}")
    return {"engine": status.engine, "dpi": cfg.dpi, "psm": cfg.page_mode, "pages": rows, "clean_12pt_cer": clean12,
            "project_seconds": seconds, "project_pages_per_min": len(PAGES) / seconds * 60, "pdf": data}


def bench_speed(data: bytes, project_pages_per_min: float, cfg: Ocr) -> dict:
    """The bare program on the same rendered pages, with its defaults (all cores, normal priority)."""
    from documents.scans import pdf_page_picture

    program = TesseractOcr(cfg).program()
    pngs = []
    for page in range(1, len(PAGES) + 1):
        out = io.BytesIO()
        pdf_page_picture(data, page, cfg.dpi).save(out, format="PNG")
        pngs.append(out.getvalue())
    started = time.perf_counter()
    for png in pngs:
        subprocess.run([program, "stdin", "stdout", "-l", cfg.languages, "--psm", str(cfg.page_mode)], input=png,
                       capture_output=True, check=True)
    raw = len(pngs) / (time.perf_counter() - started) * 60
    print(f"(2) pages per minute: project {project_pages_per_min:.1f} (one thread, nice 19), bare tesseract "
          f"{raw:.1f} (its defaults): ratio {project_pages_per_min / raw:.3f}")
    return {"project_pages_per_min": project_pages_per_min, "raw_pages_per_min": raw,
            "ratio": project_pages_per_min / raw}


def bench_text_pdf(rounds: int) -> dict:
    pages = [[SENTENCES[(p + k) % len(SENTENCES)] + f" ({p + 1}쪽 {k + 1}번째 문장)" for k in range(18)]
             for p in range(40)]
    data = korean_pdf_bytes(pages)
    raw_rates, path_rates = [], []
    with tempfile.TemporaryDirectory() as folder:
        for r in range(rounds):
            engine = RagEngine(Rag(), Path(folder) / f"db{r}")
            engine.open()
            chunks = chunk_sections(parse(data, "text.pdf"), 1000, 100)
            started = time.perf_counter()
            engine.embedder.encode([c.text for c in chunks])
            raw_rates.append(len(chunks) / (time.perf_counter() - started))
            started = time.perf_counter()
            sections = parse(data, "text.pdf")  # text layer, checks, then the library's own steps
            assert not any(s.needs_ocr for s in sections), "a text PDF was sent to OCR"
            engine.ingest(f"doc{r}", "text.pdf", chunk_sections(sections, 1000, 100))
            path_rates.append(len(chunks) / (time.perf_counter() - started))
    result = {"pages": len(pages), "chunks": len(chunks), "raw_chunks_per_s": statistics.median(raw_rates),
              "path_chunks_per_s": statistics.median(path_rates)}
    result["ratio"] = result["path_chunks_per_s"] / result["raw_chunks_per_s"]
    print(f"(3) text PDF, {len(pages)} pages, {len(chunks)} chunks: parse + checks + chunk + ingest "
          f"{result['path_chunks_per_s']:.1f}/s vs raw encode {result['raw_chunks_per_s']:.1f}/s: ratio "
          f"{result['ratio']:.3f} (target >= 0.90)")
    return result


def chat_while_ocr(chats: int, tokens: int = 64) -> dict:
    import os

    import httpx

    from bench.server_process import ServerProcess

    cores = os.cpu_count() or 2
    env = {"AIONE_CHAT__MAX_TOKENS": str(tokens), "AIONE_CHAT__TEMPERATURE": "0", "AIONE_CHAT__SEED": "1",
           "AIONE_CHAT__N_THREADS": str(cores), "AIONE_ANALYSIS__ENABLED": "false"}
    question = "Message {n}: tell me a long story about a lighthouse keeper and a storm."
    speeds: dict[str, list[float]] = {"idle": [], "busy": []}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(env, Path(tmp))
        try:
            server.chat(question.format(n=0))  # warm-up
            for n in range(1, chats + 1):
                for mode in ("idle", "busy") if n % 2 else ("busy", "idle"):
                    document = None
                    if mode == "busy":  # a fresh scan each time (the same bytes would be one document)
                        pages = [scanned_page(SENTENCES[:6], 12, 1.0, 8, seed=n * 100 + p) for p in range(12)]
                        document = httpx.post(f"{server.url}/api/documents", timeout=120, files={
                            "file": (f"scan{n}.pdf", scanned_pdf_bytes(pages))}).json()["id"]
                        _wait(server.url, document, lambda d: (d["stage"] or {}).get("step") == "ocr")
                    speeds[mode].append(server.chat(question.format(n=n)))
                    if document:
                        still = _wait(server.url, document, lambda d: True)["stage"]
                        assert still and still["step"] == "ocr", "the scan was read before the chat ended"
                        _wait(server.url, document, lambda d: d["status"] != "ingesting", 600)
        finally:
            server.close()
    idle, busy = statistics.median(speeds["idle"]), statistics.median(speeds["busy"])
    print(f"(4) chat while a scan is OCR'd: {busy:.1f} tok/s vs idle {idle:.1f} tok/s: ratio {busy / idle:.3f}")
    return {"chat_threads": cores, "tok_s_idle": idle, "tok_s_busy": busy, "ratio": busy / idle,
            "all_idle": speeds["idle"], "all_busy": speeds["busy"]}


def _wait(url: str, document_id: str, done, timeout: float = 120) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        document = next(d for d in httpx.get(f"{url}/api/documents").json()["documents"] if d["id"] == document_id)
        if done(document) or time.monotonic() > deadline:
            return document
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chats", type=int, default=4)
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--psm", type=int, default=Ocr().page_mode, help="tesseract page segmentation mode")
    args = parser.parse_args()
    cfg = Ocr(dpi=args.dpi, page_mode=args.psm)
    quality = bench_quality(args.lines, cfg)
    speed = bench_speed(quality.pop("pdf"), quality["project_pages_per_min"], cfg)
    text_pdf = bench_text_pdf(args.rounds)
    chat = chat_while_ocr(args.chats)
    print(json.dumps({"quality": quality, "speed": speed, "text_pdf": text_pdf, "chat": chat}))


if __name__ == "__main__":
    main()
