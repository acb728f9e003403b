"""An answer's tokens with its tool calls taken out (tools/parser.py), as typed events: text as
Token, each call as ToolCallMade with an id, at most the prompt's `max_calls` (a model that
loops is cut off there; the calls past it are dropped, not shown as text)."""
from __future__ import annotations

import uuid

from core.contracts import Prompt
from core.events import Token, ToolCallMade
from tools.parser import CallParser, ParsedCall


class ToolCalls:
    def __init__(self, prompt: Prompt) -> None:
        self.parser = CallParser(prompt.tool_format or "generic", prompt.tool_names)
        self.max_calls = max(1, prompt.max_calls)
        self.made: list[ToolCallMade] = []

    def feed(self, text: str) -> list[Token | ToolCallMade]:
        return self._events(self.parser.feed(text))

    def finish(self) -> list[Token | ToolCallMade]:
        return self._events(self.parser.finish())

    def _events(self, pieces: list[str | ParsedCall]) -> list[Token | ToolCallMade]:
        events: list[Token | ToolCallMade] = []
        for piece in pieces:
            if isinstance(piece, str):
                events.append(Token(piece))
            elif len(self.made) < self.max_calls:
                call = ToolCallMade(len(self.made), f"call_{uuid.uuid4().hex[:24]}", piece.name, piece.arguments,
                                    piece.args)
                self.made.append(call)
                events.append(call)
        return events
