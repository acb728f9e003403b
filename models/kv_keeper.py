"""Which conversation a chat model's KV cache holds, and its state kept across swaps: saved
(models/kv_store.py) when the model unloads or another conversation takes the cache, put back at
that conversation's next turn, so a chat -> picture -> chat round trip does not re-read the
conversation.

The copy is made after each answer, on a thread of its own while the answer is being saved and
read (`keep_soon`), so the unload of a swap that follows finds it current and copies nothing:
on a GPU the copy of a long conversation's cache (about 1 GB at 8k tokens for a 7.8B model)
would otherwise sit on the swap's path. The cache's next use waits for a copy under way (`settle`).
"""
from __future__ import annotations

import ctypes
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from models.kv_store import KvStore, SavedKv

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)
# One thread for every copy: copies never run beside one another, and never on the model thread,
# whose unload may wait for one (a copy queued behind that unload would never start).
_COPIES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kv-copy")


class KvKeeper:
    def __init__(self, engine_name: str, store: KvStore) -> None:
        self.engine_name = engine_name
        self.store = store
        self.owner: str | None = None  # the conversation whose tokens the cache holds
        self._copying: Future[None] | None = None  # the copy after the last answer, maybe under way

    def _key(self, session_id: str) -> str:
        return f"{self.engine_name}:{session_id}"

    def bind(self, llm: Llama, session_id: str | None, n_ctx: int) -> None:
        """Make the cache hold `session_id`'s tokens if they were kept; keep the previous owner's."""
        self.settle()  # the cache is about to change
        if session_id == self.owner:
            return
        self.save(llm)
        if session_id is not None and self._key(session_id) in self.store:
            self._restore(llm, session_id, n_ctx)
        self.owner = session_id

    def keep_soon(self, llm: Llama) -> None:
        """After an answer: the owner's state copied now, beside the saving of the answer, so that
        an unload soon after has nothing left to copy."""
        if self.owner is not None and self.store.max_sessions > 0:
            self.settle()
            self._copying = _COPIES.submit(self._copy, llm, self.owner)

    def settle(self) -> None:
        """Wait for a copy under way: before the cache changes, or the model goes."""
        copying, self._copying = self._copying, None
        if copying is not None:
            copying.result()

    def save(self, llm: Llama | None) -> None:
        """The owner's state into the store, unless the store's copy is current."""
        self.settle()
        if llm is not None and self.owner is not None:
            self._copy(llm, self.owner)

    def _copy(self, llm: Llama, owner: str) -> None:
        """Never raises: keeping a cache is an optimisation."""
        import llama_cpp

        if llm.n_tokens == 0 or self.store.max_sessions == 0:
            return
        if self.store.holds(self._key(owner), llm.input_ids[: llm.n_tokens]):
            return  # copied after the answer, and the cache has not changed since
        try:
            ctx = llm._ctx.ctx
            size = llama_cpp.llama_state_seq_get_size(ctx, 0)
            buffer = (ctypes.c_uint8 * size)()
            written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
            saved = SavedKv(np.array(llm.input_ids[: llm.n_tokens], dtype=np.intc), buffer, int(written))
            self.store.put(self._key(owner), saved)
        except Exception:
            log.exception("could not save the KV cache of %s", owner)

    def _restore(self, llm: Llama, session_id: str, n_ctx: int) -> int:
        import llama_cpp

        saved = self.store.take(self._key(session_id))
        if saved is None or len(saved.token_ids) >= n_ctx:
            return 0
        context: Any = llm._ctx  # llama-cpp-python's internal context: untyped
        context.kv_cache_clear()
        if llama_cpp.llama_state_seq_set_data(context.ctx, saved.state, saved.size, 0) != saved.size:
            context.kv_cache_clear()
            llm.n_tokens = 0
            return 0
        n = len(saved.token_ids)
        llm.input_ids[:n] = saved.token_ids
        llm.n_tokens = n
        return n
