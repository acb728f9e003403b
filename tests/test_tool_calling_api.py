"""Tool calling through /v1 with the official openai client, on the embedded SmolLM2 (its
template has no tools: the generic format, and a grammar for required and named calls)."""
from __future__ import annotations

import json

import openai
import pytest

from chat import create_app
from tests.conftest import make_settings, serve

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city", "unit"]}}}
SEARCH = {"type": "function", "function": {
    "name": "search_documents", "description": "Search the user's documents",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
ASK = [{"role": "user", "content": "What is the weather in Seoul?"}]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("tools") / "data", max_tokens=48, n_ctx=2048)
    settings.models.scan_on_start = False
    with serve(create_app(settings)) as url:
        yield openai.OpenAI(base_url=url + "/v1", api_key="anything", max_retries=0, timeout=120)


def valid(arguments: str, tool: dict) -> dict:
    """The arguments parse and meet the schema's required keys, types and enums."""
    value = json.loads(arguments)
    schema = tool["function"]["parameters"]
    assert set(schema["required"]) <= set(value)
    for key, rule in schema["properties"].items():
        if key in value:
            assert isinstance(value[key], str)
            assert value[key] in rule.get("enum", [value[key]])
    return value


@pytest.mark.parametrize("choice", [{"type": "function", "function": {"name": "get_weather"}}, "required"])
def test_a_named_or_required_choice_gives_a_valid_call_streamed_as_not(client, choice):
    whole = client.chat.completions.create(model="chat", messages=ASK, tools=[WEATHER, SEARCH], tool_choice=choice,
                                           temperature=0, seed=1)
    (call,) = whole.choices[0].message.tool_calls
    assert whole.choices[0].finish_reason == "tool_calls" and whole.choices[0].message.content is None
    tool = WEATHER if call.function.name == "get_weather" else SEARCH
    valid(call.function.arguments, tool)
    assert call.id.startswith("call_") and call.type == "function"
    chunks = list(client.chat.completions.create(model="chat", messages=ASK, tools=[WEATHER, SEARCH], tool_choice=choice,
                                                 temperature=0, seed=1, stream=True))
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert [(d.index, d.function.name, d.function.arguments) for d in deltas] == [
        (0, call.function.name, call.function.arguments)]  # streamed equals non-streamed
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not any(c.choices and c.choices[0].delta.content for c in chunks)  # the call is never text


def test_a_tool_result_is_answered_and_none_makes_no_call(client):
    first = client.chat.completions.create(model="chat", messages=ASK, tools=[WEATHER], tool_choice="required",
                                           temperature=0, seed=1)
    call = first.choices[0].message.tool_calls[0]
    follow = ASK + [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21, "unit": "c"})}]
    answer = client.chat.completions.create(model="chat", messages=follow, tools=[WEATHER], temperature=0, seed=1)
    assert answer.choices[0].finish_reason in ("stop", "length") and answer.choices[0].message.content
    assert "21" in answer.choices[0].message.content  # the result reached the model
    plain = client.chat.completions.create(model="chat", messages=ASK, tools=[WEATHER], tool_choice="none",
                                           temperature=0, seed=1)
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("change,code", [
    ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "invalid_tools"),
    ({"tools": [WEATHER, WEATHER]}, "invalid_tools"),
    ({"tools": [{"type": "retrieval"}]}, "invalid_tools"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]}, "invalid_tools"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "invalid_tool_choice"),
    ({"tool_choice": "required"}, "invalid_tools"),
    ({"tools": [WEATHER], "messages": ASK + [{"role": "tool", "tool_call_id": "never-made", "content": "x"}]},
     "invalid_messages"),
    ({"tools": [WEATHER], "messages": ASK + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "[1]"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "x"}]}, "invalid_messages"),
])
def test_bad_tools_are_400_in_openais_shape(client, change, code):
    body = {"model": "chat", "messages": ASK} | change
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**body)
    assert refused.value.body["code"] == code and refused.value.status_code == 400
