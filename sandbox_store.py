"""Code runs (sandbox.py) in SQLite and the JSONL log: what ran, what it printed, how it ended.

The table comes from session_store's migration m007; this store shares its connection. A run
belongs to a session (and the answer its code came from) when the page says so; its pictures
are stored images, listed by id."""
from __future__ import annotations

import json
from collections.abc import Callable

import aiosqlite

from session_store import now_iso

COLUMNS = ("id", "session_id", "turn_id", "language", "code", "stdout", "stderr", "exit_code", "timed_out", "killed",
           "reason", "duration_ms", "images", "isolation", "created")


class RunStore:
    def __init__(self, db: aiosqlite.Connection, log: Callable[[str, dict], None]) -> None:
        self._db = db
        self._log = log  # the session store's JSONL sink

    async def save(self, run: dict) -> dict:
        """Insert a finished run (its `images`: a list of image ids); committed and logged."""
        record = {name: run.get(name) for name in COLUMNS} | {"created": now_iso()}
        row = record | {"images": json.dumps(record["images"] or []), "timed_out": int(bool(record["timed_out"])),
                        "killed": int(bool(record["killed"]))}
        try:
            await self._db.execute(f"INSERT INTO sandbox_runs ({', '.join(COLUMNS)}) "
                                   f"VALUES ({', '.join(':' + name for name in COLUMNS)})", row)
            await self._db.commit()
        except BaseException:
            await self._db.rollback()
            raise
        self._log("sandbox_run", record)
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
