"""The model library's choices: each model's own settings (over the env defaults) and which model
serves each role (chat, vision, image). Kept by model id and path, so a choice survives restarts."""
from __future__ import annotations

import json

import aiosqlite

from store.db import Database, now_iso
from store.jsonl import JsonlLog


async def m010_model_library(db: aiosqlite.Connection) -> None:
    await db.execute(
        """CREATE TABLE model_settings (
             model_id TEXT PRIMARY KEY,
             path TEXT NOT NULL,
             settings TEXT NOT NULL,   -- JSON: only the fields the user changed
             updated TEXT NOT NULL)"""
    )
    await db.execute(
        """CREATE TABLE active_models (
             role TEXT PRIMARY KEY CHECK (role IN ('chat', 'vision', 'image')),
             model_id TEXT NOT NULL,
             path TEXT NOT NULL,
             updated TEXT NOT NULL)"""
    )


MIGRATIONS = [m010_model_library]


class ModelChoiceStore:
    def __init__(self, db: Database, log: JsonlLog) -> None:
        self._db, self.log = db, log

    async def all_settings(self) -> dict[str, dict]:
        async with self._db.execute("SELECT model_id, settings FROM model_settings") as cur:
            return {row["model_id"]: json.loads(row["settings"]) async for row in cur}

    async def save_settings(self, model_id: str, path: str, settings: dict) -> None:
        async with self._db.writing():
            await self._db.execute(
                """INSERT INTO model_settings (model_id, path, settings, updated) VALUES (?, ?, ?, ?)
                   ON CONFLICT(model_id) DO UPDATE SET path = excluded.path, settings = excluded.settings,
                   updated = excluded.updated""", (model_id, path, json.dumps(settings), now_iso()))
        self.log.write("model_settings", {"model_id": model_id, "settings": settings})

    async def active(self) -> dict[str, dict]:
        async with self._db.execute("SELECT role, model_id, path FROM active_models") as cur:
            return {row["role"]: {"model_id": row["model_id"], "path": row["path"]} async for row in cur}

    async def set_active(self, role: str, model_id: str, path: str) -> None:
        async with self._db.writing():
            await self._db.execute(
                """INSERT INTO active_models (role, model_id, path, updated) VALUES (?, ?, ?, ?)
                   ON CONFLICT(role) DO UPDATE SET model_id = excluded.model_id, path = excluded.path,
                   updated = excluded.updated""", (role, model_id, path, now_iso()))
        self.log.write("model_active", {"role": role, "model_id": model_id})
