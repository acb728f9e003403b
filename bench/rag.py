"""Document RAG: ingest throughput vs the raw embedder, and retrieval latency at 10,000 chunks.

(1) The same chunks embedded by raw `SentenceTransformer.encode` and ingested by rag_engine
    (embed + Chroma upsert + keyword index), alternating: chunks/s of each and their ratio.
(2) Hybrid search (query embedding + Chroma + BM25 + fusion) over 10,000 chunks: p50 / p95
    latency of 200 Korean and English questions, the LLM excluded.

    .venv/bin/python bench/rag.py [--chunks 2000] [--library 10000] [--queries 200]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chunking import Chunk  # noqa: E402
from rag_engine import RagEngine  # noqa: E402
from settings import Rag  # noqa: E402

PLACES = ["서울", "부산", "제주", "경주", "전주", "인천", "대구", "광주", "Seoul", "Busan", "Jeju", "Daegu"]
TOPICS = ["시장", "축제", "음식", "박물관", "해변", "산", "공항", "예산", "회의", "계약", "market", "festival",
          "budget", "meeting", "museum", "contract", "harbour", "airport"]


def synthetic_chunks(n: int, seed: int = 0) -> list[str]:
    """Chunks of ~400-600 characters mixing Korean and English sentences, all different."""
    rng = random.Random(seed)
    chunks = []
    for i in range(n):
        sentences = []
        while sum(len(s) for s in sentences) < rng.randint(400, 600):
            place, topic = rng.choice(PLACES), rng.choice(TOPICS)
            if rng.random() < 0.6:
                sentences.append(f"{place}의 {topic}에 관한 기록 {i}-{len(sentences)}: 올해 {rng.randint(1, 99)}건이 "
                                 f"보고되었고 담당자는 {rng.choice(['김', '이', '박', '최'])}씨이다.")
            else:
                sentences.append(f"Note {i}-{len(sentences)} on the {topic} in {place}: {rng.randint(1, 99)} items "
                                 f"were reported this year.")
        chunks.append(" ".join(sentences))
    return chunks


def questions(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(PLACES)}에서 {rng.choice(TOPICS)}은 몇 건이었나요?" if rng.random() < 0.6
            else f"How many {rng.choice(TOPICS)} items were reported in {rng.choice(PLACES)}?" for _ in range(n)]


def as_chunks(texts: list[str]) -> list[Chunk]:
    return [Chunk(i, text, None) for i, text in enumerate(texts)]


def bench_ingest(texts: list[str], rounds: int = 3) -> dict:
    raw_rates, rag_rates = [], []
    with tempfile.TemporaryDirectory() as folder:
        for r in range(rounds):
            engine = RagEngine(Rag(), Path(folder) / f"db{r}")
            engine.open()  # model loading is not ingest
            model = engine._model
            started = time.perf_counter()
            model.encode(texts, batch_size=engine.cfg.batch_size, normalize_embeddings=True,
                         convert_to_numpy=True, show_progress_bar=False)
            raw_rates.append(len(texts) / (time.perf_counter() - started))
            started = time.perf_counter()
            engine.ingest(f"doc{r}", "bench.txt", as_chunks(texts))
            rag_rates.append(len(texts) / (time.perf_counter() - started))
    result = {"chunks": len(texts), "raw_chunks_per_s": statistics.median(raw_rates),
              "rag_chunks_per_s": statistics.median(rag_rates)}
    result["ratio"] = result["rag_chunks_per_s"] / result["raw_chunks_per_s"]
    print(f"(1) ingest {len(texts)} chunks: raw encode {result['raw_chunks_per_s']:.0f}/s, rag_engine "
          f"{result['rag_chunks_per_s']:.0f}/s, ratio {result['ratio']:.3f} (target >= 0.90)")
    return result


def bench_search(library: int, n_queries: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        engine = RagEngine(Rag(), Path(folder) / "db")
        texts = synthetic_chunks(library, seed=7)
        started = time.perf_counter()
        for start in range(0, library, 2000):  # ten documents of 1,000 chunks
            part = texts[start:start + 2000]
            engine.ingest(f"doc{start // 2000}", f"doc{start // 2000}.txt", as_chunks(part))
        built = time.perf_counter() - started
        for question in questions(10, seed=99):  # warm-up
            engine.search(question)
        latencies, found = [], 0
        for question in questions(n_queries):
            started = time.perf_counter()
            hits = engine.search(question)
            latencies.append((time.perf_counter() - started) * 1000)
            found += bool(hits)
    latencies.sort()
    result = {"chunks": library, "build_s": built, "queries": n_queries,
              "p50_ms": statistics.median(latencies), "p95_ms": latencies[int(0.95 * len(latencies)) - 1],
              "with_hits": found}
    print(f"(2) search over {library} chunks: p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms "
          f"(target p95 <= 50 ms); {found}/{n_queries} questions found passages; library built in {built:.0f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--library", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--only", choices=("ingest", "search"))
    args = parser.parse_args()
    summary = {}
    if args.only in (None, "ingest"):
        summary["ingest"] = bench_ingest(synthetic_chunks(args.chunks))
    if args.only in (None, "search"):
        summary["search"] = bench_search(args.library, args.queries)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
