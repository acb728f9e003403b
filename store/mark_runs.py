"""PKC Mark's runs: what was asked, and the whole result (scores, speed, the suite version, the
settings and the hardware), so runs stay comparable and show in the page's history."""
from __future__ import annotations

import json

import aiosqlite

from core.errors import NotFound
from store.db import Database, now_iso
from store.jsonl import JsonlLog


async def m011_mark_runs(db: aiosqlite.Connection) -> None:
    await db.execute(
        """CREATE TABLE mark_runs (
             id TEXT PRIMARY KEY,
             created TEXT NOT NULL,
             status TEXT NOT NULL,      -- running / done / cancelled / failed / interrupted
             request TEXT NOT NULL,     -- JSON: models, tasks, seeds, quick
             result TEXT NOT NULL)      -- JSON: the run as GET /api/bench/runs/{id} gives it"""
    )


MIGRATIONS = [m011_mark_runs]


class MarkRunStore:
    def __init__(self, db: Database, log: JsonlLog) -> None:
        self._db, self.log = db, log

    async def save(self, run: dict) -> None:
        async with self._db.writing():
            await self._db.execute(
                """INSERT INTO mark_runs (id, created, status, request, result) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET status = excluded.status, result = excluded.result""",
                (run["id"], run.get("created") or now_iso(), run["status"], json.dumps(run["request"]),
                 json.dumps(run, ensure_ascii=False)))
        if run["status"] != "running":
            self.log.write("mark_run", {"id": run["id"], "status": run["status"]})

    async def get(self, run_id: str) -> dict:
        async with self._db.execute("SELECT result FROM mark_runs WHERE id = ?", (run_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"benchmark run not found: {run_id[:64]}", code="run_not_found")
        return json.loads(row["result"])

    async def history(self, limit: int = 50) -> list[dict]:
        async with self._db.execute("SELECT result FROM mark_runs ORDER BY created DESC LIMIT ?", (limit,)) as cur:
            runs = [json.loads(row["result"]) async for row in cur]
        return [{k: run.get(k) for k in ("id", "created", "status", "request", "recommendation", "suite")} for run in runs]

    async def interrupted(self) -> None:
        """Runs left "running" by a stop of the server."""
        async with self._db.writing():
            await self._db.execute("UPDATE mark_runs SET status = 'interrupted' WHERE status = 'running'")
