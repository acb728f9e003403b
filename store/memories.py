"""What the assistant remembers about its user across conversations, and the proposals it
waits to have accepted.

A memory is one short statement ("내 이름은 민지", "I write reports in Korean") with where it
came from (session, turn), its scope (NULL: every chat; a persona's id: only that persona's
chats), on/off, and how often a prompt used it. Its sentence vector is kept beside it (with the
embedder's name: another embedder re-encodes) so a start does not re-encode thousands of them.
A proposal is a statement the chat model found in a quiet conversation: never used until the
user accepts it (then it becomes a memory) or rejects it.
"""
from __future__ import annotations

from collections.abc import Sequence

import aiosqlite
import numpy as np

from core.errors import NotFound
from store.db import Database, now_iso
from store.jsonl import JsonlLog

MEMORY_FIELDS = "id, text, persona_id, enabled, source_session, source_turn, created, updated, used_count, last_used"


async def m013_memories(db: aiosqlite.Connection) -> None:
    await db.execute(
        """CREATE TABLE memories (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             text TEXT NOT NULL,
             persona_id TEXT,                 -- NULL: every chat; else only that persona's chats
             enabled INTEGER NOT NULL DEFAULT 1,
             source_session TEXT,             -- where it was said (kept when that chat is deleted)
             source_turn INTEGER,
             created TEXT NOT NULL,
             updated TEXT NOT NULL,
             used_count INTEGER NOT NULL DEFAULT 0,
             last_used TEXT,
             vector BLOB,                     -- float32, L2-normalised, by `vector_model`
             vector_model TEXT)"""
    )
    await db.execute(
        """CREATE TABLE memory_proposals (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             text TEXT NOT NULL,
             persona_id TEXT,
             session_id TEXT,
             turn_id INTEGER,
             status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'rejected')),
             memory_id INTEGER,
             created TEXT NOT NULL)"""
    )
    # A conversation's memory settings: off for this chat, the memories its prompt holds (kept
    # from turn to turn so the prompt's prefix stays), the last turn proposals looked at.
    await db.execute("ALTER TABLE sessions ADD COLUMN memory_off INTEGER NOT NULL DEFAULT 0")
    await db.execute("ALTER TABLE sessions ADD COLUMN memory_ids TEXT")
    await db.execute("ALTER TABLE sessions ADD COLUMN proposed_through INTEGER")


MIGRATIONS = [m013_memories]


def _public(row: dict) -> dict:
    row = {key: value for key, value in row.items() if key not in ("vector", "vector_model")}
    if "enabled" in row:
        row["enabled"] = bool(row["enabled"])
    return row


class MemoryStore:
    def __init__(self, db: Database, log: JsonlLog) -> None:
        self._db, self.log = db, log

    def _missing(self, memory_id: int) -> NotFound:
        return NotFound(f"memory not found: {memory_id}", code="memory_not_found")

    async def get(self, memory_id: int) -> dict:
        return _public(await self._db.one(f"SELECT {MEMORY_FIELDS} FROM memories WHERE id = ?", (memory_id,),
                                          self._missing(memory_id)))

    async def all(self) -> list[dict]:
        return [_public(row) for row in await self._db.rows(f"SELECT {MEMORY_FIELDS} FROM memories ORDER BY id")]

    async def vectors(self) -> list[tuple[dict, bytes | None, str | None]]:
        """Every memory with its stored vector (for the index at start)."""
        rows = await self._db.rows(f"SELECT {MEMORY_FIELDS}, vector, vector_model FROM memories ORDER BY id")
        return [(_public(row), row["vector"], row["vector_model"]) for row in rows]

    async def add(self, text: str, persona_id: str | None, source: tuple[str | None, int | None] = (None, None),
                  vector: np.ndarray | None = None, vector_model: str | None = None) -> dict:
        now = now_iso()
        async with self._db.writing() as db:
            cursor = await db.execute(
                """INSERT INTO memories (text, persona_id, source_session, source_turn, created, updated, vector,
                                         vector_model) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (text, persona_id, source[0], source[1], now, now, _blob(vector), vector_model))
            memory_id = int(cursor.lastrowid or 0)
        self.log.write("memory_added", {"id": memory_id, "persona_id": persona_id, "chars": len(text)})
        return await self.get(memory_id)

    async def update(self, memory_id: int, changes: dict, vector: np.ndarray | None = None,
                     vector_model: str | None = None) -> dict:
        """`changes`: text, enabled, persona_id (a new text comes with its vector)."""
        await self.get(memory_id)  # 404
        fields = {key: changes[key] for key in ("text", "enabled", "persona_id") if key in changes}
        if "enabled" in fields:
            fields["enabled"] = int(bool(fields["enabled"]))
        if vector is not None:
            fields |= {"vector": _blob(vector), "vector_model": vector_model}
        sets = ", ".join(f"{key} = ?" for key in fields)
        async with self._db.writing() as db:
            await db.execute(f"UPDATE memories SET {sets}{', ' if sets else ''}updated = ? WHERE id = ?",
                             (*fields.values(), now_iso(), memory_id))
        self.log.write("memory_changed", {"id": memory_id, "fields": sorted(k for k in fields if k != "vector")})
        return await self.get(memory_id)

    async def delete(self, memory_id: int) -> None:
        await self.get(memory_id)
        async with self._db.writing() as db:
            await db.execute("DELETE FROM memories WHERE id = ?", (memory_id,))
        self.log.write("memory_deleted", {"id": memory_id})

    async def delete_scope(self, persona_id: str) -> list[int]:
        """A persona's own memories (the persona is being deleted)."""
        ids = [row["id"] for row in await self._db.rows("SELECT id FROM memories WHERE persona_id = ?", (persona_id,))]
        async with self._db.writing() as db:
            await db.execute("DELETE FROM memories WHERE persona_id = ?", (persona_id,))
            await db.execute("DELETE FROM memory_proposals WHERE persona_id = ? AND status = 'open'", (persona_id,))
        return ids

    async def mark_used(self, memory_ids: Sequence[int]) -> None:
        if not memory_ids:
            return
        marks = ",".join("?" * len(memory_ids))
        async with self._db.writing() as db:
            await db.execute(f"UPDATE memories SET used_count = used_count + 1, last_used = ? WHERE id IN ({marks})",
                             (now_iso(), *memory_ids))

    # ---- a conversation's memory settings --------------------------------------------------------
    async def session_state(self, session_id: str) -> dict:
        row = await self._db.one("SELECT memory_off, memory_ids, proposed_through FROM sessions WHERE id = ?",
                                 (session_id,), NotFound(f"session not found: {session_id[:64]}",
                                                         code="session_not_found"))
        return {"memory_off": bool(row["memory_off"]), "memory_ids": _ids(row["memory_ids"]),
                "proposed_through": row["proposed_through"]}

    async def set_session(self, session_id: str, **fields: object) -> None:
        """memory_off (bool), memory_ids (list), proposed_through (turn id)."""
        values = {key: (",".join(map(str, value)) if key == "memory_ids" else value)  # type: ignore[call-overload]
                  for key, value in fields.items() if key in ("memory_off", "memory_ids", "proposed_through")}
        if "memory_off" in values:
            values["memory_off"] = int(bool(values["memory_off"]))
        sets = ", ".join(f"{key} = ?" for key in values)
        async with self._db.writing() as db:
            await db.execute(f"UPDATE sessions SET {sets} WHERE id = ?", (*values.values(), session_id))

    # ---- proposals ----------------------------------------------------------------------------------
    async def proposals(self, status: str = "open") -> list[dict]:
        return await self._db.rows("SELECT * FROM memory_proposals WHERE status = ? ORDER BY id", (status,))

    async def proposal(self, proposal_id: int) -> dict:
        return await self._db.one("SELECT * FROM memory_proposals WHERE id = ?", (proposal_id,),
                                  NotFound(f"proposal not found: {proposal_id}", code="proposal_not_found"))

    async def propose(self, text: str, persona_id: str | None, session_id: str | None, turn_id: int | None) -> dict:
        async with self._db.writing() as db:
            cursor = await db.execute(
                """INSERT INTO memory_proposals (text, persona_id, session_id, turn_id, created)
                   VALUES (?, ?, ?, ?, ?)""", (text, persona_id, session_id, turn_id, now_iso()))
            proposal_id = int(cursor.lastrowid or 0)
        self.log.write("memory_proposed", {"id": proposal_id, "session_id": session_id, "chars": len(text)})
        return await self.proposal(proposal_id)

    async def settle(self, proposal_id: int, status: str, memory_id: int | None = None) -> dict:
        async with self._db.writing() as db:
            await db.execute("UPDATE memory_proposals SET status = ?, memory_id = ? WHERE id = ?",
                             (status, memory_id, proposal_id))
        self.log.write("memory_proposal_" + status, {"id": proposal_id, "memory_id": memory_id})
        return await self.proposal(proposal_id)

    # ---- export / import ----------------------------------------------------------------------------
    async def import_memories(self, memories: Sequence[dict]) -> int:
        """Memories from an export: one with the same text and scope already here is skipped
        (importing twice adds nothing). Their vectors are made at the next start of the index."""
        have = {(row["text"], row["persona_id"]) for row in await self._db.rows("SELECT text, persona_id FROM memories")}
        added = 0
        async with self._db.writing() as db:
            for memory in memories:
                key = (memory["text"], memory.get("persona_id"))
                if key in have:
                    continue
                have.add(key)
                now = now_iso()
                await db.execute(
                    """INSERT INTO memories (text, persona_id, enabled, source_session, source_turn, created, updated,
                                             used_count, last_used) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (memory["text"], memory.get("persona_id"), int(bool(memory.get("enabled", True))),
                     memory.get("source_session"), memory.get("source_turn"), memory.get("created") or now,
                     memory.get("updated") or now, int(memory.get("used_count") or 0), memory.get("last_used")))
                added += 1
        return added


def _blob(vector: np.ndarray | None) -> bytes | None:
    return None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


def _ids(text: str | None) -> list[int]:
    return [int(part) for part in (text or "").split(",") if part.strip().isdigit()]
