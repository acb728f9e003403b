"""A conversation's context across turns: where its window starts (after what its summary
covers, per branch) and the summary of what fell out, kept in SQLite (store/summaries.py).

After each answer, while the user reads and types, an upkeep runs through the slot at
background priority (giving way the moment a user's request waits):
  1. when the window is close to full (less than a quarter of the room left), old turns drop
     now, in a block (models/context_window.py), and their first-sentence summary is stored;
  2. the chat model writes a real summary of the dropped turns with the summary before them;
  3. the window's new prefix (system, summary, kept turns) is evaluated into the KV cache.
So the next turn starts from a cached prefix, and a summary never delays a user's token. A turn
that comes before the upkeep is done fits its own window (the same rule) and uses what is
stored; a model summary that lands after a turn used the first-sentence one is kept for the
next drop, so the prefix is not changed under the conversation. Where the model cannot
summarise (a load failure, a remote backend, summaries off), the first-sentence one stays and
the context view says so.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from core.contracts import ChatEngine, ChatInput, ContextFit, MemoryPart, PrefixWarmer, Prompt, Sampling, Window
from core.events import ChatDone, Event, Token, Usage
from core.threads import iterate_in_thread, run_blocking
from settings import Context
from store.summaries import SummaryStore
from turns.runner import Turn
from vram_guard import ModelSlot, Priority

log = logging.getLogger(__name__)
LABELS = {"ko": "이전 대화 요약", "en": "Summary of the earlier conversation"}
SUMMARY_SYSTEM = {
    "ko": "너는 대화를 요약한다. 아래 이전 요약과 대화를 합쳐 짧게 요약하라. 사용자가 말한 이름, 숫자, 사실, 정한 것, "
          "남은 질문은 빠뜨리지 말고, 요약만 한국어로 쓴다.",
    "en": "You summarise conversations. Merge the previous summary and the conversation below into a short "
          "summary. Keep every name, number, fact the user stated, decision and open question. Write only the summary.",
}
HANGUL = re.compile(r"[가-힣]")
HEADROOM = 0.25  # the upkeep drops a block when less than this share of the room is left
UPKEEP_DELAY_S = 1.0  # a user who answers at once is not met by the upkeep at all


def language_of(texts: Sequence[str]) -> str:
    sample = " ".join(texts)[-4000:]
    return "ko" if len(HANGUL.findall(sample)) >= max(1, len(sample.replace(" ", "")) // 10) else "en"


def conversation_text(previous: str, dropped: Sequence[dict[str, Any]], language: str) -> str:
    who = {"user": "사용자" if language == "ko" else "User", "assistant": "도우미" if language == "ko" else "Assistant"}
    lines = [f"{who.get(m['role'], m['role'])}: {m['content']}" for m in dropped if m.get("content")]
    head = ("이전 요약" if language == "ko" else "Previous summary") + f":\n{previous or '-'}\n\n"
    return head + ("대화" if language == "ko" else "Conversation") + ":\n" + "\n".join(lines)


@dataclass(frozen=True)
class Conversation:
    """A branch's messages (without ids), their turn ids, and its window now."""

    session_id: str
    history: list[dict[str, Any]]
    ids: list[int | None]
    window: Window
    summary: dict[str, Any] | None  # the stored summary the window starts after
    language: str  # ko / en: the summary's label and the language the model summarises in
    system_prompt: str | None = None  # the persona's (None: the model's own), as the turns' prompts hold it
    memory: MemoryPart | None = None  # the memories the last turn's prompt held


def split_ids(history: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int | None]]:
    return [{k: v for k, v in m.items() if k != "id"} for m in history], [m.get("id") for m in history]


class ConversationWindows:
    """The page's conversations: their windows and summaries (one per app)."""

    def __init__(self, store: SummaryStore, slot: ModelSlot, cfg: Context) -> None:
        self.store, self.slot, self.cfg = store, slot, cfg
        self._tasks: set[asyncio.Task[None]] = set()
        self._turns: dict[str, int] = {}  # turns begun per session: an upkeep from before one stores nothing

    async def for_turn(self, session_id: str, history: Sequence[dict[str, Any]], message: str) -> Conversation:
        """A turn begins: its conversation, and the summary it reads marked used. The session's
        upkeep, if any, stores nothing more (it would change what this turn read) and stops at its
        next step (never cancelled mid-step: the model is in use)."""
        self._turns[session_id] = self._turns.get(session_id, 0) + 1
        conversation = await self.conversation(session_id, history, message)
        if conversation.summary is not None and not conversation.summary["used"]:
            await self.store.mark_used(conversation.summary["id"])
        return conversation

    async def conversation(self, session_id: str, history: Sequence[dict[str, Any]], message: str = "") -> Conversation:
        """The branch's window: it starts after the summary reaching furthest along the branch
        (a model summary written after a turn used the first-sentence one is what the next drop
        extends)."""
        messages, ids = split_ids(history)
        summary = await self.store.for_path(session_id, [i for i in ids if i is not None])
        language = language_of([m["content"] for m in messages[-6:]] + [message])
        window = Window(low_water=self.cfg.low_water, summary_label=LABELS[language],
                        summary_chars=self.cfg.summary_tokens * 3)
        if summary is not None:
            language = summary["language"]
            later = summary["model_text"] if summary["model_text"] not in (None, summary["text"]) else ""
            window = replace(window, start=ids.index(summary["through_turn_id"]) + 1, summary=summary["text"],
                             summary_base=later, summary_label=LABELS[language])
        return Conversation(session_id, messages, ids, window, summary, language)

    async def after_answer(self, conversation: Conversation, fit: ContextFit | None, engine_name: str,
                           question: tuple[int | None, str], answer: tuple[int | None, str], used_tokens: int) -> None:
        """This turn's dropped block stored; then, when the window is close to full, the upkeep for
        the next turn in the background. `question` and `answer`: (turn id, text as stored);
        `used_tokens`: the context after the answer (while it has room, the KV cache already holds
        the conversation and nothing needs doing)."""
        if fit is None:
            return  # a remote or vision engine: its server or its own trim keeps the context
        before = conversation.ids[fit.start - 1] if fit.start > 0 else None  # the last turn left out
        if fit.dropped is not None and before is not None:
            row = await self.store.put(conversation.session_id, before, fit.start,
                                       fit.summary, "extractive", conversation.language)
            await self.store.mark_used(row["id"])  # this turn's prompt held it
        if used_tokens < fit.budget * (1 - HEADROOM):
            return
        window = replace(conversation.window, start=fit.start, summary=fit.summary,
                         summary_base="" if fit.dropped else conversation.window.summary_base)
        grown = replace(conversation, history=[*conversation.history, {"role": "user", "content": question[1]},
                                               {"role": "assistant", "content": answer[1]}],
                        ids=[*conversation.ids, question[0], answer[0]], window=window)
        self._start_upkeep(grown, engine_name)

    def _start_upkeep(self, conversation: Conversation, engine_name: str) -> None:
        task = asyncio.ensure_future(self._run_upkeep(conversation, engine_name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_upkeep(self, conversation: Conversation, engine_name: str) -> None:
        """Through the turn runner and a lease, like every use of a heavy model."""
        turn = self._turns.get(conversation.session_id, 0)
        await asyncio.sleep(UPKEEP_DELAY_S)
        if self._turns.get(conversation.session_id, 0) != turn:
            return  # the user went on: that turn fits its own window
        try:
            lease = self.slot.lease(engine_name, Priority.BACKGROUND, ChatEngine)
            upkeep = await Turn.start(lease, lambda: (None, WindowUpkeep(self, conversation, turn)))
            await upkeep.run_to_end()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("context upkeep of %s failed", conversation.session_id)

    def gives_way(self) -> bool:
        return self.slot.waiting_before(Priority.BACKGROUND)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class WindowUpkeep:
    """Runner work (turns/runner.py) at background priority: drop early, summarise, warm."""

    def __init__(self, windows: ConversationWindows, conversation: Conversation, turn: int) -> None:
        self.windows, self.conversation, self.turn = windows, conversation, turn
        self.outcome = "kept"

    def stale(self) -> bool:
        """A turn of this conversation began since: what it read must stay as it was."""
        return self.windows._turns.get(self.conversation.session_id, 0) != self.turn

    async def begin(self) -> AsyncGenerator[Event, None]:
        return
        yield  # an async generator with nothing before the slot

    async def run(self, engine: ChatEngine, stop: threading.Event) -> AsyncGenerator[Event, None]:
        conversation = self.conversation
        history, ids = conversation.history, conversation.ids
        request = ChatInput(history, "", session_id=conversation.session_id, system_prompt=conversation.system_prompt,
                            window=replace(conversation.window, headroom=HEADROOM), memory=conversation.memory)
        prompt = await run_blocking(engine.prepare, request)
        fit = prompt.context if isinstance(prompt, Prompt) else None
        if fit is None or not isinstance(engine, PrefixWarmer):
            return  # a remote or vision engine: nothing to keep warm here
        warm = engine.warm
        summary_text = fit.summary
        if self.stale():
            return
        before = ids[fit.start - 1] if fit.start > 0 else None  # the last turn left out
        if fit.dropped is not None and before is not None:
            store, language = self.windows.store, conversation.language
            row = await store.put(conversation.session_id, before, fit.start, fit.summary, "extractive",
                                  language)
            self.outcome = "dropped"
            if self.windows.cfg.summaries and not self.windows.gives_way():
                dropped = history[fit.dropped[0]:fit.dropped[1]]
                previous = conversation.window.summary_base or conversation.window.summary
                written = await self._summarise(engine, previous, dropped, language)
                if written and not self.stale():
                    await store.model_summary(row["id"], written)
                    summary_text, self.outcome = written, "summarised"
        if self.windows.gives_way():
            return
        window = replace(conversation.window, start=fit.start, summary=summary_text, headroom=0.0)
        prompt = await run_blocking(engine.prepare, replace(request, window=window))
        if await run_blocking(warm, prompt, lambda: stop.is_set() or self.windows.gives_way() or self.stale()):
            self.outcome += "+warm"
        return
        yield

    async def _summarise(self, engine: ChatEngine, previous: str, dropped: Sequence[dict[str, Any]], language: str) -> str:
        """The model's summary, or "" when a user's request came first or nothing usable came."""
        cfg = self.windows.cfg
        question = ChatInput([], conversation_text(previous, dropped, language), system_prompt=SUMMARY_SYSTEM[language],
                             sampling=Sampling(max_tokens=cfg.summary_tokens, temperature=0.2, seed=1))
        prompt = await run_blocking(engine.prepare, question)
        if not isinstance(engine, PrefixWarmer):
            return ""
        warm = engine.warm
        if not await run_blocking(warm, prompt, lambda: self.windows.gives_way() or self.stale()):  # in small steps
            return ""
        flag = threading.Event()
        parts: list[str] = []
        async with aclosing(iterate_in_thread(lambda: engine.stream(prompt, flag), flag)) as items:
            async for item in items:
                if self.windows.gives_way() or self.stale():
                    flag.set()
                    return ""
                if isinstance(item, Token):
                    parts.append(item.text)
        text = "".join(parts).strip()
        return text if len(text) >= 8 else ""

    async def finish(self) -> Event:
        return ChatDone(None, self.outcome, "", Usage(None, None, 0), {})

    async def save_partial(self, reason: str) -> None:
        return None
