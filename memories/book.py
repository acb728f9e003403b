"""The memories in use: the store (SQLite) and the index (vectors + keywords) kept in step.

- `remember`: a statement said again, or one that contradicts a memory on the same subject
  ("내 이름은 민지" then "내 이름은 수진"), updates that memory instead of adding another;
- `forget`: the memory closest to what the user asked to forget is turned off (undo turns it on);
- `recall`: the memories closest to a message, within the scopes a persona may see.
Encoding runs in a worker thread (CPU; the embedder is the project's shared one).
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.threads import run_blocking
from memories.cues import about_the_user
from memories.index import DUPLICATE, MemoryIndex
from models.embedder import SharedEmbedder
from settings import Memory
from store.memories import MemoryStore

log = logging.getLogger(__name__)
SAME_SUBJECT = 0.55  # a memory on the same subject at least this close is contradicted, not joined
FORGET_MATCH = 0.45  # what "forget …" names must be at least this close to a memory
SUBJECT_KO = re.compile(r"^((?:내|제|나의|저의|우리)\s*(?:[가-힣A-Za-z0-9]+\s+){0,2}?[가-힣A-Za-z0-9]+?(?:은|는|이|가))\s")
SUBJECT_EN = re.compile(r"^(my\s+(?:[a-z']+\s+){0,2}?[a-z']+)\s+(?:is|are|was|were)\b", re.IGNORECASE)


def subject(text: str) -> str | None:
    """"내 이름은", "my favourite colour": what a statement is about, when it says so plainly."""
    found = SUBJECT_KO.match(text.strip()) or SUBJECT_EN.match(text.strip())
    return " ".join(found.group(1).lower().split()) if found else None


@dataclass(frozen=True)
class Saved:
    action: str  # added / updated / unchanged / forgotten / not_found
    memory: dict | None  # the memory as it is now
    previous: dict | None = None  # as it was (what undo puts back)


class MemoryBook:
    def __init__(self, store: MemoryStore, embedder: SharedEmbedder, cfg: Memory) -> None:
        self.store, self.embedder, self.cfg = store, embedder, cfg
        self.index: MemoryIndex | None = None
        self._texts: dict[int, str] = {}
        self._started: asyncio.Task | None = None

    # ---- start --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the index in the background (the embedder loads on first use)."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._build())

    async def ready(self) -> MemoryIndex:
        self.start()
        assert self._started is not None
        await asyncio.shield(self._started)
        assert self.index is not None
        return self.index

    async def reindex(self) -> None:
        """Build the index again from the store (after an import added memories)."""
        await self.close()
        self._started, self.index = None, None
        await self.ready()

    async def close(self) -> None:
        if self._started is not None and not self._started.done():
            self._started.cancel()
            await asyncio.gather(self._started, return_exceptions=True)

    async def _build(self) -> None:
        rows = await self.store.vectors()
        if not rows:  # nothing to index: the embedder loads at the first memory, not now
            self.index = MemoryIndex()
            return
        embedder = await run_blocking(self.embedder.get)
        stale = [row for row, vector, model in rows if vector is None or model != embedder.name]
        fresh = await run_blocking(embedder.encode, [row["text"] for row in stale]) if stale else None
        index = MemoryIndex()
        new_vectors = {row["id"]: fresh[at] for at, row in enumerate(stale)} if fresh is not None else {}
        for row, vector, _ in rows:
            vec = new_vectors.get(row["id"])
            if vec is None:
                assert vector is not None  # a row without a vector is stale, and encoded above
                vec = np.frombuffer(vector, dtype=np.float32)
            index.put(row["id"], row["text"], vec, row["persona_id"], row["enabled"])
            self._texts[row["id"]] = row["text"]
        for memory_id, vector in new_vectors.items():  # kept, so the next start reads them
            await self.store.update(memory_id, {}, vector, embedder.name)
        self.index = index

    async def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return await run_blocking(lambda: self.embedder.get().encode(list(texts)))

    # ---- scopes -------------------------------------------------------------------------------------
    @staticmethod
    def scopes(persona: dict | None) -> set[str | None]:
        """The memories a persona's chats see: off none; own only its own; shared every chat's and its own."""
        if persona is None:
            return {None}
        if persona["memory"] == "off":
            return set()
        return {persona["id"]} if persona["memory"] == "own" else {None, persona["id"]}

    @staticmethod
    def scope_for_new(persona: dict | None) -> str | None:
        return persona["id"] if persona is not None and persona["memory"] == "own" else None

    # ---- changes ------------------------------------------------------------------------------------
    async def remember(self, text: str, scope: str | None, source: tuple[str | None, int | None] = (None, None)) -> Saved:
        index = await self.ready()
        vector = (await self._encode([text]))[0]
        close = index.closest(vector, {scope}, include_off=True)
        if close is not None:
            old_text = self._texts.get(close.memory_id, "")
            same = close.cosine >= DUPLICATE or (close.cosine >= SAME_SUBJECT and subject(old_text) is not None
                                                 and subject(old_text) == subject(text))
            if same:
                previous = await self.store.get(close.memory_id)
                if previous["text"] == text and previous["enabled"]:
                    return Saved("unchanged", previous, previous)
                now = await self.store.update(close.memory_id, {"text": text, "enabled": True}, vector,
                                              self.embedder.get().name)
                self._put(now, vector)
                return Saved("updated", now, previous)
        row = await self.store.add(text, scope, source, vector, self.embedder.get().name)
        self._put(row, vector)
        return Saved("added", row)

    async def forget(self, text: str, scopes: set[str | None]) -> Saved:
        index = await self.ready()
        vector = (await self._encode([text]))[0]
        found = index.search(vector, text, scopes, k=1, threshold=FORGET_MATCH)
        if not found:
            return Saved("not_found", None)
        previous = await self.store.get(found[0].memory_id)
        now = await self.store.update(previous["id"], {"enabled": False})
        self._put(now, None)
        return Saved("forgotten", now, previous)

    async def add(self, text: str, scope: str | None) -> dict:
        """A memory the user wrote on the 기억 page (a duplicate updates the one there)."""
        saved = await self.remember(text, scope)
        assert saved.memory is not None
        return saved.memory

    async def edit(self, memory_id: int, changes: dict) -> dict:
        await self.ready()
        vector = (await self._encode([changes["text"]]))[0] if "text" in changes else None
        row = await self.store.update(memory_id, changes, vector, self.embedder.get().name if vector is not None else None)
        self._put(row, vector)
        return row

    async def delete(self, memory_id: int) -> None:
        await self.store.delete(memory_id)
        if self.index is not None:
            self.index.remove(memory_id)
        self._texts.pop(memory_id, None)

    async def drop_scope(self, persona_id: str) -> None:
        for memory_id in await self.store.delete_scope(persona_id):
            if self.index is not None:
                self.index.remove(memory_id)
            self._texts.pop(memory_id, None)

    def _put(self, row: dict, vector: np.ndarray | None) -> None:
        """The index follows the store (a change without a new text keeps the vector it had)."""
        if self.index is None:
            return
        if vector is None:
            vector = self.index.vector_of(row["id"])
            if vector is None:
                return
        self.index.put(row["id"], row["text"], vector, row["persona_id"], row["enabled"])
        self._texts[row["id"]] = row["text"]

    # ---- use ----------------------------------------------------------------------------------------
    async def recall(self, message: str, scopes: set[str | None]) -> list[dict]:
        """The memories closest to `message` ({"id", "text"}), best first."""
        if not scopes or not message.strip():
            return []
        index = await self.ready()
        if not len(index):
            return []
        vector = (await self._encode([message]))[0]
        cfg = self.cfg
        threshold = cfg.threshold if about_the_user(message) else cfg.threshold_other
        found = index.search(vector, message, scopes, k=cfg.top_k, threshold=threshold, margin=cfg.margin)
        return [{"id": hit.memory_id, "text": self._texts[hit.memory_id]} for hit in found]

    async def closeness(self, text: str, scopes: set[str | None]) -> float:
        """Cosine of the memory most like `text` (off ones too), -1 when there is none."""
        index = await self.ready()
        if not len(index) and not index.dim:
            return -1.0
        close = index.closest((await self._encode([text]))[0], scopes, include_off=True)
        return close.cosine if close is not None else -1.0

    def texts(self, memory_ids: Sequence[int]) -> dict[int, str]:
        return {memory_id: self._texts[memory_id] for memory_id in memory_ids if memory_id in self._texts}

    def usable(self, memory_ids: Sequence[int], scopes: set[str | None]) -> list[int]:
        """Of these ids, those still on, present and in scope (a prompt keeps only those)."""
        index = self.index
        return [memory_id for memory_id in memory_ids if index is not None and index.usable(memory_id, scopes)]
