"""Document RAG: ingest throughput vs the raw embedder, and retrieval latency at 10,000 and
100,000 chunks, with the configured embedder (default: USE multilingual).

(1) The same chunks embedded by the raw embedder (`encode`) and ingested by rag_engine
    (embed + Chroma upsert + keyword index), alternating: chunks/s of each and their ratio.
(2) Hybrid search (query embedding + Chroma + BM25 + fusion) over 10,000 ingested chunks:
    p50 / p95 latency of 200 Korean and English questions, the LLM excluded, and where the
    time goes (query embedding, vector query, keywords).
(3) The scale point: 100,000 chunks. Their vectors are precomputed (5,000 embedded texts, each
    reused with a little noise) so the bench does not spend an hour embedding; Chroma, the
    keyword index and search are real. p50 / p95 and the process's RSS.

    .venv/bin/python bench/rag.py [--chunks 2000] [--library 10000] [--scale 100000] [--queries 200]
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.contracts import Chunk  # noqa: E402
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
            started = time.perf_counter()
            engine.embedder.encode(texts)
            raw_rates.append(len(texts) / (time.perf_counter() - started))
            started = time.perf_counter()
            engine.ingest(f"doc{r}", "bench.txt", as_chunks(texts))
            rag_rates.append(len(texts) / (time.perf_counter() - started))
    result = {"chunks": len(texts), "raw_chunks_per_s": statistics.median(raw_rates),
              "rag_chunks_per_s": statistics.median(rag_rates)}
    result["ratio"] = result["rag_chunks_per_s"] / result["raw_chunks_per_s"]
    print(f"(1) ingest {len(texts)} chunks ({engine.embedder.name}): raw encode {result['raw_chunks_per_s']:.0f}/s, rag_engine "
          f"{result['rag_chunks_per_s']:.0f}/s, ratio {result['ratio']:.3f} (target >= 0.90)")
    return result


def timed_search(engine: RagEngine, queries: list[str]) -> dict:
    """p50 / p95 of search(), and the share of the query embedding, vector and keyword parts."""
    parts = {"embed": 0.0, "vector": 0.0, "keywords": 0.0}
    embedder = engine.embedder
    real_encode, real_keywords = embedder.encode, engine._add_keyword_hits

    def encode(texts):
        started = time.perf_counter()
        try:
            return real_encode(texts)
        finally:
            parts["embed"] += time.perf_counter() - started

    def keywords(*args):
        started = time.perf_counter()
        try:
            return real_keywords(*args)
        finally:
            parts["keywords"] += time.perf_counter() - started

    embedder.encode, engine._add_keyword_hits = encode, keywords  # type: ignore[method-assign]
    for question in questions(10, seed=99):  # warm-up
        engine.search(question)
    parts = dict.fromkeys(parts, 0.0)
    latencies, found = [], 0
    try:
        for question in queries:
            started = time.perf_counter()
            hits = engine.search(question)
            latencies.append((time.perf_counter() - started) * 1000)
            found += bool(hits)
    finally:
        del embedder.encode, engine._add_keyword_hits
    latencies.sort()
    total = sum(latencies) / 1000
    parts["vector"] = total - parts["embed"] - parts["keywords"]
    return {"queries": len(queries), "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[int(0.95 * len(latencies)) - 1], "with_hits": found,
            "split_ms": {k: round(v * 1000 / len(queries), 2) for k, v in parts.items()}}


def bench_search(library: int, n_queries: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        engine = RagEngine(Rag(), Path(folder) / "db")
        texts = synthetic_chunks(library, seed=7)
        started = time.perf_counter()
        for start in range(0, library, 2000):  # documents of 2,000 chunks
            part = texts[start:start + 2000]
            engine.ingest(f"doc{start // 2000}", f"doc{start // 2000}.txt", as_chunks(part))
        built = time.perf_counter() - started
        result = {"chunks": library, "build_s": built} | timed_search(engine, questions(n_queries))
    print(f"(2) search over {library} chunks: p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms "
          f"(target p95 <= 50 ms); per query: {result['split_ms']}; {result['with_hits']}/{n_queries} questions "
          f"found passages; library built in {built:.0f} s")
    return result


def bench_scale(library: int, n_queries: int, distinct: int = 5000) -> dict:
    """Chroma + keywords at `library` chunks, with precomputed vectors."""
    with tempfile.TemporaryDirectory() as folder:
        engine = RagEngine(Rag(), Path(folder) / "db")
        engine.open()
        rng = np.random.default_rng(3)
        texts = synthetic_chunks(library, seed=11)
        base = engine.embedder.encode(texts[:distinct])
        started = time.perf_counter()
        batch = 5000
        for start in range(0, library, batch):  # what ingest() does, with the vectors given
            part = texts[start:start + batch]
            vectors = base[np.arange(start, start + len(part)) % distinct]
            vectors = vectors + rng.normal(0, 0.02, vectors.shape).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            document_id = f"doc{start // 1000}"
            ids = [f"{document_id}:{start + i}" for i in range(len(part))]
            for offset in range(0, len(part), 1000):
                engine._collection.upsert(
                    ids=ids[offset:offset + 1000], embeddings=vectors[offset:offset + 1000],
                    documents=part[offset:offset + 1000],
                    metadatas=[{"document_id": f"doc{(start + offset + i) // 1000}", "name": "bench.txt",
                                "index": start + offset + i, "page": 0} for i in range(len(part[offset:offset + 1000]))])
            for i, text in enumerate(part):
                engine._keywords.add(ids[i], f"doc{(start + i) // 1000}", text)
        built = time.perf_counter() - started
        result = {"chunks": library, "build_s": built} | timed_search(engine, questions(n_queries, seed=5))
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(3) search over {library} chunks: p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms "
          f"(target p95 <= 100 ms); per query: {result['split_ms']}; peak RSS {result['rss_mb']:.0f} MB; "
          f"built in {built:.0f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--library", type=int, default=10_000)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--only", choices=("ingest", "search", "scale"))
    args = parser.parse_args()
    summary = {}
    if args.only in (None, "ingest"):
        summary["ingest"] = bench_ingest(synthetic_chunks(args.chunks))
    if args.only in (None, "search"):
        summary["search"] = bench_search(args.library, args.queries)
    if args.only in (None, "scale"):
        summary["scale"] = bench_scale(args.scale, args.queries)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
