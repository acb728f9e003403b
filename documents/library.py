"""Uploads into the document library: validate and parse at once, OCR and embed in the background.

A bad upload is refused before anything is stored (the request gets the parser's 4xx);
a good one is recorded as "ingesting", its file saved under data/uploads/documents under a
generated name (the original name is metadata only), its scanned pages read by OCR and its
chunks embedded in worker threads while the page polls the library for progress (`stage`:
which step, pages done); then "ready" (or "failed" with the reason). A document that yields
no text is never "ready" with 0 chunks: without an OCR engine it is refused saying what is
missing; when OCR finds nothing it is "failed" saying so.
"""
from __future__ import annotations

import asyncio
import builtins
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.errors import AppError, BadUpload
from core.threads import lowest_priority, run_blocking
from documents.chunking import chunk_sections
from documents.ocr import TesseractOcr
from documents.parsing import Section, clean_filename, kind_of, parse
from documents.scans import read_scans
from rag_engine import Hit, RagEngine
from settings import Ocr, Rag, env_name
from store.documents import DocumentStore

log = logging.getLogger(__name__)


class DocumentLibrary:
    def __init__(self, store: DocumentStore, rag: RagEngine, folder: Path, cfg: Rag, ocr_cfg: Ocr | None = None,
                 ocr: TesseractOcr | None = None) -> None:
        self.store = store
        self.rag = rag
        self.folder = folder
        self.cfg = cfg
        self.ocr_cfg = ocr_cfg or Ocr()
        self.ocr = ocr or TesseractOcr(self.ocr_cfg)
        self._progress: dict[str, float] = {}
        self._stage: dict[str, dict] = {}
        # Pages are rendered in this process: on a thread of its own at the lowest priority, so
        # neither rendering nor tesseract (nice 19 too) takes a core from the chat model.
        self._ocr_thread = ThreadPoolExecutor(1, thread_name_prefix="ocr", initializer=lowest_priority)
        self._tasks: set[asyncio.Task] = set()

    @property
    def max_bytes(self) -> int:
        return self.cfg.max_upload_mb * 1024 * 1024

    async def upload(self, filename: str, data: bytes, session_id: str | None = None) -> tuple[dict, bool]:
        """Returns (the document, True if new). The same content again changes nothing."""
        name = clean_filename(filename)
        if len(data) > self.max_bytes:
            raise BadUpload(f"{name} is too large: {len(data)} bytes, at most {self.max_bytes}",
                            code="file_too_large", status=413)
        kind = kind_of(name, data)
        if session_id is not None:
            await self.store.check_session(session_id)
        sections = await run_blocking(parse, data, name, self.ocr_cfg.max_image_pixels, kind)  # errors: the caller's 4xx
        await self._check_ocr(name, sections)
        document_id = hashlib.sha256(data).hexdigest()[:32]
        _document, created = await self.store.add_document(document_id, name, kind, len(data))
        if created:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = self.folder / f".{document_id}.part"
            temporary.write_bytes(data)
            os.replace(temporary, self.folder / f"{document_id}.{kind}")
            self._progress[document_id] = 0.0
            task = asyncio.create_task(self._ingest(document_id, name, kind, data, sections))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if session_id is not None:
            await self.store.attach_document(document_id, session_id)
        return await self.get(document_id), created

    async def _check_ocr(self, name: str, sections: list[Section]) -> None:
        """Pages that need OCR: refused now if there is no OCR and nothing else to keep, or too many."""
        pending = [s for s in sections if s.needs_ocr]
        if not pending:
            return
        if len(pending) > self.ocr_cfg.max_pages:
            raise BadUpload(f"{name}: {len(pending)} pages need OCR, at most {self.ocr_cfg.max_pages} "
                            f"({env_name('ocr', 'max_pages')})", code="too_many_pages", status=413)
        status = await run_blocking(self.ocr.status)
        if not status.available and not any(s.text for s in sections):
            what = "그림" if pending[0].needs_ocr == "picture" else "스캔했거나 글자 층이 깨진 PDF"
            raise BadUpload(f"{name}: {what}라 글자를 OCR로 읽어야 하는데, OCR을 쓸 수 없습니다 — {status.reason}",
                            code="ocr_unavailable", status=422)

    async def _ingest(self, document_id: str, name: str, kind: str, data: bytes, sections: list[Section]) -> None:
        loop = asyncio.get_running_loop()
        pending = sum(1 for s in sections if s.needs_ocr)
        ocr_share = 0.9 if pending else 0.0  # of the progress bar: OCR is by far the slower step

        def read(done: int, total: int) -> None:  # from the OCR thread
            loop.call_soon_threadsafe(self._set_stage, document_id, {"step": "ocr", "done": done, "total": total},
                                      ocr_share * done / total)

        def progress(fraction: float) -> None:  # from the embedding thread
            loop.call_soon_threadsafe(self._set_stage, document_id, {"step": "embedding"},
                                      ocr_share + (1 - ocr_share) * fraction)

        try:
            notice = None
            if pending:
                self._set_stage(document_id, {"step": "ocr", "done": 0, "total": pending}, 0.0)
                sections, notice = await self._read_scans(name, kind, data, sections, read)
            if not any(s.text for s in sections):
                raise AppError("OCR로도 글자를 찾지 못했습니다: 그림에 글자가 없거나 너무 흐립니다."
                               + (f" ({notice})" if notice else ""), code="no_text", status=422)
            chunks = chunk_sections(sections, self.cfg.chunk_chars, self.cfg.chunk_overlap)
            count = await run_blocking(self.rag.ingest, document_id, name, chunks, progress)
            await self.store.update_document(document_id, status="ready", chunks=count, progress=1.0, notice=notice,
                                             ocr_pages=sum(1 for s in sections if s.by_ocr))
        except asyncio.CancelledError:
            await self.store.update_document(document_id, status="failed", error="interrupted: upload it again")
            raise
        except Exception as exc:
            log.exception("ingest of %s failed", name)
            reason = exc.message if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
            await self.store.update_document(document_id, status="failed", error=reason)
        finally:
            self._progress.pop(document_id, None)
            self._stage.pop(document_id, None)

    async def _read_scans(self, name: str, kind: str, data: bytes, sections: list[Section],
                          read) -> tuple[list[Section], str | None]:
        """OCR of the pages that need it, or the note of why they were left out."""
        status = await run_blocking(self.ocr.status)
        pages = [str(s.page) for s in sections if s.needs_ocr and s.page]
        if not status.available:  # there is other text to keep: say what was left out
            return [s for s in sections if not s.needs_ocr], f"OCR 없이 빠진 쪽: {', '.join(pages)} — {status.reason}"
        sections, problems = await run_blocking(read_scans, data, kind, name, sections, self.ocr, self.ocr_cfg.dpi,
                                                self.ocr_cfg.max_image_pixels, read, executor=self._ocr_thread)
        return sections, ("OCR이 실패한 쪽: " + "; ".join(problems)) if problems else None

    def _set_stage(self, document_id: str, stage: dict, fraction: float) -> None:
        self._stage[document_id] = stage
        self._progress[document_id] = fraction

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await run_blocking(self.rag.close)
        self._ocr_thread.shutdown(wait=False, cancel_futures=True)

    def reindex_state(self) -> dict | None:
        """The library's re-embedding after an embedder change, while it runs."""
        return self.rag.reindex_state()

    def _with_progress(self, document: dict) -> dict:
        """The record, with the live progress of an ingest under way (the table has the last saved)."""
        if document["id"] in self._progress:
            document["progress"] = round(self._progress[document["id"]], 3)
        document["stage"] = self._stage.get(document["id"])
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

    def ocr_status(self) -> dict:
        """Whether pictures and scans can be read, for the page (probed once, then kept)."""
        status = self.ocr.status()
        return {"available": status.available, "engine": status.engine, "languages": status.languages,
                "reason": status.reason}

    async def search(self, query: str, k: int | None = None, documents: set[str] | None = None) -> builtins.list[Hit]:
        return await run_blocking(self.rag.search, query, k, documents)

    async def attach(self, document_id: str, session_id: str) -> None:
        """Let the document answer in that session (its "this conversation" scope)."""
        await self.store.attach_document(document_id, session_id)

    async def session_documents(self, session_id: str) -> set[str]:
        """The ready documents attached to the session."""
        return await self.store.session_documents(session_id)

    async def has_documents(self) -> bool:
        return await self.store.has_ready_documents()
