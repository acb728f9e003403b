"""The tools a chat answer may use itself: search the document library, search earlier
conversations, run Python in the sandbox (the user confirms each run unless they allowed it for
the conversation), draw a picture (made right after the answer, through the slot like any
picture: the image model swaps in and the chat model's KV cache is kept for its return). Each
is switched on per conversation by the page. A call's result goes back
to the model for the next step of the same answer; each step is an event (the page shows it as a
collapsible step) and is kept with the answer (in its sources, as {"type": "tool", ...}).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.contracts import ToolPlan
from core.errors import AppError
from core.events import Event, RunFinished, ToolCallMade, ToolConfirm, ToolResult
from tools.tool import Tool, ToolOutcome, text_parameters

if TYPE_CHECKING:
    from documents.library import DocumentLibrary
    from rag_engine import Hit
    from sandbox.runs import Sandbox
    from store.sessions import SessionStore

RESULT_CHARS = 2000  # what a result may put into the prompt
CONFIRM_S = 300.0


@dataclass
class ToolContext:
    """What the built-in tools run with: the conversation and the services it may use."""

    session_id: str
    library: DocumentLibrary | None = None
    sessions: SessionStore | None = None
    sandbox: Sandbox | None = None
    found: list[Hit] = field(default_factory=list)  # document hits found by search_documents (the answer's sources)


async def search_documents(context: ToolContext, args: Mapping[str, Any]) -> ToolOutcome:
    query = str(args.get("query") or "")
    if context.library is None or not query:
        return ToolOutcome(False, "no document library or no query")
    hits = await context.library.search(query, 3)
    context.found.extend(hits)
    if not hits:
        return ToolOutcome(True, "No passage matched.")
    return ToolOutcome(True, "\n\n".join(f"[{hit.name}{f' p. {hit.page}' if hit.page else ''}] {hit.text[:600]}"
                                          for hit in hits))


async def search_conversations(context: ToolContext, args: Mapping[str, Any]) -> ToolOutcome:
    from store.turn_search import search

    query = str(args.get("query") or "")
    if context.sessions is None or not query:
        return ToolOutcome(False, "no conversations or no query")
    rows = await search(context.sessions.db.connection, query, limit=5)
    rows = [row for row in rows if row["session_id"] != context.session_id] or rows
    if not rows:
        return ToolOutcome(True, "No earlier message matched.")
    return ToolOutcome(True, "\n".join(f"- ({row['session_title'] or 'untitled'}, {row['created'][:10]}, {row['role']}) "
                                       f"{row['snippet']['text'][:300]}" for row in rows))


async def run_python(context: ToolContext, args: Mapping[str, Any]) -> ToolOutcome:
    code = str(args.get("code") or "")
    if context.sandbox is None or not code:
        return ToolOutcome(False, "the sandbox is not available or there is no code")
    context.sandbox.check_admission()
    result = None
    async with aclosing(context.sandbox.run(code, context.sandbox.new_run_id())) as events:
        async for event in events:
            if isinstance(event, RunFinished):
                result = event.result
    if result is None:
        return ToolOutcome(False, "the run did not finish")
    text = (result.stdout + ("\n[stderr]\n" + result.stderr if result.stderr else "")).strip() or "(no output)"
    ok = result.exit_code == 0 and not result.reason
    return ToolOutcome(ok, f"exit code {result.exit_code}{f' ({result.reason})' if result.reason else ''}\n{text}")


async def generate_image(context: ToolContext, args: Mapping[str, Any]) -> ToolOutcome:
    """The picture is made after this answer (the chat model holds the slot now): the page asks
    for it, as the image mode would."""
    prompt = str(args.get("prompt") or "").strip()
    if not prompt:
        return ToolOutcome(False, "no description to draw")
    return ToolOutcome(True, "The picture will be drawn right after this answer and shown below it.",
                       for_page={"draw": prompt})


BUILTIN: dict[str, Tool[ToolContext]] = {tool.name: tool for tool in (
    Tool("search_documents", "Search the user's document library (uploaded files) for passages",
         text_parameters(query="what to look for, in the documents' language"), search_documents),
    Tool("search_conversations", "Search the user's earlier conversations with you",
         text_parameters(query="words to look for"), search_conversations),
    Tool("run_python", "Run Python code in an isolated sandbox and get its output",
         text_parameters(code="the Python code"), run_python, asks_user=True),
    Tool("generate_image", "Draw a picture from a description; it appears below your answer",
         text_parameters(prompt="what to draw, in English works best"), generate_image, where="page"),
)}


class Confirmations:
    """Runs waiting for the user's yes or no, by call id (the page answers through the API)."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[bool]] = {}

    async def wait(self, call_id: str, timeout: float = CONFIRM_S) -> bool:
        future = self._waiting[call_id] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:
            self._waiting.pop(call_id, None)

    def decide(self, call_id: str, run: bool) -> bool:
        """False when no such call waits (answered already, or timed out)."""
        future = self._waiting.get(call_id)
        if future is None or future.done():
            return False
        future.set_result(run)
        return True


class ChatTools:
    """The built-in tools one answer may use (each switched on per conversation by the page)."""

    def __init__(self, names: list[str], session_id: str, *, library: DocumentLibrary | None = None,
                 sessions: SessionStore | None = None, sandbox: Sandbox | None = None,
                 confirmations: Confirmations | None = None, allow_run: bool = False) -> None:
        unknown = [name for name in names if name not in BUILTIN]
        if unknown:
            raise AppError(f"tools: unknown {unknown[0]!r} (these exist: {', '.join(BUILTIN)})", code="invalid_tools",
                           status=422)
        self.tools = [BUILTIN[name] for name in names]
        self.context = ToolContext(session_id, library, sessions, sandbox)
        self.confirmations, self.allowed = confirmations or Confirmations(), allow_run  # allowed: no confirmations
        self.steps: list[dict[str, Any]] = []  # kept with the answer

    @property
    def found(self) -> list[Hit]:
        return self.context.found

    def plan(self) -> ToolPlan:
        return ToolPlan(tuple(tool.definition() for tool in self.tools), "auto", parallel=False, max_calls=1)

    async def run(self, call: ToolCallMade) -> AsyncGenerator[Event, None]:
        """Run one call: ToolConfirm first when the user must agree, then its ToolResult."""
        tool = BUILTIN.get(call.name)
        if tool is None or tool.run is None or tool not in self.tools:
            yield self._result(call, ToolOutcome(False, f"no tool {call.name!r} here"))
            return
        if tool.asks_user and not self.allowed:
            yield ToolConfirm(call.id, call.name, call.arguments)
            if not await self.confirmations.wait(call.id):
                yield self._result(call, ToolOutcome(False, "The user did not allow running this code."))
                return
        try:
            outcome = await tool.run(self.context, call.args)
        except AppError as exc:
            outcome = ToolOutcome(False, exc.message)
        yield self._result(call, outcome)

    def _result(self, call: ToolCallMade, outcome: ToolOutcome) -> ToolResult:
        content = outcome.content[:RESULT_CHARS]
        self.steps.append({"type": "tool", "id": call.id, "name": call.name, "arguments": call.arguments,
                           "ok": outcome.ok, "result": content})
        return ToolResult(call.id, call.name, outcome.ok, content, outcome.for_page)
