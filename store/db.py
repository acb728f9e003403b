"""The database every store shares: open (WAL), migrations each store brings, and the one
way to write (`writing()`: committed at the end, rolled back on any failure)."""
from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from core.errors import AppError, storage_error

STREAMING = "streaming"  # a turn's finish_reason while its answer is written (stores that read turns skip it)
Migration = Callable[[aiosqlite.Connection], Awaitable[None]]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Database:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection

    @classmethod
    async def open(cls, path: Path) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path)
        connection.row_factory = aiosqlite.Row
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA foreign_keys=ON")
        await connection.execute("PRAGMA synchronous=NORMAL")
        return cls(connection)

    async def close(self) -> None:
        await self.connection.close()

    async def migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply each migration once, in order, recording its name in _migrations (names are
        global: a store's migration keeps its name when the store moves)."""
        db = self.connection
        await db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        async with db.execute("SELECT name FROM _migrations") as cur:
            applied = {row["name"] async for row in cur}
        for migration in migrations:
            if migration.__name__ in applied:
                continue
            await migration(db)
            await db.execute("INSERT INTO _migrations VALUES (?, ?)", (migration.__name__, now_iso()))
            await db.commit()

    def execute(self, sql: str, params: Sequence | dict = ()):
        """A read (awaitable, or `async with` for its cursor)."""
        return self.connection.execute(sql, params)

    async def rows(self, sql: str, params: Sequence | dict = ()) -> list[dict]:
        async with self.connection.execute(sql, params) as cur:
            return [dict(row) async for row in cur]

    async def one(self, sql: str, params: Sequence | dict, missing: AppError) -> dict:
        """The one row the query finds, else `missing` is raised."""
        async with self.connection.execute(sql, params) as cur:
            row = await cur.fetchone()
        if row is None:
            raise missing
        return dict(row)

    @asynccontextmanager
    async def writing(self) -> AsyncGenerator[aiosqlite.Connection, None]:
        """One write transaction: committed at the end, rolled back on any failure (a full disk
        must leave the database as it was, and the connection usable once space is free); a
        storage failure becomes a typed error (507 with what to do)."""
        try:
            yield self.connection
            await self.connection.commit()
        except BaseException as exc:
            try:
                await self.connection.rollback()
            except Exception:
                pass
            typed = storage_error(exc)
            if typed is not None:
                raise typed from exc
            raise
