"""A chat answer's work for the turn runner (turns/runner.py): the request recorded first
(when there is a recorder), the document references, the prompt, the tokens (checkpointed
while they stream), the answer recorded with what was generated and why it ended. Chat and
vision answers are the same work: the input carries the images, the engine's contract decides.
The runner owns the lease, errors and the shielded save; the route validates the request.
"""
from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from core.contracts import ChatEngine, ChatInput, ContextFit, Finish, PreparedPrompt, Prompt
from core.events import (
    ChatDone,
    Event,
    Generating,
    HistoryTrimmed,
    ImagesStored,
    NoDocumentsMatched,
    Sources,
    Token,
    ToolCallMade,
    ToolResult,
    TurnSaved,
    Usage,
)
from core.threads import iterate_in_thread, run_blocking
from rag_engine import Hit
from store.image_files import StoredImage
from turns.answer_pass import Figures, Pass, figures
from turns.chat_tools import ChatTools
from turns.context_memory import Conversation, ConversationWindows, split_ids
from turns.recorder import SessionRecorder
from turns.references import References, with_references
from turns.tool_calls import ToolCalls
from turns.turn_memory import TurnMemory

MAX_TOOL_STEPS = 3  # tool calls answered in one chat answer; then it must answer in text


@dataclass
class Prompted:
    """What the engine made of the question: its model, how long the request waited for it, and
    what the prompt held (the first pass's window; the last pass's, a tool step's being longer)."""

    model: str = ""
    engine_name: str = ""
    wait_ms: float = 0.0
    fit: ContextFit | None = None
    last_fit: ContextFit | None = None
    cached_tokens: int = 0
    dropped_turns: int = 0  # history messages left out to fit


class AnswerTurn:
    """An answer as runner work. `recorder` None: a stateless answer (nothing saved);
    `references` None: no documents take part."""

    def __init__(self, question: ChatInput, recorder: SessionRecorder | None = None,
                 references: References | None = None, stored: Sequence[StoredImage] = (),
                 checkpoint_s: float = 5.0, chat_tools: ChatTools | None = None,
                 windows: ConversationWindows | None = None, memory: TurnMemory | None = None) -> None:
        """`stored`: images sent with this request (validated and stored by the route); `chat_tools`:
        the built-in tools this answer may use, each call's result answered in a next step;
        `windows`: the conversation's window and summaries kept across turns (the page's chats);
        `memory`: the memories the prompt holds and the remember/forget request in the message."""
        self.question, self.recorder, self.references, self.stored = question, recorder, references, stored
        self.windows, self.memory = windows, memory
        self.conversation: Conversation | None = None
        self.raw_message = question.message  # as stored (the prompt's may carry document passages)
        self.prompted = Prompted()  # what the engine's prompt held (set when the model is there)
        self.chat_tools = chat_tools
        if chat_tools is not None:
            self.question = replace(question, tool_plan=chat_tools.plan())
        self.checkpoint_s = checkpoint_s
        self.started = time.perf_counter()
        self.sources: list[dict[str, Any]] = []
        self.passes: list[Pass] = []  # the first, then one per tool step: the answer is their sum
        self.request_turn: dict[str, Any] | None = None

    async def begin(self) -> AsyncGenerator[Event, None]:
        question, recorder = self.question, self.recorder
        if recorder is not None:
            history, self.request_turn = await recorder.save_request(question.message, self.stored)
            if self.windows is not None and question.session_id is not None:
                self.conversation = await self.windows.for_turn(question.session_id, history, question.message)
                question = replace(question, history=self.conversation.history, window=self.conversation.window)
            else:
                question = replace(question, history=split_ids(history)[0])
            self.question = question
            yield TurnSaved(self.request_turn)
            if self.memory is not None and question.session_id is not None:
                async for event in self.memory.begin(question.session_id, self.raw_message, self.request_turn["id"]):
                    yield event
                question = self.question = replace(question, memory=self.memory.part)
        if self.stored:
            yield ImagesStored(tuple(image.id for image in self.stored))
        if self.references is None:
            return
        hits = await self.references.find(question.session_id, question.message)
        if hits:
            message, self.sources = with_references(question.message, hits, self.references.budget_chars)
            self.question = replace(question, message=message)
            yield Sources(tuple(self.sources))
        elif hits is not None:
            yield NoDocumentsMatched()

    async def run(self, engine: ChatEngine, stop: threading.Event) -> AsyncGenerator[Event, None]:
        waited_ms = (time.perf_counter() - self.started) * 1000
        prompt = await run_blocking(engine.prepare, self.question)
        fit = prompt.context if isinstance(prompt, Prompt) else None
        self.prompted = Prompted(engine.model_label, engine.name, waited_ms, fit, fit, prompt.cached_tokens,
                                 prompt.dropped_messages)
        dropped_now = (fit.dropped[1] - fit.dropped[0]) if fit and fit.dropped else 0
        if dropped_now or (fit is None and prompt.dropped_messages):  # news only when this turn dropped some
            yield HistoryTrimmed(dropped_now or prompt.dropped_messages)
        yield Generating(self.prompted.model)
        if self.recorder is not None:
            self.recorder.start_answer(self.prompted.model)
        async with aclosing(self._tokens(engine, prompt, stop)) as tokens:
            async for token in tokens:
                yield token
        for _ in range(MAX_TOOL_STEPS if self.chat_tools is not None else 0):
            if not self.passes[-1].calls:
                break
            async with aclosing(self._tool_step(engine, stop)) as step:
                async for event in step:
                    yield event

    async def _tool_step(self, engine: ChatEngine, stop: threading.Event) -> AsyncGenerator[Event, None]:
        """Run this pass's calls, then answer again with their results in the conversation."""
        assert self.chat_tools is not None
        calls, said = self.passes[-1].calls, self.passes[-1].text
        results = {}
        for call in calls:
            async for event in self.chat_tools.run(call):
                if isinstance(event, ToolResult):
                    results[call.id] = event.content
                yield event
        if self.chat_tools.found:
            self._add_found(self.chat_tools.found)
            self.chat_tools.found.clear()
            yield Sources(tuple(self.sources))
        question = self.question
        history = [*question.history, *([{"role": "user", "content": question.message}] if question.message else []),
                   {"role": "assistant", "content": said, "tool_calls": [
                       {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                       for c in calls]},
                   *({"role": "tool", "content": results.get(c.id, ""), "tool_call_id": c.id} for c in calls)]
        self.question = replace(question, history=history, message="")
        prompt = await run_blocking(engine.prepare, self.question)
        self.prompted.last_fit = (prompt.context if isinstance(prompt, Prompt) else None) or self.prompted.last_fit
        async with aclosing(self._tokens(engine, prompt, stop)) as tokens:
            async for token in tokens:
                yield token

    def _add_found(self, hits: list[Hit]) -> None:
        """Passages found by search_documents join the answer's sources (numbered on)."""
        known = {source.get("chunk_id") for source in self.sources}
        for hit in hits:
            if hit.chunk_id not in known:
                known.add(hit.chunk_id)
                self.sources.append({"n": len(self.sources) + 1, "document_id": hit.document_id, "name": hit.name,
                                     "page": hit.page, "ocr": hit.ocr, "chunk_id": hit.chunk_id,
                                     "snippet": hit.text[:400], "score": hit.score})

    async def _tokens(self, engine: ChatEngine, prompt: PreparedPrompt,
                      stop: threading.Event) -> AsyncGenerator[Token | ToolCallMade, None]:
        """One pass: the engine's tokens (tool calls parsed out of them when the answer may call
        tools), recorded in a new Pass; the answer so far is saved every few seconds (a crash keeps it)."""
        this = Pass(prompt_tokens=len(prompt.tokens) or None)
        self.passes.append(this)
        calls = ToolCalls(prompt) if isinstance(prompt, Prompt) and prompt.tool_format else None
        checkpointed = this.started
        # A flag of this pass's own: iterate_in_thread sets it when the pass ends, and a next step
        # (after a tool call) needs one that is not set yet. A Stop closes this generator.
        this_pass = threading.Event()
        async with aclosing(iterate_in_thread(lambda: engine.stream(prompt, this_pass), this_pass)) as items:
            async for item in items:
                if isinstance(item, Token):
                    now = time.perf_counter()
                    this.first_token_at = this.first_token_at or now
                    for event in (calls.feed(item.text) if calls else (item,)):
                        _record(this, event)
                        yield event
                    if now - checkpointed >= self.checkpoint_s and self.recorder is not None:
                        checkpointed = now
                        await self.recorder.checkpoint(self._text())
                elif isinstance(item, ToolCallMade):  # a remote server parsed its model's call
                    _record(this, item)
                    yield item
                elif isinstance(item, Finish):
                    this.reason, this.completion_tokens, this.prompt_tokens = (
                        item.reason, item.completion_tokens, item.prompt_tokens)
        for event in (calls.finish() if calls else ()):
            _record(this, event)
            yield event
        this.ended_at = time.perf_counter()

    def _text(self) -> str:
        return "".join(p.text for p in self.passes)

    def _figures(self, ended: str | None = None) -> Figures:
        return figures(self.passes, ended, chat_tools=self.chat_tools is not None)

    async def _save(self, figured: Figures) -> dict[str, Any] | None:
        if self.recorder is None:
            return None
        steps = self.chat_tools.steps if self.chat_tools is not None else []
        return await self.recorder.save_answer(self._text(), self.sources + steps + self._memory_entries(),
                                               self.prompted.model, figured.as_turn(self.prompted.dropped_turns))

    def _memory_entries(self) -> list[dict[str, Any]]:
        """The memories the prompt held, kept with the answer (the page shows them again)."""
        if self.memory is None:
            return []
        fit = self.prompted.fit
        return [{"type": "memory", **used} for used in self.memory.used(fit.memories if fit else None)]

    def _context(self, answer: dict[str, Any] | None) -> dict[str, Any] | None:
        """The done frame's view of the context: tokens used of n_ctx after this answer, where
        the model's window starts, how many turns come before it (summarised or fallen out)."""
        fit = self.prompted.fit
        if fit is None:
            return None
        ids: list[int | None] = self.conversation.ids if self.conversation is not None else []
        first = ids[fit.start] if fit.start < len(ids) else (self.request_turn or {}).get("id")
        return {"used_tokens": self._used_tokens(), "n_ctx": fit.n_ctx, "window_first_turn_id": first,
                "summarized_turns": fit.start}

    def _used_tokens(self) -> int:
        """The context after this answer: the last pass's prompt and what was generated."""
        last_fit = self.prompted.last_fit
        return (last_fit.prompt_tokens if last_fit else 0) + sum(p.tokens for p in self.passes)

    async def finish(self) -> Event:
        result = self._figures()
        answer = await self._save(result)
        used: list[dict[str, Any]] = []
        if self.memory is not None:
            used = await self.memory.mark_used(self.prompted.fit.memories if self.prompted.fit else None)
            if answer is not None and self.question.session_id is not None:
                self.memory.after_answer(self.question.session_id, self.prompted.engine_name)
        if self.windows is not None and self.conversation is not None and answer is not None:
            question_id = (self.request_turn or {}).get("id")
            conversation = replace(self.conversation, system_prompt=self.question.system_prompt,
                                   memory=self.question.memory)  # the upkeep warms the prefix the next turn reads
            await self.windows.after_answer(conversation, self.prompted.fit, self.prompted.engine_name,
                                            (question_id, self.raw_message), (answer["id"], self._text()),
                                            self._used_tokens())
        return ChatDone(
            turn_id=answer["id"] if answer else None, finish_reason=result.finish_reason, model=self.prompted.model,
            usage=Usage(result.prompt_tokens, result.completion_tokens, self.prompted.cached_tokens),
            timings={"wait_ms": round(self.prompted.wait_ms, 1), "ttft_ms": result.ttft_ms,
                     "tokens_per_s": result.tokens_per_s,
                     "total_ms": round((time.perf_counter() - self.started) * 1000, 1)},
            dropped_turns=self.prompted.dropped_turns, answer=answer, question=self.request_turn,
            context=self._context(answer), memories_used=tuple(used))

    async def save_partial(self, reason: str) -> None:
        if self.recorder is None or not self.recorder.request_saved:
            return  # nothing to keep, or the request itself could not be saved: nothing to answer
        await self._save(self._figures(reason))


def _record(this: Pass, event: Token | ToolCallMade) -> None:
    if isinstance(event, Token):
        this.parts.append(event.text)
    else:
        this.calls.append(event)
