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
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from core.contracts import ToolPlan
from core.errors import AppError
from core.events import Event, RunFinished, ToolCallMade, ToolConfirm, ToolResult

if TYPE_CHECKING:
    from documents.library import DocumentLibrary
    from sandbox.runs import Sandbox
    from store.sessions import SessionStore

RESULT_CHARS = 2000  # what a result may put into the prompt
CONFIRM_S = 300.0


def _tool(name: str, description: str, **properties: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": {key: {"type": "string", "description": text} for key, text in properties.items()},
        "required": list(properties)}}}


BUILTIN = {
    "search_documents": _tool("search_documents", "Search the user's document library (uploaded files) for passages",
                              query="what to look for, in the documents' language"),
    "search_conversations": _tool("search_conversations", "Search the user's earlier conversations with you",
                                  query="words to look for"),
    "run_python": _tool("run_python", "Run Python code in an isolated sandbox and get its output", code="the Python code"),
    "generate_image": _tool("generate_image", "Draw a picture from a description; it appears below your answer",
                            prompt="what to draw, in English works best"),
}


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
    def __init__(self, names: list[str], session_id: str, *, library: DocumentLibrary | None = None,
                 sessions: SessionStore | None = None, sandbox: Sandbox | None = None, confirmations: Confirmations | None = None, allow_run: bool = False) -> None:
        unknown = [name for name in names if name not in BUILTIN]
        if unknown:
            raise AppError(f"tools: unknown {unknown[0]!r} (these exist: {', '.join(BUILTIN)})", code="invalid_tools",
                           status=422)
        self.names, self.session_id = names, session_id
        self.library, self.sessions, self.sandbox = library, sessions, sandbox
        self.confirmations, self.allow_run = confirmations or Confirmations(), allow_run
        self.steps: list[dict[str, Any]] = []  # kept with the answer
        self.found: list[Any] = []  # document hits found by search_documents (the answer's sources)

    def plan(self) -> ToolPlan:
        return ToolPlan(tuple(BUILTIN[name] for name in self.names), "auto", parallel=False, max_calls=1)

    async def run(self, call: ToolCallMade) -> AsyncGenerator[Event, None]:
        """Run one call: ToolConfirm first when the user must agree, then its ToolResult."""
        try:
            arguments = json.loads(call.arguments)
        except json.JSONDecodeError:
            arguments = {}
        if call.name == "run_python" and not self.allow_run:
            yield ToolConfirm(call.id, call.name, call.arguments)
            if not await self.confirmations.wait(call.id):
                yield self._result(call, False, "The user did not allow running this code.")
                return
        try:
            given = arguments.get("query") or arguments.get("code") or arguments.get("prompt") or ""
            ok, content = await getattr(self, f"_{call.name}")(str(given))
        except AppError as exc:
            ok, content = False, exc.message
        yield self._result(call, ok, content[:RESULT_CHARS])

    def _result(self, call: ToolCallMade, ok: bool, content: str) -> ToolResult:
        self.steps.append({"type": "tool", "id": call.id, "name": call.name, "arguments": call.arguments, "ok": ok,
                           "result": content})
        return ToolResult(call.id, call.name, ok, content)

    async def _search_documents(self, query: str) -> tuple[bool, str]:
        if self.library is None or not query:
            return False, "no document library or no query"
        hits = await self.library.search(query, 3)
        self.found.extend(hits)
        if not hits:
            return True, "No passage matched."
        return True, "\n\n".join(f"[{hit.name}{f' p. {hit.page}' if hit.page else ''}] {hit.text[:600]}" for hit in hits)

    async def _search_conversations(self, query: str) -> tuple[bool, str]:
        from store.turn_search import search

        if self.sessions is None or not query:
            return False, "no conversations or no query"
        rows = await search(self.sessions.db.connection, query, limit=5)
        rows = [row for row in rows if row["session_id"] != self.session_id] or rows
        if not rows:
            return True, "No earlier message matched."
        return True, "\n".join(f"- ({row['session_title'] or 'untitled'}, {row['created'][:10]}, {row['role']}) "
                               f"{row['snippet']['text'][:300]}" for row in rows)

    async def _generate_image(self, prompt: str) -> tuple[bool, str]:
        """The picture is made after this answer (the chat model holds the slot now); the page asks
        for it with the prompt, as the image mode would."""
        if not prompt.strip():
            return False, "no description to draw"
        return True, "The picture will be drawn right after this answer and shown below it."

    async def _run_python(self, code: str) -> tuple[bool, str]:
        if self.sandbox is None or not code:
            return False, "the sandbox is not available or there is no code"
        self.sandbox.check_admission()
        result = None
        async with aclosing(self.sandbox.run(code, self.sandbox.new_run_id())) as events:
            async for event in events:
                if isinstance(event, RunFinished):
                    result = event.result
        if result is None:
            return False, "the run did not finish"
        text = (result.stdout + ("\n[stderr]\n" + result.stderr if result.stderr else "")).strip() or "(no output)"
        ok = result.exit_code == 0 and not result.reason
        return ok, f"exit code {result.exit_code}{f' ({result.reason})' if result.reason else ''}\n{text}"
