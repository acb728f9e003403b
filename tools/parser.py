"""Tool calls out of a streaming answer, one piece of text at a time: text goes on at once, a
call is never shown as text, and JSON in a code block or in prose is never taken for a call.

A call opener counts only at the start of the answer or of a line, and never inside a ``` code
block; while the text could still become an opener ("<tool_" at a line start) it is held back,
so a split at any token boundary gives the same result as the whole text. A call whose JSON is
not an object with a known tool's name and object arguments is given back as text (a visible
failure, not a silent one).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tools.syntax import CLOSERS, OPENERS

FENCE = "```"


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: str  # a JSON object, compact
    args: dict[str, Any] = field(default_factory=dict, compare=False)  # the same, parsed (once, here)


class CallParser:
    def __init__(self, call_format: str, tool_names: list[str] | tuple[str, ...]) -> None:
        self.format = call_format
        self.names = set(tool_names)
        self.opener = OPENERS.get(call_format, "")
        self.closer = CLOSERS.get(call_format)
        self._pending = ""  # text not yet decided
        self._body: str | None = None  # inside a call: its text so far
        self._line_start = True  # the next character starts a line
        self._fenced = False  # inside a ``` code block
        self._started = False  # anything but whitespace emitted yet
        self._after_call = False  # whitespace right after a call is not text

    def feed(self, text: str) -> list[str | ParsedCall]:
        if self.format == "forced":
            self._pending += text
            return []
        self._pending += text
        return self._drain(final=False)

    def finish(self) -> list[str | ParsedCall]:
        if self.format == "forced":
            return [self._call(self._pending) or self._pending] if self._pending.strip() else []
        out = self._drain(final=True)
        if self._body is not None:  # an unclosed call at the end: models often stop at EOS instead
            body, self._body = self._body, None
            call = self._call(body)
            if call is None:
                self._emit(out, self.opener + body)
            else:
                out.append(call)
        return out

    # ---- the states ---------------------------------------------------------------------------------
    def _drain(self, final: bool) -> list[str | ParsedCall]:
        out: list[str | ParsedCall] = []
        while self._pending:
            if self._body is not None:
                if not self._in_call(out):
                    break
                continue
            if self.format == "llama3" and not self._started and self._pending.lstrip().startswith("{"):
                if not final:
                    break  # a bare JSON answer: a call only if the whole of it parses
                whole, self._pending = self._pending, ""
                out.append(self._call(whole) or whole)
                continue
            if not self._in_text(out, final):
                break
        return out

    def _in_call(self, out: list[Any]) -> bool:
        if self.closer is None:  # Mistral, Llama's python tag: the call runs to the end of the answer
            self._body = (self._body or "") + self._pending
            self._pending = ""
            return False
        self._body = (self._body or "") + self._pending
        self._pending = ""
        end = self._body.find(self.closer)
        if end < 0:
            return False
        body, rest = self._body[:end], self._body[end + len(self.closer):]
        self._body, self._pending = None, rest
        self._line_start = True
        call = self._call(body)
        if call is None:
            self._emit(out, self.opener + body + self.closer)
        else:
            out.append(call)
            self._after_call = True
        return True

    def _in_text(self, out: list[Any], final: bool) -> bool:
        """Emit text up to a possible opener; False when the rest must wait for more text."""
        text, i = self._pending, 0
        while i < len(text):
            if text.startswith(FENCE, i):
                self._fenced = not self._fenced
                i += len(FENCE)
                self._line_start = False
                continue
            if self._line_start and not self._fenced and self.opener:
                stripped = len(text) - len(text[i:].lstrip(" \t"))
                candidate = text[stripped:]
                if candidate.startswith(self.opener):
                    self._emit(out, text[:stripped] if text[:stripped].strip() else "")
                    self._pending, self._body = candidate[len(self.opener):], ""
                    return True
                if self.opener.startswith(candidate) and not final:
                    self._emit(out, text[:i])
                    self._pending = text[i:]
                    return False  # could still become the opener
            if not final and FENCE.startswith(text[i:]) and text[i] == "`":
                self._emit(out, text[:i])
                self._pending = text[i:]
                return False  # could still become a fence
            self._line_start = text[i] == "\n"
            i += 1
        self._emit(out, text)
        self._pending = ""
        return False

    def _emit(self, out: list[Any], text: str) -> None:
        if self._after_call:
            text = text.lstrip()
            self._after_call = not text
        if text:
            self._started = self._started or bool(text.strip())
            if out and isinstance(out[-1], str):
                out[-1] += text
            else:
                out.append(text)

    def _call(self, body: str) -> ParsedCall | None:
        try:
            value = json.loads(body.strip())
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and len(value) == 1:  # Mistral writes a list
            value = value[0]
        if not isinstance(value, dict) or value.get("name") not in self.names:
            return None
        arguments = value.get("arguments", value.get("parameters", {}))
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                return None
        if not isinstance(arguments, dict):
            return None
        return ParsedCall(value["name"], json.dumps(arguments, ensure_ascii=False, separators=(",", ":")), arguments)
