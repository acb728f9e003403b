"""A tool as one piece of data: what the model is told (name, description, the JSON schema of its
arguments), whether the user confirms each call, where its work is done, and how it runs.

    where="server"  it runs here, its result goes back to the model (search, run code)
    where="page"    it runs here too, and tells the page what to do after the answer (a picture
                    to draw: the chat model holds the slot until the answer ends)
    where="client"  an OpenAI caller's own tool (/v1): the call goes back to the caller

A call's arguments are parsed once, where the call is made (tools/parser.py, models/remote.py).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

C = TypeVar("C")  # what the implementation runs with (the conversation's library, sandbox ...)
Where = Literal["server", "page", "client"]


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool
    content: str  # what goes back to the model (and is shown as the answer's step)
    for_page: Mapping[str, Any] | None = None  # where="page": what the page carries out after the answer


@dataclass(frozen=True)
class Tool(Generic[C]):
    name: str
    description: str
    parameters: Mapping[str, Any] = field(hash=False)  # a JSON schema of an object
    run: Callable[[C, Mapping[str, Any]], Awaitable[ToolOutcome]] | None = field(default=None, hash=False, compare=False)
    asks_user: bool = False  # the user confirms each call (unless they allowed it for the conversation)
    where: Where = "server"

    def definition(self) -> dict[str, Any]:
        """The tool as OpenAI function tools are written (what templates and grammars read)."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": dict(self.parameters)}}


def text_parameters(**properties: str) -> dict[str, Any]:
    """A schema of required string arguments, each with its description."""
    return {"type": "object", "properties": {key: {"type": "string", "description": text}
                                             for key, text in properties.items()},
            "required": list(properties)}
