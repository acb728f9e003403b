"""Retrieval quality on the parallel Korean/English set (tests/rag_eval_set.py), through the real
engine (vector + keywords + fusion + relevance gate) and with raw cosine alone, plus the
similarity figures the embedder's calibration (models/embedder.py) rests on.

    .venv/bin/python bench/rag_eval.py [--embedder use-multilingual|sentence-transformers] [--model FOLDER]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.contracts import Chunk  # noqa: E402
from rag_engine import RagEngine  # noqa: E402
from settings import Rag  # noqa: E402
from tests.rag_eval_set import (  # noqa: E402
    DOCUMENTS,
    QUESTIONS_EN,
    QUESTIONS_KO,
    UNRELATED_EN,
    UNRELATED_KO,
)

LANGUAGES = {"ko": 0, "en": 1}


def fill(engine: RagEngine) -> None:
    for doc_id, texts in DOCUMENTS.items():
        for language, index in LANGUAGES.items():
            engine.ingest(f"{language}:{doc_id}", f"{doc_id}.{language}.txt", [Chunk(0, texts[index], None)])


def recall(engine: RagEngine, questions: list[tuple[str, str]], library: str) -> dict:
    """recall@1 and @5 of questions against the documents of one language, through search()."""
    scope = {f"{library}:{doc_id}" for doc_id in DOCUMENTS}
    at1 = at5 = 0
    for question, expected in questions:
        ranked = [hit.document_id for hit in engine.search(question, k=5, documents=scope)]
        at1 += bool(ranked) and ranked[0] == f"{library}:{expected}"
        at5 += f"{library}:{expected}" in ranked
    return {"recall@1": round(at1 / len(questions), 3), "recall@5": round(at5 / len(questions), 3)}


def raw_recall(vectors: dict[str, np.ndarray], engine: RagEngine, questions: list[tuple[str, str]],
               library: str) -> dict:
    ids = list(DOCUMENTS)
    matrix = np.stack([vectors[f"{library}:{doc_id}"] for doc_id in ids])
    scores = engine.embedder.encode([q for q, _ in questions]) @ matrix.T
    at1 = at5 = 0
    for row, (_, expected) in zip(scores, questions):
        order = [ids[i] for i in np.argsort(-row)]
        at1 += order[0] == expected
        at5 += expected in order[:5]
    return {"recall@1": round(at1 / len(questions), 3), "recall@5": round(at5 / len(questions), 3)}


def calibration(vectors: dict[str, np.ndarray], engine: RagEngine) -> dict:
    """Cosine of each question to its right passage and to the best wrong one (same language),
    and of unrelated questions to their best passage: what min_similarity has to separate."""
    right, wrong, unrelated = [], [], []
    for language, questions, off_topic in (("ko", QUESTIONS_KO, UNRELATED_KO), ("en", QUESTIONS_EN, UNRELATED_EN)):
        ids = list(DOCUMENTS)
        matrix = np.stack([vectors[f"{language}:{doc_id}"] for doc_id in ids])
        scores = engine.embedder.encode([q for q, _ in questions]) @ matrix.T
        for row, (_, expected) in zip(scores, questions):
            right.append(float(row[ids.index(expected)]))
            wrong.append(float(max(s for i, s in enumerate(row) if ids[i] != expected)))
        unrelated += [float(s) for s in (engine.embedder.encode(off_topic) @ matrix.T).max(axis=1)]

    def spread(values: list[float]) -> str:
        return f"{min(values):.2f}-{max(values):.2f} (median {statistics.median(values):.2f})"

    threshold = engine.embedder.calibration.min_similarity
    return {"right": spread(right), "best_wrong": spread(wrong), "unrelated_best": spread(unrelated),
            "threshold": threshold, "right_kept": round(sum(s >= threshold for s in right) / len(right), 3),
            "unrelated_passed": round(sum(s >= threshold for s in unrelated) / len(unrelated), 3)}


def evaluate(cfg: Rag) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        engine = RagEngine(cfg, Path(folder) / "db")
        fill(engine)
        vectors = {}
        for doc_id, texts in DOCUMENTS.items():
            for language, index in LANGUAGES.items():
                vectors[f"{language}:{doc_id}"] = engine.embedder.encode([texts[index]])[0]
        result = {"embedder": engine.embedder.name, "engine": {
            "ko": recall(engine, QUESTIONS_KO, "ko"), "en": recall(engine, QUESTIONS_EN, "en"),
            "ko->en": recall(engine, QUESTIONS_KO, "en"), "en->ko": recall(engine, QUESTIONS_EN, "ko")},
            "raw_cosine": {
            "ko": raw_recall(vectors, engine, QUESTIONS_KO, "ko"), "en": raw_recall(vectors, engine, QUESTIONS_EN, "en"),
            "ko->en": raw_recall(vectors, engine, QUESTIONS_KO, "en"),
            "en->ko": raw_recall(vectors, engine, QUESTIONS_EN, "ko")},
            "calibration": calibration(vectors, engine),
            "unrelated_with_hits": sum(bool(engine.search(q)) for q in UNRELATED_KO + UNRELATED_EN)}
        engine.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="use-multilingual")
    parser.add_argument("--model", type=Path)
    args = parser.parse_args()
    result = evaluate(Rag(embedder=args.embedder, embedding_model=args.model))
    print(f"embedder {result['embedder']}: {len(DOCUMENTS)} documents x 2 languages, "
          f"{len(QUESTIONS_KO)} questions per language")
    for kind in ("engine", "raw_cosine"):
        print(f"  {kind:10s} " + "  ".join(f"{name} @1 {r['recall@1']:.2f} @5 {r['recall@5']:.2f}"
                                          for name, r in result[kind].items()))
    c = result["calibration"]
    print(f"  cosine: right passage {c['right']}, best wrong passage {c['best_wrong']}, unrelated question's best "
          f"{c['unrelated_best']}; at min_similarity {c['threshold']}: {c['right_kept']:.0%} of right passages "
          f"kept, {c['unrelated_passed']:.0%} of unrelated questions pass; unrelated questions with hits through "
          f"the engine: {result['unrelated_with_hits']}/{len(UNRELATED_KO) + len(UNRELATED_EN)}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
