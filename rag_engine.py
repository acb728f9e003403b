"""Document retrieval: CPU embeddings, persistent Chroma, Korean-aware keywords.

Never touches the GPU or the model slot: the shared embedder (models/embedder.py) runs on the CPU.
Chunk ids are document id + index, so the same content uploaded twice changes nothing.
Search fuses vector and keyword (BM25) rankings by reciprocal rank; a chunk must pass a
relevance threshold on at least one of them.

One Chroma collection per embedder (`aione_<embedder>_<dim>`), its identity in the
collection's metadata. When the configured embedder changes, the library is re-embedded
in a background thread from the chunk texts Chroma already holds; until the new collection
is complete, search still uses the old one (with the old embedder, when it can still be
built) and the keyword index covers every chunk, so no document becomes unsearchable. The
old collection is dropped once the new one is complete; a restart mid-way resumes.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from core.contracts import Chunk
from models.embedder import Embedder, EmbedderSpec, SharedEmbedder, shared_embedder
from rag.bm25 import KeywordIndex
from settings import Rag

log = logging.getLogger(__name__)
LEGACY_COLLECTION = "aione_chunks"  # before per-embedder collections (all-MiniLM-L6-v2 or a user's folder)
RRF_K = 60
REINDEX_BATCH = 256


def collection_name(embedder: Embedder) -> str:
    return f"aione_{embedder.name}_{embedder.dim}"[:63]


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
    ocr: bool = False  # the passage was read by OCR


@dataclass
class Reindex:
    """A re-embedding under way: from the old collection into the current one."""

    source: Any  # the old Chroma collection (complete)
    source_embedder: Embedder | None  # None: it cannot be built any more; then keywords carry the old part
    total: int = 0
    done: int = 0
    error: str | None = None

    def state(self, target: str) -> dict:
        return {"from": self.source.name, "to": target, "done": self.done, "total": self.total, "error": self.error}


@dataclass(frozen=True)
class VectorSource:
    collection: Any
    embedder: Embedder
    min_similarity: float


class RagEngine:
    def __init__(self, cfg: Rag, db_folder: Path, embedder: SharedEmbedder | None = None) -> None:
        self.cfg = cfg
        self.db_folder = db_folder
        self.shared = embedder or shared_embedder(cfg)
        self._embedder: Embedder | None = None
        self._collection = None
        self._reindex: Reindex | None = None
        self._keywords = KeywordIndex()
        self._lock = threading.RLock()  # one writer at a time; Chroma and the index change together
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._chroma = None

    # ---- setup ------------------------------------------------------------------------------
    def open(self) -> None:
        """Load the embedder and the store, rebuild the keyword index, resume any re-index."""
        with self._lock:
            if self._collection is not None:
                return
            embedder = self.shared.get()
            client = self._client()
            name = collection_name(embedder)
            others = [c for c in client.list_collections() if c.name != name
                      and (c.name == LEGACY_COLLECTION or c.name.startswith("aione_"))]
            nothing_to_move = not any(c.count() for c in others)
            collection = client.get_or_create_collection(
                name, embedding_function=None,
                metadata={"hnsw:space": "cosine", "complete": nothing_to_move} | _spec_meta(self))
            if collection.metadata.get("complete") or nothing_to_move:
                for old in others:  # what a finished re-index left behind (or empty ones)
                    client.delete_collection(old.name)
            else:
                # the old library: a complete collection (or the legacy one) with the most chunks
                source = max(others, key=lambda c: (bool((c.metadata or {}).get("complete", True)), c.count()))
                self._reindex = Reindex(source, _build_old_embedder(source, embedder), total=source.count())
                self._index_keywords(source)
            self._embedder, self._collection = embedder, collection
            self._index_keywords(collection)
            log.info("RAG ready: %d chunks, embedder %s%s", len(self._keywords), embedder.name,
                     f", re-embedding from {self._reindex.source.name}" if self._reindex else "")
            if self._reindex is not None:
                self._worker = threading.Thread(target=self._run_reindex, name="rag-reindex", daemon=True)
                self._worker.start()

    def _index_keywords(self, collection) -> None:
        stored = collection.get(include=["documents", "metadatas"])
        for chunk_id, text, meta in zip(stored["ids"], stored["documents"], stored["metadatas"]):
            self._keywords.add(chunk_id, meta["document_id"], text)

    def _client(self):
        """The Chroma client (embedded, or a server's), made once."""
        if self._chroma is None:
            self._chroma = self._connect()
        return self._chroma

    def _connect(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        quiet = ChromaSettings(anonymized_telemetry=False)
        if self.cfg.chroma_url:
            url = urlparse(self.cfg.chroma_url)
            return chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                       ssl=url.scheme == "https", settings=quiet)
        self.db_folder.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(self.db_folder), settings=quiet)

    def close(self) -> None:
        """Stop a re-index between batches (it resumes at the next start)."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=30)

    @property
    def ready(self) -> bool:
        return self._collection is not None

    @property
    def embedder(self) -> Embedder:
        self.open()
        assert self._embedder is not None
        return self._embedder

    def reindex_state(self) -> dict | None:
        """Progress of a re-embedding under way, for the page; None when there is none."""
        reindex = self._reindex
        return None if reindex is None or self._collection is None else reindex.state(self._collection.name)

    # ---- re-embedding -----------------------------------------------------------------------
    def _run_reindex(self) -> None:
        reindex = self._reindex
        assert reindex is not None and self._collection is not None and self._embedder is not None
        try:
            todo = sorted(set(reindex.source.get(include=[])["ids"]) - set(self._collection.get(include=[])["ids"]))
            reindex.done = reindex.total - len(todo)
            for start in range(0, len(todo), REINDEX_BATCH):
                if self._stop.is_set():
                    return
                part = reindex.source.get(ids=todo[start:start + REINDEX_BATCH], include=["documents", "metadatas"])
                vectors = self._embedder.encode(part["documents"])
                with self._lock:  # a document deleted meanwhile must not come back
                    alive = set(reindex.source.get(ids=part["ids"], include=[])["ids"])
                    keep = [i for i, chunk_id in enumerate(part["ids"]) if chunk_id in alive]
                    if keep:
                        self._collection.upsert(ids=[part["ids"][i] for i in keep], embeddings=vectors[keep],
                                                documents=[part["documents"][i] for i in keep],
                                                metadatas=[part["metadatas"][i] for i in keep])
                reindex.done = min(reindex.total, reindex.done + len(part["ids"]))
            with self._lock:
                self._collection.modify(metadata={"complete": True} | _spec_meta(self))
                self._client().delete_collection(reindex.source.name)
                self._reindex = None
            log.info("re-embedding finished: %d chunks in %s", reindex.total, self._collection.name)
        except Exception as exc:  # keep serving from the old collection; the next start retries
            log.exception("re-embedding failed")
            reindex.error = f"{type(exc).__name__}: {exc}"

    # ---- documents --------------------------------------------------------------------------
    def ingest(self, document_id: str, name: str, chunks: list[Chunk],
               progress: Callable[[float], None] | None = None) -> int:
        """Embed and store a document's chunks (batch by batch, reporting progress 0..1).

        A batch is written (Chroma upsert + keyword index) on a thread of its own while the next
        one is embedded: the writes, ~10 % of an ingest, no longer add to the embedding time."""
        self.open()
        # Several batches per encode() call keep the embedder's own batching efficient;
        # progress stays fine-grained.
        batch = max(1, self.cfg.batch_size) * 8
        with ThreadPoolExecutor(1, thread_name_prefix="rag-write") as writer:
            pending: Future[None] | None = None
            for start in range(0, len(chunks), batch):
                part = chunks[start:start + batch]
                vectors = self.embedder.encode([c.text for c in part])
                if pending is not None:
                    pending.result()  # one write in flight at a time: errors surface in order
                pending = writer.submit(self._write, document_id, name, part, vectors)
                if progress:
                    pending.add_done_callback(_reporter(progress, (start + len(part)) / len(chunks)))
            if pending is not None:
                pending.result()
        return len(chunks)

    def _write(self, document_id: str, name: str, part: list[Chunk], vectors: Any) -> None:
        assert self._collection is not None
        ids = [f"{document_id}:{c.index}" for c in part]
        metas = [{"document_id": document_id, "name": name, "index": c.index, "page": c.page or 0, "ocr": c.ocr}
                 for c in part]
        with self._lock:
            self._collection.upsert(ids=ids, embeddings=vectors, documents=[c.text for c in part], metadatas=metas)
            for chunk_id, chunk in zip(ids, part):
                self._keywords.add(chunk_id, document_id, chunk.text)

    def delete(self, document_id: str) -> None:
        self.open()
        with self._lock:
            for collection in self._collections():
                collection.delete(where={"document_id": document_id})
            self._keywords.remove_document(document_id)

    def count(self) -> int:
        """Chunks in the library (during a re-embedding, in either collection)."""
        self.open()
        return len(self._keywords)

    def _collections(self) -> list:
        reindex = self._reindex
        return [self._collection] + ([reindex.source] if reindex is not None else [])

    # ---- retrieval --------------------------------------------------------------------------
    def _vector_sources(self) -> list[VectorSource]:
        assert self._collection is not None and self._embedder is not None
        threshold = self.cfg.min_similarity
        sources = [VectorSource(self._collection, self._embedder,
                                threshold if threshold is not None else self._embedder.calibration.min_similarity)]
        reindex = self._reindex
        if reindex is not None and reindex.source_embedder is not None:
            old = reindex.source_embedder
            sources.append(VectorSource(reindex.source, old, old.calibration.min_similarity))
        return sources

    def search(self, query: str, k: int | None = None, documents: set[str] | None = None) -> list[Hit]:
        """Top-k chunks by reciprocal-rank fusion of vector and keyword search, above the threshold."""
        self.open()
        k = k or self.cfg.top_k
        if documents is not None and not documents:
            return []
        depth = max(k * 4, 20)
        where = {"document_id": {"$in": sorted(documents)}} if documents else None
        found: dict[str, dict] = {}
        weight = self.embedder.calibration.vector_weight
        for source in self._vector_sources():
            total = source.collection.count()
            if not total:
                continue
            result = source.collection.query(query_embeddings=source.embedder.encode([query]),
                                             n_results=min(depth, total), where=where,
                                             include=["documents", "metadatas", "distances"])
            for rank, (chunk_id, text, meta, distance) in enumerate(zip(
                    result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0]), start=1):
                similarity = 1.0 - distance
                if chunk_id not in found or found[chunk_id]["rrf"] < weight / (RRF_K + rank):
                    found[chunk_id] = {"text": text, "meta": meta, "similarity": similarity,
                                       "close": similarity >= source.min_similarity, "rrf": weight / (RRF_K + rank)}
        self._add_keyword_hits(query, depth, documents, found)
        # Relevant: the keywords support it, or the meaning alone is close enough.
        relevant = [(c, e) for c, e in found.items()
                    if e.get("coverage", 0.0) >= self.cfg.min_keyword_match or e["close"]]
        ranked = sorted(relevant, key=lambda item: -item[1]["rrf"])[:k]
        return [Hit(chunk_id, e["meta"]["document_id"], e["meta"]["name"], e["meta"]["page"] or None, e["text"],
                    round(e["rrf"], 5), None if e["similarity"] is None else round(e["similarity"], 4),
                    None if e.get("keyword") is None else round(e["keyword"], 3), bool(e["meta"].get("ocr")))
                for chunk_id, e in ranked]

    def _add_keyword_hits(self, query: str, depth: int, documents: set[str] | None, found: dict[str, dict]) -> None:
        keyword_hits = self._keywords.search(query, depth, documents)
        missing = [c for c, _, _ in keyword_hits if c not in found]
        extra: dict[str, tuple] = {}  # keyword hits the vector search did not return
        for collection in self._collections():
            if missing:
                stored = collection.get(ids=missing, include=["documents", "metadatas"])
                extra |= {c: (t, m) for c, t, m in zip(stored["ids"], stored["documents"], stored["metadatas"])}
                missing = [c for c in missing if c not in extra]
        for rank, (chunk_id, score, coverage) in enumerate(keyword_hits, start=1):
            entry = found.get(chunk_id)
            if entry is None:
                if chunk_id not in extra:
                    continue
                text, meta = extra[chunk_id]
                entry = found[chunk_id] = {"text": text, "meta": meta, "similarity": None, "close": False, "rrf": 0.0}
            entry["keyword"], entry["coverage"] = score, coverage
            entry["rrf"] += 1 / (RRF_K + rank)


def _spec_meta(engine: RagEngine) -> dict:
    """The embedder's identity, stored with its collection."""
    spec = engine.shared.spec
    return {"embedder_kind": spec.kind, "embedder_folder": spec.folder, "embedder_model": spec.model}


def _build_old_embedder(collection, current: Embedder) -> Embedder | None:
    """The embedder that filled `collection`, to keep searching it during a re-embedding."""
    meta = collection.metadata or {}
    kind = meta.get("embedder_kind")
    if not kind:
        log.warning("collection %s does not say which embedder filled it: until the re-embedding ends, its "
                    "documents are found through keywords (and the part already re-embedded)", collection.name)
        return None
    try:
        old = EmbedderSpec(kind, meta.get("embedder_folder", ""), meta.get("embedder_model", "")).build()
        if collection_name(old) == collection_name(current):
            return None
        return old
    except Exception as exc:
        log.warning("the previous embedder (%s) cannot be loaded: %s; its documents are found through "
                    "keywords until the re-embedding ends", kind, exc)
        return None


def _reporter(progress: Callable[[float], None], share: float) -> Callable[[Future[None]], None]:
    """A callback saying `share` of the chunks are written (when their write completes)."""
    return lambda _written: progress(min(1.0, share))
