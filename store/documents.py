"""Uploaded documents (their rows: name, status, progress, chunk count) and which sessions
each is attached to. The text and vectors live in the RAG engine's store."""
from __future__ import annotations

import aiosqlite

from core.errors import NotFound
from store.db import Database, now_iso
from store.jsonl import JsonlLog


async def m003_documents(db: aiosqlite.Connection) -> None:
    await db.execute(
        """CREATE TABLE documents (
             id TEXT PRIMARY KEY,          -- content hash: the same file twice is one document
             name TEXT NOT NULL,
             kind TEXT NOT NULL,
             bytes INTEGER NOT NULL,
             chunks INTEGER NOT NULL DEFAULT 0,
             status TEXT NOT NULL CHECK (status IN ('ingesting', 'ready', 'failed')),
             progress REAL NOT NULL DEFAULT 0,
             error TEXT,
             created TEXT NOT NULL)"""
    )
    await db.execute(
        """CREATE TABLE document_sessions (
             document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
             session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
             PRIMARY KEY (document_id, session_id))"""
    )
    await db.execute("ALTER TABLE turns ADD COLUMN sources TEXT")  # JSON: the chunks an answer used


async def m009_document_ocr(db: aiosqlite.Connection) -> None:
    await db.execute("ALTER TABLE documents ADD COLUMN ocr_pages INTEGER NOT NULL DEFAULT 0")  # pages read by OCR
    await db.execute("ALTER TABLE documents ADD COLUMN notice TEXT")  # what a ready document lacks, and why


MIGRATIONS = [m003_documents, m009_document_ocr]


class DocumentStore:
    def __init__(self, db: Database, log: JsonlLog) -> None:
        self._db, self.log = db, log

    # ---- documents --------------------------------------------------------------------------
    async def add_document(self, document_id: str, name: str, kind: str, size: int) -> tuple[dict, bool]:
        """Record an upload; returns (the document, True if it was new). Same content: same record."""
        async with self._db.writing():
            async with self._db.execute("SELECT * FROM documents WHERE id = ?", (document_id,)) as cur:
                row = await cur.fetchone()
            if row is not None and row["status"] != "failed":
                return dict(row), False
            await self._db.execute(
                """INSERT OR REPLACE INTO documents (id, name, kind, bytes, chunks, status, progress, error, created,
                                                    ocr_pages, notice)
                   VALUES (?, ?, ?, ?, 0, 'ingesting', 0, NULL, ?, 0, NULL)""", (document_id, name, kind, size, now_iso()))
        self.log.write("document_added", {"document_id": document_id, "name": name, "bytes": size})
        return await self.get_document(document_id), True

    async def update_document(self, document_id: str, **fields) -> None:
        async with self._db.writing():
            allowed = {"chunks", "status", "progress", "error", "ocr_pages", "notice"}
            if not fields or set(fields) - allowed:
                raise ValueError(f"unknown document fields: {sorted(set(fields) - allowed)}")
            assignments = ", ".join(f"{key} = :{key}" for key in fields)
            await self._db.execute(f"UPDATE documents SET {assignments} WHERE id = :id", fields | {"id": document_id})

    async def get_document(self, document_id: str) -> dict:
        async with self._db.execute("SELECT * FROM documents WHERE id = ?", (document_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"document not found: {document_id[:64]}", code="document_not_found")
        document = dict(row)
        async with self._db.execute("SELECT session_id FROM document_sessions WHERE document_id = ?",
                                    (document_id,)) as cur:
            document["sessions"] = [r["session_id"] async for r in cur]
        return document

    async def list_documents(self) -> list[dict]:
        sql = """SELECT d.*, GROUP_CONCAT(s.session_id) AS session_list FROM documents d
                 LEFT JOIN document_sessions s ON s.document_id = d.id
                 GROUP BY d.id ORDER BY d.created DESC"""
        async with self._db.execute(sql) as cur:
            rows = [dict(row) async for row in cur]
        for row in rows:
            row["sessions"] = row.pop("session_list").split(",") if row["session_list"] else []
        return rows

    async def has_ready_documents(self) -> bool:
        """Cheap enough for every chat turn: may retrieval take part at all?"""
        async with self._db.execute("SELECT 1 FROM documents WHERE status = 'ready' LIMIT 1") as cur:
            return await cur.fetchone() is not None

    async def delete_document(self, document_id: str) -> None:
        async with self._db.writing():
            await self.get_document(document_id)
            await self._db.execute("DELETE FROM documents WHERE id = ?", (document_id,))
        self.log.write("document_deleted", {"document_id": document_id})

    async def check_session(self, session_id: str) -> None:
        """404 for a session that does not exist (documents are attached to real ones only)."""
        await self._db.one("SELECT id FROM sessions WHERE id = ?", (session_id,),
                           NotFound(f"session not found: {session_id[:64]}", code="session_not_found"))

    async def attach_document(self, document_id: str, session_id: str) -> None:
        async with self._db.writing():
            await self.get_document(document_id)
            await self.check_session(session_id)
            await self._db.execute("INSERT OR IGNORE INTO document_sessions VALUES (?, ?)", (document_id, session_id))

    async def session_documents(self, session_id: str) -> set[str]:
        async with self._db.execute(
            """SELECT d.id FROM documents d JOIN document_sessions s ON s.document_id = d.id
               WHERE s.session_id = ? AND d.status = 'ready'""", (session_id,)) as cur:
            return {row["id"] async for row in cur}
