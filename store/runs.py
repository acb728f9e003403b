"""Code runs (sandbox/runs.py) in SQLite and the JSONL log: what ran, what it printed, how it ended.

Its table is migration m007 (below); the database is shared with the other stores. A run
belongs to a session (and the answer its code came from) when the page says so; its pictures
are stored images, listed by id."""
from __future__ import annotations

import json

import aiosqlite

from store.db import Database, now_iso
from store.jsonl import JsonlLog


async def m007_sandbox_runs(db: aiosqlite.Connection) -> None:
    # Code run from answers (sandbox/runs.py): what ran, what it printed, how it ended. Pictures are
    # PNG files in the generated-images folder, listed by id.
    await db.execute(
        """CREATE TABLE sandbox_runs (
             id TEXT PRIMARY KEY,
             session_id TEXT REFERENCES sessions(id) ON DELETE CASCADE,
             turn_id INTEGER REFERENCES turns(id) ON DELETE SET NULL,
             language TEXT NOT NULL,
             code TEXT NOT NULL,
             stdout TEXT NOT NULL,
             stderr TEXT NOT NULL,
             exit_code INTEGER,
             timed_out INTEGER NOT NULL,
             killed INTEGER NOT NULL,
             reason TEXT,
             duration_ms REAL NOT NULL,
             images TEXT NOT NULL,
             isolation TEXT NOT NULL,
             created TEXT NOT NULL)"""
    )
    await db.execute("CREATE INDEX sandbox_runs_by_session ON sandbox_runs(session_id, created)")


async def m015_run_block(db: aiosqlite.Connection) -> None:
    # Which code block of its answer a run ran (0-based), so the page shows it under that block;
    # runs saved before know only their code.
    await db.execute("ALTER TABLE sandbox_runs ADD COLUMN block INTEGER")


MIGRATIONS = [m007_sandbox_runs, m015_run_block]

COLUMNS = ("id", "session_id", "turn_id", "block", "language", "code", "stdout", "stderr", "exit_code", "timed_out",
           "killed", "reason", "duration_ms", "images", "isolation", "created")


class RunStore:
    def __init__(self, db: Database, log: JsonlLog) -> None:
        self._db, self.log = db, log

    async def save(self, run: dict) -> dict:
        """Insert a finished run (its `images`: a list of image ids); committed and logged."""
        record = {name: run.get(name) for name in COLUMNS} | {"created": now_iso()}
        async with self._db.writing() as db:
            await insert_run(db, record)
        self.log.write("sandbox_run", record)
        return record

    async def list(self, session_id: str) -> list[dict]:
        """The session's runs, oldest first."""
        async with self._db.execute("SELECT * FROM sandbox_runs WHERE session_id = ? ORDER BY created, rowid",
                                    (session_id,)) as cur:
            rows = [dict(row) async for row in cur]
        for row in rows:
            row["images"] = json.loads(row["images"])
            row["timed_out"], row["killed"] = bool(row["timed_out"]), bool(row["killed"])
        return rows


async def insert_run(db: aiosqlite.Connection, record: dict) -> None:
    """One run row (the one writer of sandbox_runs: live runs and imported ones)."""
    row = {name: record.get(name) for name in COLUMNS}
    row |= {"images": json.dumps(row["images"] or []), "timed_out": int(bool(row["timed_out"])),
            "killed": int(bool(row["killed"]))}
    await db.execute(f"INSERT INTO sandbox_runs ({', '.join(COLUMNS)}) "
                     f"VALUES ({', '.join(':' + name for name in COLUMNS)})", row)
