"""/v1's tools: the definitions, tool_choice and the conversation's calls and results, checked
(400 in OpenAI's shape for anything wrong) and turned into the answer's ToolPlan and history."""
from __future__ import annotations

import json
import re

from core.contracts import ToolPlan
from core.errors import InvalidInput

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 64


def tool_plan(tools: list | None, choice, parallel: bool | None) -> ToolPlan | None:
    """The plan, or None when the request has no tools (then tool_choice must not name one)."""
    if not tools:
        if choice not in (None, "none", "auto"):
            raise InvalidInput("tool_choice needs tools", code="invalid_tools", status=400)
        return None
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise InvalidInput(f"tools: a list of at most {MAX_TOOLS} function tools", code="invalid_tools", status=400)
    checked, names = [], set()
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict):
            raise InvalidInput(f"tools[{index}]: only {{\"type\": \"function\", \"function\": {{...}}}} tools are "
                               "supported", code="invalid_tools", status=400)
        name, parameters = function.get("name"), function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(name, str) or not NAME.match(name) or name in names:
            raise InvalidInput(f"tools[{index}].function.name: 1-64 of a-z A-Z 0-9 _ -, each name once",
                               code="invalid_tools", status=400)
        if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
            raise InvalidInput(f"tools[{index}].function.parameters: a JSON schema of type object",
                               code="invalid_tools", status=400)
        description = function.get("description", "")
        if not isinstance(description, str):
            raise InvalidInput(f"tools[{index}].function.description: text", code="invalid_tools", status=400)
        names.add(name)
        checked.append({"type": "function", "function": {"name": name, "description": description,
                                                         "parameters": parameters}})
    return ToolPlan(tuple(checked), _choice(choice, names), parallel is not False)


def _choice(choice, names: set[str]) -> str:
    if choice is None:
        return "auto"
    if choice in ("auto", "none", "required"):
        return choice
    name = ((choice or {}).get("function") or {}).get("name") if isinstance(choice, dict) else None
    if isinstance(choice, dict) and choice.get("type") == "function" and name in names:
        return name
    raise InvalidInput("tool_choice: \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": "
                       "{\"name\": one of the tools}}", code="invalid_tool_choice", status=400)


def assistant_calls(calls, index: int) -> list[dict]:
    """An assistant message's tool_calls, checked (arguments: a JSON object as text)."""
    if not isinstance(calls, list):
        raise InvalidInput(f"messages[{index}].tool_calls: a list", code="invalid_messages", status=400)
    out = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str) or not isinstance(function.get("name"), str):
            raise InvalidInput(f"messages[{index}].tool_calls: each needs an id and function.name",
                               code="invalid_messages", status=400)
        arguments = function.get("arguments", "{}")
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments, ensure_ascii=False)
        try:
            valid = isinstance(json.loads(arguments or "{}"), dict)
        except (TypeError, json.JSONDecodeError):
            valid = False
        if not valid:
            raise InvalidInput(f"messages[{index}].tool_calls: arguments must be a JSON object",
                               code="invalid_messages", status=400)
        out.append({"id": call["id"], "type": "function", "function": {"name": function["name"], "arguments": arguments}})
    return out
