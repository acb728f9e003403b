"""Uploads into the document library: validate and parse at once, embed in the background.

A bad upload is refused before anything is stored (the request gets the parser's 4xx);
a good one is recorded as "ingesting", its file saved under data/uploads/documents under a
generated name (the original name is metadata only), and embedded in a worker thread while
the page polls the library for progress; then "ready" (or "failed" with the reason).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

from core.errors import AppError, BadUpload
from core.threads import run_blocking
from documents.chunking import chunk_sections
from documents.parsing import Section, clean_filename, kind_of, parse
from rag_engine import Hit, RagEngine
from settings import Rag
from store.documents import DocumentStore

log = logging.getLogger(__name__)


class DocumentLibrary:
    def __init__(self, store: DocumentStore, rag: RagEngine, folder: Path, cfg: Rag) -> None:
        self.store = store
        self.rag = rag
        self.folder = folder
        self.cfg = cfg
        self._progress: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()

    @property
    def max_bytes(self) -> int:
        return self.cfg.max_upload_mb * 1024 * 1024

    async def upload(self, filename: str, data: bytes, session_id: str | None = None) -> tuple[dict, bool]:
        """Returns (the document, True if new). The same content again changes nothing."""
        name = clean_filename(filename)
        kind = kind_of(name)
        if len(data) > self.max_bytes:
            raise BadUpload(f"{name} is too large: {len(data)} bytes, at most {self.max_bytes}",
                            code="file_too_large", status=413)
        if session_id is not None:
            await self.store.check_session(session_id)
        sections = await run_blocking(parse, data, name)  # every parse error is the caller's 4xx
        document_id = hashlib.sha256(data).hexdigest()[:32]
        document, created = await self.store.add_document(document_id, name, kind, len(data))
        if created:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = self.folder / f".{document_id}.part"
            temporary.write_bytes(data)
            os.replace(temporary, self.folder / f"{document_id}.{kind}")
            self._progress[document_id] = 0.0
            task = asyncio.create_task(self._ingest(document_id, name, sections))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if session_id is not None:
            await self.store.attach_document(document_id, session_id)
        return await self.get(document_id), created

    async def _ingest(self, document_id: str, name: str, sections: list[Section]) -> None:
        loop = asyncio.get_running_loop()

        def progress(fraction: float) -> None:  # from the embedding thread
            loop.call_soon_threadsafe(self._progress.__setitem__, document_id, fraction)

        try:
            chunks = chunk_sections(sections, self.cfg.chunk_chars, self.cfg.chunk_overlap)
            count = await run_blocking(self.rag.ingest, document_id, name, chunks, progress)
            await self.store.update_document(document_id, status="ready", chunks=count, progress=1.0)
        except asyncio.CancelledError:
            await self.store.update_document(document_id, status="failed", error="interrupted: upload it again")
            raise
        except Exception as exc:
            log.exception("ingest of %s failed", name)
            reason = exc.message if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
            await self.store.update_document(document_id, status="failed", error=reason)
        finally:
            self._progress.pop(document_id, None)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await run_blocking(self.rag.close)

    def reindex_state(self) -> dict | None:
        """The library's re-embedding after an embedder change, while it runs."""
        return self.rag.reindex_state()

    def _with_progress(self, document: dict) -> dict:
        """The record, with the live progress of an ingest under way (the table has the last saved)."""
        if document["id"] in self._progress:
            document["progress"] = round(self._progress[document["id"]], 3)
        return document

    async def get(self, document_id: str) -> dict:
        return self._with_progress(await self.store.get_document(document_id))

    async def list(self) -> list[dict]:
        return [self._with_progress(document) for document in await self.store.list_documents()]

    async def delete(self, document_id: str) -> None:
        document = await self.store.get_document(document_id)
        if document["status"] == "ingesting":
            raise AppError("the document is still being ingested; delete it when it is ready",
                           code="document_busy", status=409)
        if self.rag.ready or document["status"] == "ready":
            await run_blocking(self.rag.delete, document_id)
        await self.store.delete_document(document_id)
        (self.folder / f"{document_id}.{document['kind']}").unlink(missing_ok=True)

    async def search(self, query: str, k: int | None = None, documents: set[str] | None = None) -> list[Hit]:
        return await run_blocking(self.rag.search, query, k, documents)

    async def attach(self, document_id: str, session_id: str) -> None:
        """Let the document answer in that session (its "this conversation" scope)."""
        await self.store.attach_document(document_id, session_id)

    async def session_documents(self, session_id: str) -> set[str]:
        """The ready documents attached to the session."""
        return await self.store.session_documents(session_id)

    async def has_documents(self) -> bool:
        return await self.store.has_ready_documents()
