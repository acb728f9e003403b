"""How tool calls look for each chat-template family, and how a conversation with tools is put
to a model.

A template that knows tools (it reads `tools`) is given them and the conversation as it is
(assistant `tool_calls`, `tool` messages), and the model answers in its family's syntax:
Hermes/Qwen/EXAONE 4 `<tool_call>{...}</tool_call>`, Mistral `[TOOL_CALLS] [...]`, Llama 3.x a
bare `{"name": ..., "parameters": ...}`. A template without tools (SmolLM2, EXAONE 3.5, Gemma)
gets the "generic" format: the tools and the `<tool_call>` syntax described in the system
prompt, earlier calls and results written into the messages as text. A required or named call
is "forced": the whole answer is one call's JSON, held to the tools' schemas by a grammar.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from core.contracts import ChatInput, Sampling, ToolPlan

OPENERS = {"hermes": "<tool_call>", "generic": "<tool_call>", "mistral": "[TOOL_CALLS]", "llama3": "<|python_tag|>"}
CLOSERS = {"hermes": "</tool_call>", "generic": "</tool_call>"}
GENERIC_INSTRUCTIONS = (
    "You can call these tools. To call one, write on its own line\n"
    "<tool_call>{{\"name\": \"<tool name>\", \"arguments\": {{<arguments as JSON>}}}}</tool_call>\n"
    "and nothing else; the result comes back as <tool_response>. Call a tool only when it helps; "
    "otherwise answer directly.\nTools:\n{tools}")


def with_tools(request: ChatInput, system_prompt: str, template: str | None
               ) -> tuple[str, list[dict[str, Any]], dict[str, Any], Sampling, str | None]:
    """(system prompt, history messages, template arguments, sampling, call format) for the
    request's tools; without tools, the conversation as it is."""
    sampling, plan = request.sampling, request.tool_plan
    if plan is None:
        return system_prompt, [{"role": t["role"], "content": t["content"]} for t in request.history], {}, sampling, None
    call = call_format(template, plan)
    native = call is not None and native_tools(template, plan)
    if call is not None and not native:
        system_prompt = generic_system(system_prompt, plan)
    if call == "forced":
        sampling = replace(sampling, json_schema=call_schema(plan), json_object=False)
    extra = {"tools": tools_for_choice(plan)} if native else {}
    return system_prompt, as_messages(request.history, native), extra, sampling, call


def template_family(template: str | None) -> tuple[str | None, bool]:
    """(family, whether the template itself renders tools) from its markers."""
    if not template:
        return None, False
    tools = "tools" in template or "tool_call" in template
    for marker, family in (("<tool_call>", "hermes"), ("[TOOL_CALLS]", "mistral"), ("<|start_header_id|>", "llama3"),
                           ("[|assistant|]", "exaone"), ("<start_of_turn>", "gemma"), ("[INST]", "mistral"),
                           ("<|im_start|>", "chatml")):
        if marker in template:
            return family, tools
    return "other", tools


def call_format(template: str | None, plan: ToolPlan) -> str | None:
    """How calls will appear in this answer's output, or None when no call may be made."""
    if plan.choice == "none" or not plan.tools:
        return None
    if plan.choice != "auto":
        return "forced"
    family, native = template_family(template)
    return family if native and family in ("hermes", "mistral", "llama3") else "generic"


def native_tools(template: str | None, plan: ToolPlan) -> bool:
    """Whether the template is given the tools (else the system prompt describes them)."""
    family, native = template_family(template)
    return native and family in ("hermes", "mistral", "llama3")


def tools_for_choice(plan: ToolPlan) -> list[dict[str, Any]]:
    if plan.choice in ("auto", "none", "required"):
        return list(plan.tools)
    return [tool for tool in plan.tools if tool["function"]["name"] == plan.choice]


def call_schema(plan: ToolPlan) -> dict[str, Any]:
    """The JSON a forced answer must be: one call of one of the allowed tools."""
    options = [{"type": "object", "properties": {"name": {"const": tool["function"]["name"]},
                                                  "arguments": tool["function"].get("parameters") or {"type": "object"}},
                "required": ["name", "arguments"]} for tool in tools_for_choice(plan)]
    return options[0] if len(options) == 1 else {"anyOf": options}


def generic_system(system_prompt: str, plan: ToolPlan) -> str:
    described = "\n".join(json.dumps({"name": t["function"]["name"], "description": t["function"].get("description", ""),
                                      "parameters": t["function"].get("parameters") or {}}, ensure_ascii=False)
                          for t in tools_for_choice(plan))
    return "\n\n".join(part for part in (system_prompt, GENERIC_INSTRUCTIONS.format(tools=described)) if part)


def as_messages(history: list[dict[str, Any]], native: bool) -> list[dict[str, Any]]:
    """The conversation for the template: native templates get OpenAI's shape (arguments as
    objects, as their Jinja expects); others get calls and results written as text."""
    out = []
    for turn in history:
        calls = turn.get("tool_calls") or []
        if turn["role"] == "tool":
            out.append({"role": "tool", "content": turn["content"], "tool_call_id": turn.get("tool_call_id"),
                        "name": turn.get("name")} if native else
                       {"role": "user", "content": f"<tool_response>\n{turn['content']}\n</tool_response>"})
        elif calls and native:
            out.append({"role": "assistant", "content": turn.get("content") or "", "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["function"]["name"],
                                                                   "arguments": arguments_object(c["function"]["arguments"])}}
                for c in calls]})
        elif calls:
            written = "\n".join(f'<tool_call>{{"name": {json.dumps(c["function"]["name"])}, "arguments": '
                                f'{c["function"]["arguments"] or "{}"}}}</tool_call>' for c in calls)
            out.append({"role": "assistant", "content": "\n".join(p for p in (turn.get("content"), written) if p)})
        else:
            out.append({"role": turn["role"], "content": turn["content"]})
    return _merge_users(out) if not native else out


def arguments_object(arguments: str | dict[str, Any]) -> dict[str, Any]:
    """A call's arguments as an object, whoever wrote them (a model's text, a remote server, a
    client's history): text that is not a JSON object is {} (the text itself stays as written)."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _merge_users(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Several tool results in a row become one user message (templates expect turns to alternate)."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if merged and message["role"] == "user" and merged[-1]["role"] == "user":
            merged[-1] = {"role": "user", "content": merged[-1]["content"] + "\n" + message["content"]}
        else:
            merged.append(message)
    return merged


def opener_end(text: str, call_format: str | None) -> int | None:
    """Where a call opener ends in the text so far, when one starts a line outside a ``` block
    (the point from which a grammar holds the call to the tools' schemas), else None."""
    opener = OPENERS.get(call_format or "")
    if not opener or call_format not in CLOSERS:
        return None
    at = 0
    while (found := text.find(opener, at)) >= 0:
        line_start = text.rfind("\n", 0, found) + 1
        if not text[line_start:found].strip(" \t") and text.count("```", 0, found) % 2 == 0:
            return found + len(opener)
        at = found + 1
    return None
