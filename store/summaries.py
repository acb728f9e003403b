"""Summaries of what fell out of a conversation's context window, per branch.

A summary covers the turns of a branch up to `through_turn_id` (the turn tree's path from the
first turn); another branch that shares that path shares it, one that left the path earlier
does not see it. `kind` says who wrote it: "extractive" (the first sentence of each dropped
user message: written at once, and kept where the model cannot summarise) or "model" (the
chat model's summary, written in the background after the answer)."""
from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from core.errors import NotFound
from store.db import Database, now_iso
from store.jsonl import JsonlLog


async def m012_context_summaries(db: aiosqlite.Connection) -> None:
    await db.execute(
        """CREATE TABLE context_summaries (
             id INTEGER PRIMARY KEY,
             session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
             through_turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
             turns INTEGER NOT NULL,          -- how many turns of the branch it covers
             text TEXT NOT NULL,              -- what the prompt holds
             kind TEXT NOT NULL,              -- extractive / model: who wrote `text`
             model_text TEXT,                 -- the model's, written after a turn already used `text`:
                                              -- it takes over at the next drop (the prefix stays until then)
             used INTEGER NOT NULL DEFAULT 0, -- a turn's prompt has held `text`
             language TEXT NOT NULL,          -- ko / en: the label it goes into the prompt under
             created TEXT NOT NULL,
             updated TEXT NOT NULL,
             UNIQUE (session_id, through_turn_id))"""
    )


MIGRATIONS = [m012_context_summaries]


class SummaryStore:
    def __init__(self, db: Database, log: JsonlLog) -> None:
        self._db, self.log = db, log

    async def for_path(self, session_id: str, path: Sequence[int]) -> dict | None:
        """The summary reaching furthest along `path` (turn ids, oldest first), or None."""
        if not path:
            return None
        position = {turn_id: at for at, turn_id in enumerate(path)}
        rows = await self._db.rows("SELECT * FROM context_summaries WHERE session_id = ?", (session_id,))
        on_path = [row for row in rows if row["through_turn_id"] in position]
        return max(on_path, key=lambda row: position[row["through_turn_id"]], default=None)

    async def put(self, session_id: str, through_turn_id: int, turns: int, text: str, kind: str,
                  language: str) -> dict:
        """The summary through that turn (a second one through the same turn replaces it)."""
        now = now_iso()
        async with self._db.writing() as db:
            await db.execute(
                """INSERT INTO context_summaries (session_id, through_turn_id, turns, text, kind, language, created,
                                                  updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (session_id, through_turn_id) DO UPDATE SET text = excluded.text, kind = excluded.kind,
                     turns = excluded.turns, language = excluded.language, updated = excluded.updated,
                     model_text = NULL, used = 0""",
                (session_id, through_turn_id, turns, text, kind, language, now, now))
        self.log.write("summary", {"session_id": session_id, "through_turn_id": through_turn_id, "turns": turns,
                                   "kind": kind, "chars": len(text)})
        return await self._db.one("SELECT * FROM context_summaries WHERE session_id = ? AND through_turn_id = ?",
                                  (session_id, through_turn_id), NotFound("summary not found", code="summary_not_found"))

    async def mark_used(self, summary_id: int) -> None:
        async with self._db.writing() as db:
            await db.execute("UPDATE context_summaries SET used = 1 WHERE id = ? AND used = 0", (summary_id,))

    async def model_summary(self, summary_id: int, text: str) -> None:
        """The model's summary: the prompt's from now if no turn used the first one yet, else kept
        for the next drop (so the cached prefix is not changed under the conversation)."""
        async with self._db.writing() as db:
            await db.execute("""UPDATE context_summaries SET text = CASE WHEN used THEN text ELSE ? END,
                                  kind = CASE WHEN used THEN kind ELSE 'model' END, model_text = ?, updated = ?
                                WHERE id = ?""", (text, text, now_iso(), summary_id))
