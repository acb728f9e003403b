"""Personas (도우미): a name and look, a system prompt, a model, sampling, the documents it
answers from, the tools it has on, and how it uses memories. A conversation keeps the id of the
persona it started with and the version it used; editing a persona bumps its version and
applies to the next turns of its conversations (saved turns are never rewritten).

"default" is the plain assistant (the chat model's own system prompt): it can be edited, never
deleted. Two Korean examples are written once, at the migration; the user may change or delete them.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

import aiosqlite

from core.errors import AppError, NotFound
from store.db import Database, now_iso
from store.jsonl import JsonlLog

DEFAULT_ID = "default"
JSON_FIELDS = ("documents", "tools")
FIELDS = ("name", "description", "icon", "color", "system_prompt", "model", "temperature", "top_p", "max_tokens",
          "documents", "tools", "memory")
EXAMPLES: list[dict[str, Any]] = [
    {"id": DEFAULT_ID, "name": "기본 도우미", "description": "무엇이든 묻는 기본 대화", "icon": "", "color": "#4f7cff",
     "system_prompt": None, "model": "", "temperature": None, "top_p": None, "max_tokens": None, "documents": [],
     "tools": [], "memory": "shared"},
    {"id": "report", "name": "보고서 작성", "description": "한국어 업무 보고서와 요약을 씁니다", "icon": "",
     "color": "#2e9d6a",
     "system_prompt": "너는 한국 회사의 보고서 작성 도우미다. 개조식으로, 결론을 먼저, 숫자와 근거를 분명히 쓴다. "
                      "모르는 것은 지어내지 말고 확인이 필요하다고 적는다.",
     "model": "", "temperature": 0.3, "top_p": None, "max_tokens": None, "documents": [], "tools": ["search_documents"],
     "memory": "shared"},
    {"id": "code", "name": "코드 도우미", "description": "파이썬 코드를 쓰고 설명하고 실행합니다", "icon": "",
     "color": "#b5642b",
     "system_prompt": "너는 신중한 파이썬 개발 도우미다. 짧고 실행 가능한 코드를 ```python 블록으로 주고, 핵심만 한국어로 "
                      "설명한다.",
     "model": "", "temperature": 0.2, "top_p": None, "max_tokens": None, "documents": [], "tools": ["run_python"],
     "memory": "own"},
]


async def m014_personas(db: aiosqlite.Connection) -> None:
    await db.execute(
        """CREATE TABLE personas (
             id TEXT PRIMARY KEY,
             name TEXT NOT NULL,
             description TEXT NOT NULL DEFAULT '',
             icon TEXT NOT NULL DEFAULT '',
             color TEXT NOT NULL DEFAULT '',
             system_prompt TEXT,              -- NULL: the chat model's own setting
             model TEXT NOT NULL DEFAULT '',  -- a model library id; '': the configured chat model
             temperature REAL,                -- NULL: the model's setting
             top_p REAL,
             max_tokens INTEGER,
             documents TEXT NOT NULL DEFAULT '[]',  -- JSON: document ids it answers from ([]: as the chat chooses)
             tools TEXT NOT NULL DEFAULT '[]',      -- JSON: the chat tools it has on
             memory TEXT NOT NULL DEFAULT 'shared' CHECK (memory IN ('off', 'shared', 'own')),
             version INTEGER NOT NULL DEFAULT 1,
             created TEXT NOT NULL,
             updated TEXT NOT NULL)"""
    )
    now = now_iso()
    for persona in EXAMPLES:
        row = _row(persona) | {"id": persona["id"], "created": now, "updated": now}
        await db.execute(f"INSERT INTO personas ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         tuple(row.values()))
    await db.execute("ALTER TABLE sessions ADD COLUMN persona_id TEXT")
    await db.execute("ALTER TABLE sessions ADD COLUMN persona_version INTEGER")


MIGRATIONS = [m014_personas]


def _row(persona: dict) -> dict:
    return {key: (json.dumps(persona[key]) if key in JSON_FIELDS else persona[key]) for key in FIELDS if key in persona}


def _public(row: dict) -> dict:
    return {**row, **{key: json.loads(row[key]) for key in JSON_FIELDS}, "builtin": row["id"] == DEFAULT_ID}


class PersonaStore:
    def __init__(self, db: Database, log: JsonlLog) -> None:
        self._db, self.log = db, log

    async def get(self, persona_id: str) -> dict:
        return _public(await self._db.one("SELECT * FROM personas WHERE id = ?", (persona_id,),
                                          NotFound(f"persona not found: {persona_id[:64]}", code="persona_not_found")))

    async def all(self) -> list[dict]:
        rows = await self._db.rows("SELECT * FROM personas ORDER BY id != ?, created, name", (DEFAULT_ID,))
        return [_public(row) for row in rows]

    async def create(self, fields: dict) -> dict:
        persona_id = uuid.uuid4().hex[:12]
        now = now_iso()
        row = _row(fields) | {"id": persona_id, "created": now, "updated": now}
        async with self._db.writing() as db:
            await db.execute(f"INSERT INTO personas ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             tuple(row.values()))
        self.log.write("persona_created", {"id": persona_id, "name": fields.get("name")})
        return await self.get(persona_id)

    async def update(self, persona_id: str, changes: dict) -> dict:
        await self.get(persona_id)
        row = _row(changes)
        if row:
            sets = ", ".join(f"{key} = ?" for key in row)
            async with self._db.writing() as db:
                await db.execute(f"UPDATE personas SET {sets}, version = version + 1, updated = ? WHERE id = ?",
                                 (*row.values(), now_iso(), persona_id))
            self.log.write("persona_changed", {"id": persona_id, "fields": sorted(row)})
        return await self.get(persona_id)

    async def delete(self, persona_id: str) -> None:
        """Its conversations go on with the plain assistant (its prompt never reaches them again)."""
        if persona_id == DEFAULT_ID:
            raise AppError("the default assistant cannot be deleted (edit it instead)", code="persona_builtin",
                           status=409)
        await self.get(persona_id)
        async with self._db.writing() as db:
            await db.execute("UPDATE sessions SET persona_id = NULL, persona_version = NULL WHERE persona_id = ?",
                             (persona_id,))
            await db.execute("DELETE FROM personas WHERE id = ?", (persona_id,))
        self.log.write("persona_deleted", {"id": persona_id})

    async def of_session(self, session_id: str) -> dict:
        """The persona a conversation uses now (the default when it has none, or it was deleted)."""
        rows = await self._db.rows("SELECT persona_id FROM sessions WHERE id = ?", (session_id,))
        persona_id = (rows[0]["persona_id"] if rows else None) or DEFAULT_ID
        try:
            return await self.get(persona_id)
        except NotFound:
            return await self.get(DEFAULT_ID)

    async def used_by(self, session_id: str, persona: dict) -> None:
        """The conversation uses this persona at this version (a new one starts with it)."""
        async with self._db.writing() as db:
            await db.execute("""UPDATE sessions SET persona_id = ?, persona_version = ?
                                WHERE id = ? AND (persona_id IS NOT ? OR persona_version IS NOT ?)""",
                             (persona["id"], persona["version"], session_id, persona["id"], persona["version"]))
