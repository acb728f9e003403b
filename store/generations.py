"""The parameters of generated pictures (prompt, seed, model, sampling, timings): a session's
gallery, and what a picture's "again with this seed" reads. Their images rows come with the turn."""
from __future__ import annotations

import json
from typing import Any

import aiosqlite

from core.errors import NotFound
from store.db import Database, now_iso
from store.jsonl import JsonlLog


class GenerationStore:
    def __init__(self, db: Database, log: JsonlLog) -> None:
        self._db, self.log = db, log

    async def add(self, image_id: str, session_id: str, prompt: str, seed: int, model: str,
                  params: dict[str, Any], timings: dict[str, Any] | None = None) -> None:
        record = {"image_id": image_id, "session_id": session_id, "prompt": prompt, "seed": seed, "model": model,
                  "params": params, "timings": timings, "created": now_iso()}
        async with self._db.writing() as db:
            await insert_generation(db, record)
        self.log.write("generation", record)

    async def of_session(self, session_id: str) -> list[dict[str, Any]]:
        """The session's generated pictures, oldest first (its gallery); 404 for no such session."""
        await self._db.one("SELECT id FROM sessions WHERE id = ?", (session_id,),
                           NotFound(f"session not found: {session_id[:64]}", code="session_not_found"))
        sql = """SELECT g.*, i.width, i.height, i.turn_id FROM generations g JOIN images i ON i.id = g.image_id
                 WHERE g.session_id = ? ORDER BY g.created, g.rowid"""
        rows = [dict(row) for row in await self._db.rows(sql, (session_id,))]
        for row in rows:
            row["params"] = json.loads(row["params"])
            row["timings"] = json.loads(row["timings"]) if row["timings"] else None
        return rows


async def insert_generation(db: aiosqlite.Connection, generation: dict[str, Any]) -> None:
    record = generation | {"params": json.dumps(generation["params"], ensure_ascii=False),
                           "timings": json.dumps(generation["timings"]) if generation.get("timings") else None}
    await db.execute(
        """INSERT INTO generations (image_id, session_id, prompt, seed, model, params, timings, created)
           VALUES (:image_id, :session_id, :prompt, :seed, :model, :params, :timings, :created)""", record)
