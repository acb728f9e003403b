"""Sessions and their turns (a tree: regenerated answers and edited messages are siblings),
the pictures and generations of each turn, and feedback. SQLite is what the app reads; every
write is also a JSONL record (store/jsonl.py).
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import aiosqlite

from core.errors import InvalidInput, NotFound
from store.db import STREAMING, Database, now_iso
from store.generations import GenerationStore, insert_generation
from store.jsonl import JsonlLog
from store.labels import label_json, write_labels
from store.runs import insert_run
from store.turn_search import index_turn

TITLE_FROM_MESSAGE_CHARS = 40


# ---- migrations: ordered, each applied once and recorded in _migrations -------------------
async def m001_sessions_and_turns(db: aiosqlite.Connection) -> None:
    await db.execute(
        """CREATE TABLE sessions (
             id TEXT PRIMARY KEY,
             title TEXT NOT NULL DEFAULT '',
             created TEXT NOT NULL,
             updated TEXT NOT NULL)"""
    )
    await db.execute(
        """CREATE TABLE turns (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
             role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
             text TEXT NOT NULL,
             created TEXT NOT NULL,
             model TEXT,
             prompt_tokens INTEGER,
             completion_tokens INTEGER,
             ttft_ms REAL,
             tokens_per_s REAL,
             finish_reason TEXT,
             dropped_turns INTEGER NOT NULL DEFAULT 0)"""
    )
    await db.execute("CREATE INDEX turns_by_session ON turns(session_id, id)")
    await db.execute("CREATE INDEX sessions_by_updated ON sessions(updated)")


async def m002_images(db: aiosqlite.Connection) -> None:
    await db.execute(
        """CREATE TABLE images (
             id TEXT PRIMARY KEY,
             session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
             turn_id INTEGER REFERENCES turns(id) ON DELETE CASCADE,
             width INTEGER NOT NULL,
             height INTEGER NOT NULL,
             source_format TEXT NOT NULL,
             source_bytes INTEGER NOT NULL,
             created TEXT NOT NULL)"""
    )
    await db.execute("CREATE INDEX images_by_turn ON images(turn_id)")


async def m004_generations(db: aiosqlite.Connection) -> None:
    # 'image' turns are image-generation requests and results; the chat history leaves them out.
    await db.execute("ALTER TABLE turns ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat'")
    await db.execute(
        """CREATE TABLE generations (
             image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
             session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
             prompt TEXT NOT NULL,
             seed INTEGER NOT NULL,
             model TEXT NOT NULL,
             params TEXT NOT NULL,          -- JSON: every generation parameter
             timings TEXT,                  -- JSON: seconds per phase
             created TEXT NOT NULL)"""
    )
    await db.execute("CREATE INDEX generations_by_session ON generations(session_id, created)")


async def m006_tree_feedback_search(db: aiosqlite.Connection) -> None:
    # Turns form a tree: a regenerated answer or an edited message is a sibling; the session
    # remembers the leaf of the branch on show. Straight sessions become chains.
    await db.execute("ALTER TABLE turns ADD COLUMN parent_id INTEGER REFERENCES turns(id) ON DELETE CASCADE")
    await db.execute("ALTER TABLE sessions ADD COLUMN active_leaf INTEGER")
    await db.execute("""UPDATE turns SET parent_id = (SELECT MAX(p.id) FROM turns p
                          WHERE p.session_id = turns.session_id AND p.id < turns.id)""")
    await db.execute("UPDATE sessions SET active_leaf = (SELECT MAX(t.id) FROM turns t WHERE t.session_id = sessions.id)")
    await db.execute("CREATE INDEX turns_by_parent ON turns(parent_id)")
    await db.execute(
        """CREATE TABLE turn_feedback (
             turn_id INTEGER PRIMARY KEY REFERENCES turns(id) ON DELETE CASCADE,
             rating INTEGER NOT NULL CHECK (rating IN (-1, 0, 1)),
             comment TEXT NOT NULL DEFAULT '',
             updated TEXT NOT NULL)"""
    )
    # Message search (store/turn_search.py): derived tokens, rowid = the turn's id.
    await db.execute("CREATE VIRTUAL TABLE turn_search USING fts5(tokens)")
    async with db.execute("SELECT id, text FROM turns") as cur:
        rows = [(row[0], row[1]) async for row in cur]
    for turn_id, text in rows:
        await index_turn(db, turn_id, text)


MIGRATIONS = [m001_sessions_and_turns, m002_images, m004_generations, m006_tree_feedback_search]
ACTIVE_LEAF = object()  # add_turn's default parent: the end of the branch on show

TURN_METRICS = ("model", "prompt_tokens", "completion_tokens", "ttft_ms", "tokens_per_s", "finish_reason", "dropped_turns")


class SessionStore:
    def __init__(self, db: Database, log: JsonlLog) -> None:
        self._db = db
        self.log = log
        self.generations = GenerationStore(db, log)  # the parameters of generated pictures
        # Told after a turn is saved (the background labeller wakes up); must not block.
        self.on_turn_saved: Callable[[int], None] | None = None

    async def close(self) -> None:
        """Close the database this store shares (for a store opened on its own, as tests do)."""
        await self._db.close()

    @property
    def db(self) -> Database:
        """The database the other stores share (labels, documents, runs)."""
        return self._db

    async def close_interrupted(self) -> None:
        """Answers that were streaming when the process died (kill -9, power cut): their text is
        the last checkpoint; say so."""
        async with self._db.writing() as db:
            await db.execute("UPDATE turns SET finish_reason = 'interrupted' WHERE finish_reason = ?", (STREAMING,))

    def _saved(self, turn: dict) -> None:
        self.log.write("turn", turn)
        if self.on_turn_saved is not None:
            self.on_turn_saved(turn["id"])

    # ---- sessions ---------------------------------------------------------------------------
    async def create_session(self, title: str = "") -> dict:
        async with self._db.writing():
            session = {"id": uuid.uuid4().hex, "title": title, "created": now_iso()}
            session["updated"] = session["created"]
            await self._db.execute(
                "INSERT INTO sessions (id, title, created, updated) VALUES (:id, :title, :created, :updated)", session
            )
        self.log.write("session_created", {"session_id": session["id"], "title": title})
        return session

    async def get_session(self, session_id: str) -> dict:
        return await self._db.one("SELECT * FROM sessions WHERE id = ?", (session_id,),
                               NotFound(f"session not found: {session_id[:64]}", code="session_not_found"))

    async def list_sessions(self) -> list[dict]:
        sql = """SELECT s.*, (SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id) AS turn_count
                 FROM sessions s ORDER BY s.updated DESC"""
        async with self._db.execute(sql) as cur:
            return [dict(row) async for row in cur]

    async def rename_session(self, session_id: str, title: str) -> dict:
        async with self._db.writing():
            await self.get_session(session_id)
            await self._db.execute("UPDATE sessions SET title = ?, updated = ? WHERE id = ?", (title, now_iso(), session_id))
        self.log.write("session_renamed", {"session_id": session_id, "title": title})
        return await self.get_session(session_id)

    async def delete_session(self, session_id: str) -> list[str]:
        """Delete the session, its turns, image records and code runs; returns the image ids (files to remove)."""
        async with self._db.writing():
            await self.get_session(session_id)
            async with self._db.execute("SELECT id FROM images WHERE session_id = ?", (session_id,)) as cur:
                image_ids = [row["id"] async for row in cur]
            async with self._db.execute("SELECT images FROM sandbox_runs WHERE session_id = ?", (session_id,)) as cur:
                image_ids += [image_id async for row in cur for image_id in json.loads(row["images"])]
            await self._db.execute("DELETE FROM turn_search WHERE rowid IN (SELECT id FROM turns WHERE session_id = ?)",
                                   (session_id,))
            await self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        self.log.write("session_deleted", {"session_id": session_id})
        return image_ids

    # ---- turns ------------------------------------------------------------------------------
    async def add_turn(self, session_id: str, role: str, text: str, images: list | None = None,
                       sources: list[dict] | None = None, kind: str = "chat", parent_id=ACTIVE_LEAF,
                       **metrics) -> dict:
        """Save a turn (with the images sent with it, StoredImage records, and the document
        chunks an answer used) after `parent_id` (default: the end of the active branch); it
        becomes the active branch's end. kind "image": an image-generation request or its pictures."""
        session = await self.get_session(session_id)
        turn = turn_record(session_id, role, text, kind, sources, metrics)
        turn["parent_id"] = session["active_leaf"] if parent_id is ACTIVE_LEAF else parent_id
        async with self._db.writing() as db:
            turn["id"] = await insert_turn(db, turn)
            turn["sources"] = sources or []
            for image in images or []:
                await db.execute(
                    "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (image.id, session_id, turn["id"], image.width, image.height, image.source_format,
                     image.source_bytes, turn["created"]))
            turn["images"] = [image.id for image in images or []]
            title = session["title"]
            if not title and role == "user":
                title = " ".join(text.split())[:TITLE_FROM_MESSAGE_CHARS]
            await db.execute("UPDATE sessions SET updated = ?, title = ?, active_leaf = ? WHERE id = ?",
                             (turn["created"], title, turn["id"], session_id))
        self._saved(turn)
        return turn

    async def import_sessions(self, sessions: list[dict], pictures: dict[str, tuple[int, int, int]]) -> None:
        """Restore exported sessions (each with "turns" as exported: old ids, parents, feedback,
        labels, image ids; and its "generations") in one transaction, through the same writes as
        live turns. `pictures`: image id -> (width, height, bytes) of the pictures kept with them."""
        async with self._db.writing() as db:
            for session in sessions:
                await _insert_session(db, session, pictures)
        for session in sessions:
            self.log.write("session_imported", {"session_id": session["id"]})
        if sessions and self.on_turn_saved is not None:
            self.on_turn_saved(0)  # the labeller looks from the start again: imported turns without labels get them

    # ---- an answer written while it streams (checkpointed, so a crash keeps it) ---------------
    async def start_answer(self, session_id: str, model: str) -> int:
        """An assistant turn marked "streaming" at the end of the active branch; its id. Written by
        insert_turn like every turn (finish_answer indexes its text and logs it whole)."""
        session = await self.get_session(session_id)
        turn = turn_record(session_id, "assistant", "", "chat", None, {"model": model, "finish_reason": STREAMING})
        turn["parent_id"] = session["active_leaf"]
        async with self._db.writing() as db:
            turn_id = await insert_turn(db, turn)
            await db.execute("UPDATE sessions SET active_leaf = ? WHERE id = ?", (turn_id, session_id))
        self.log.write("answer_started", {"session_id": session_id, "turn_id": turn_id, "model": model})
        return turn_id

    async def checkpoint_answer(self, turn_id: int, text: str) -> None:
        async with self._db.writing() as db:
            await db.execute("UPDATE turns SET text = ? WHERE id = ?", (text, turn_id))

    async def finish_answer(self, turn_id: int, text: str, sources: list[dict] | None = None, **metrics) -> dict:
        """The streamed answer complete (or stopped / failed): text, sources and metrics; logged."""
        async with self._db.execute("SELECT session_id, created FROM turns WHERE id = ?", (turn_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"turn not found: {turn_id}", code="turn_not_found")
        turn = turn_record(row["session_id"], "assistant", text, "chat", sources, metrics)
        turn["created"], turn["id"] = row["created"], turn_id
        async with self._db.writing() as db:
            await db.execute(
                f"""UPDATE turns SET text = :text, sources = :sources,
                    {", ".join(f"{k} = :{k}" for k in TURN_METRICS)} WHERE id = :id""", turn)
            await db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now_iso(), turn["session_id"]))
            await index_turn(db, turn_id, text)
        turn["sources"], turn["images"] = sources or [], []
        self._saved(turn)
        return turn

    async def list_turns(self, session_id: str, whole_tree: bool = False, leaf: int | None = None) -> list[dict]:
        """The active branch, root first (`whole_tree`: every turn, by id; `leaf`: the branch
        down to that turn instead, 404 if it is not the session's). Each turn carries its parent,
        its siblings (alternatives: regenerated answers, edited messages) and its feedback,
        labels and images."""
        session = await self.get_session(session_id)
        async with self._db.execute(
            """SELECT t.*, f.rating, f.comment FROM turns t LEFT JOIN turn_feedback f ON f.turn_id = t.id
               WHERE t.session_id = ? ORDER BY t.id""", (session_id,)) as cur:
            rows = {row["id"]: dict(row) async for row in cur}
        children: dict[int | None, list[int]] = {}
        for turn in rows.values():
            children.setdefault(turn["parent_id"], []).append(turn["id"])
        if leaf is not None and leaf not in rows:
            raise NotFound(f"turn not found in this session: {leaf}", code="turn_not_found")
        turns = list(rows.values()) if whole_tree else [rows[i] for i in _path(rows, leaf or session["active_leaf"])]
        images = await _images_of(self._db, session_id)
        pictures = await _pictures_of(self._db, session_id)
        labels = await _labels_of(self._db, session_id)
        for turn in turns:
            turn["sibling_ids"] = children[turn["parent_id"]]
            turn["sibling_index"] = turn["sibling_ids"].index(turn["id"])
            turn["labels"] = labels.get(turn["id"])
            turn["images"] = images.get(turn["id"], [])
            turn["sources"] = json.loads(turn["sources"]) if turn["sources"] else []
            if turn["kind"] == "image" and turn["role"] == "assistant":
                turn["pictures"] = [{"id": image_id} | pictures.get(image_id, {}) for image_id in turn["images"]]
        return turns

    # ---- the tree: branches and feedback --------------------------------------------------------
    async def placement(self, turn_id: int) -> dict:
        """Where a turn sits in its session's tree: {"id", "role", "parent_id", "sibling_ids"}."""
        turn = await self.get_turn(turn_id)
        rows = await self._db.rows("SELECT id FROM turns WHERE session_id = ? AND parent_id IS ? ORDER BY id",
                                   (turn["session_id"], turn["parent_id"]))
        return {"id": turn_id, "role": turn["role"], "parent_id": turn["parent_id"],
                "sibling_ids": [row["id"] for row in rows]}

    async def get_turn(self, turn_id: int) -> dict:
        return await self._db.one("SELECT * FROM turns WHERE id = ?", (turn_id,),
                               NotFound(f"turn not found: {turn_id}", code="turn_not_found"))

    async def set_active_leaf(self, session_id: str, turn_id: int | None) -> None:
        """The branch on show ends at `turn_id` (None: before the first turn, for an edited first message)."""
        async with self._db.writing():
            if turn_id is not None and (await self.get_turn(turn_id))["session_id"] != session_id:
                raise NotFound(f"turn not found in this session: {turn_id}", code="turn_not_found")
            await self._db.execute("UPDATE sessions SET active_leaf = ? WHERE id = ?", (turn_id, session_id))

    async def branch(self, session_id: str, turn_id: int) -> list[dict]:
        """Show the branch through `turn_id`: down to its latest continuation."""
        await self.get_session(session_id)
        leaf = turn_id
        while True:
            async with self._db.execute("SELECT MAX(id) FROM turns WHERE parent_id = ?", (leaf,)) as cur:
                child = (await cur.fetchone())[0]
            if child is None:
                break
            leaf = child
        await self.set_active_leaf(session_id, leaf)
        self.log.write("branch", {"session_id": session_id, "turn_id": turn_id, "leaf": leaf})
        return await self.list_turns(session_id)

    async def set_feedback(self, turn_id: int, rating: int, comment: str) -> dict:
        async with self._db.writing():
            turn = await self.get_turn(turn_id)
            if turn["role"] != "assistant":
                raise InvalidInput("feedback is for answers (assistant turns)", code="not_an_answer")
            record = {"turn_id": turn_id, "rating": rating, "comment": comment, "updated": now_iso()}
            await write_feedback(self._db.connection, record)
        self.log.write("feedback", record | {"session_id": turn["session_id"]})
        return record

    async def turn_has_images(self, turn_id: int) -> bool:
        async with self._db.execute("SELECT 1 FROM images WHERE turn_id = ? LIMIT 1", (turn_id,)) as cur:
            return await cur.fetchone() is not None

    async def image_session(self, image_id: str) -> str | None:
        async with self._db.execute("SELECT session_id FROM images WHERE id = ?", (image_id,)) as cur:
            row = await cur.fetchone()
        return row["session_id"] if row else None

    async def history(self, session_id: str, leaf: int | None = None) -> list[dict]:
        """The active branch as chat messages (oldest first), for the prompt; a message
        sent with images lists their ids under "images"; "id" is the turn's."""
        return [{"role": t["role"], "content": t["text"], "images": t["images"], "id": t["id"]}
                for t in await self.list_turns(session_id, leaf=leaf) if t["text"] and t["kind"] == "chat"]


def turn_record(session_id: str, role: str, text: str, kind: str, sources: list[dict] | None,
                metrics: dict) -> dict:
    """A turn row to insert: its metrics (only known ones), its sources as JSON."""
    unknown = set(metrics) - set(TURN_METRICS)
    if unknown:
        raise ValueError(f"unknown turn fields: {sorted(unknown)}")
    turn: dict[str, Any] = {"session_id": session_id, "role": role, "text": text, "created": now_iso(), "kind": kind}
    turn.update({key: metrics.get(key) for key in TURN_METRICS})
    turn["dropped_turns"] = turn["dropped_turns"] or 0
    turn["sources"] = json.dumps(sources, ensure_ascii=False) if sources else None
    return turn


async def insert_turn(db: aiosqlite.Connection, turn: dict) -> int:
    """One turn row (sources already JSON) and its search tokens; its id. The one writer of turns."""
    cur = await db.execute(
        f"""INSERT INTO turns (session_id, parent_id, role, text, created, kind, sources, {", ".join(TURN_METRICS)})
            VALUES (:session_id, :parent_id, :role, :text, :created, :kind, :sources,
                    {", ".join(":" + k for k in TURN_METRICS)})""", turn)
    turn_id = cur.lastrowid
    assert turn_id is not None  # an INSERT's row
    await index_turn(db, turn_id, turn["text"])
    return turn_id


async def write_feedback(db: aiosqlite.Connection, record: dict) -> None:
    await db.execute(
        """INSERT INTO turn_feedback VALUES (:turn_id, :rating, :comment, :updated)
           ON CONFLICT(turn_id) DO UPDATE SET rating = :rating, comment = :comment, updated = :updated""", record)


async def _insert_session(db: aiosqlite.Connection, session: dict, pictures: dict[str, tuple[int, int, int]]) -> None:
    """An imported session: its turns renumbered (parents first), its branch on show kept."""
    await db.execute("INSERT INTO sessions (id, title, created, updated, active_leaf) VALUES (?, ?, ?, ?, NULL)",
                     (session["id"], session["title"], session["created"], session["updated"]))
    new_ids: dict[int, int] = {}
    for turn in sorted(session["turns"], key=lambda t: t["id"]):
        row = {key: turn.get(key) for key in ("role", "text", "created", "kind", *TURN_METRICS)}
        row |= {"session_id": session["id"], "parent_id": new_ids.get(turn["parent_id"]),
                "sources": json.dumps(turn["sources"], ensure_ascii=False) if turn.get("sources") else None}
        row["dropped_turns"] = row["dropped_turns"] or 0
        new_ids[turn["id"]] = turn_id = await insert_turn(db, row)
        if turn.get("feedback") is not None:
            await write_feedback(db, {"turn_id": turn_id, "rating": turn["feedback"]["rating"],
                                      "comment": turn["feedback"]["comment"], "updated": now_iso()})
        if turn.get("labels") is not None:
            labels = turn["labels"] | {"turn_id": turn_id}
            await write_labels(db, [labels], {turn_id: [k["term"] for k in labels["keywords"]]})
        for image_id in turn.get("images") or []:
            if image_id in pictures:
                width, height, size = pictures[image_id]
                await db.execute("INSERT INTO images VALUES (?, ?, ?, ?, ?, 'PNG', ?, ?)",
                                 (image_id, session["id"], turn_id, width, height, size, turn["created"]))
    for generation in session.get("generations") or []:
        if generation["image_id"] in pictures:
            await insert_generation(db, generation | {"session_id": session["id"]})
    for run in session.get("runs") or []:  # code runs, their pictures among those kept
        await insert_run(db, run | {"session_id": session["id"], "turn_id": new_ids.get(run["turn_id"]),
                                    "images": [i for i in run["images"] if i in pictures]})
    leaf = new_ids.get(session["active_leaf"]) if session.get("active_leaf") is not None else None
    await db.execute("UPDATE sessions SET active_leaf = ? WHERE id = ?", (leaf, session["id"]))


def _path(rows: dict[int, dict], leaf: int | None) -> list[int]:
    """The turn ids from the root down to `leaf`."""
    path = []
    while leaf is not None and leaf in rows:
        path.append(leaf)
        leaf = rows[leaf]["parent_id"]
    return path[::-1]


async def _images_of(db: Database, session_id: str) -> dict[int, list[str]]:
    images: dict[int, list[str]] = {}
    async with db.execute(
        "SELECT id, turn_id FROM images WHERE session_id = ? ORDER BY created, rowid", (session_id,)
    ) as cur:
        async for row in cur:
            images.setdefault(row["turn_id"], []).append(row["id"])
    return images


async def _pictures_of(db: Database, session_id: str) -> dict[str, dict]:
    """Generated images: what the page shows under each."""
    pictures: dict[str, dict] = {}
    async with db.execute(
        """SELECT g.image_id, g.seed, i.width, i.height FROM generations g JOIN images i ON i.id = g.image_id
           WHERE g.session_id = ?""", (session_id,)) as cur:
        async for row in cur:
            pictures[row["image_id"]] = {"seed": row["seed"], "width": row["width"], "height": row["height"]}
    return pictures


async def _labels_of(db: Database, session_id: str) -> dict[int, dict]:
    """The session's turn labels (emotion, intent, keywords and what produced them) by turn id."""
    sql = """SELECT l.* FROM turn_labels l JOIN turns t ON t.id = l.turn_id WHERE t.session_id = ?"""
    return {row["turn_id"]: label_json(row) for row in await db.rows(sql, (session_id,))}
