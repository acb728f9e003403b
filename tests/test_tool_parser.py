"""The streaming tool-call parser per family: the same result however the text is split into
tokens, calls never shown as text, JSON in code blocks and prose never taken for a call."""
from __future__ import annotations

import pytest

from core.contracts import Prompt, ToolPlan
from core.events import ToolCallMade
from tools.parser import CallParser, ParsedCall
from tools.syntax import arguments_object, as_messages, call_format, call_schema, template_family
from turns.tool_calls import ToolCalls

NAMES = ("search_documents", "run_python")


def parse(call_format: str, pieces: list[str]) -> list:
    parser, out = CallParser(call_format, NAMES), []
    for piece in pieces:
        out += parser.feed(piece)
    out += parser.finish()
    merged: list = []
    for item in out:
        if isinstance(item, str) and merged and isinstance(merged[-1], str):
            merged[-1] += item
        else:
            merged.append(item)
    return merged


def every_split(call_format: str, text: str) -> list:
    """Parsed as one piece, and split at every boundary in steps of 1, 2 and 5: all the same."""
    whole = parse(call_format, [text])
    for cut in range(len(text) + 1):
        for step in (1, 2, 5):
            pieces = [text[:cut]] + [text[i:i + step] for i in range(cut, len(text), step)]
            assert parse(call_format, pieces) == whole, (cut, step)
    return whole


SEARCH = ParsedCall("search_documents", '{"query":"연차 휴가"}')
RUN = ParsedCall("run_python", '{"code":"print(1)"}')


@pytest.mark.parametrize("call_format,text,expected", [
    ("hermes", '찾아볼게요.\n<tool_call>\n{"name": "search_documents", "arguments": {"query": "연차 휴가"}}\n</tool_call>',
     ["찾아볼게요.\n", SEARCH]),
    ("hermes", '<tool_call>{"name": "search_documents", "arguments": {"query": "연차 휴가"}}</tool_call>\n'
               '<tool_call>{"name": "run_python", "arguments": {"code": "print(1)"}}</tool_call>', [SEARCH, RUN]),
    ("generic", '<tool_call>{"name": "run_python", "arguments": "{\\"code\\": \\"print(1)\\"}"}</tool_call>', [RUN]),
    ("generic", '<tool_call>{"name": "search_documents", "arguments": {"query": "연차 휴가"}}', [SEARCH]),  # EOS, no closer
    ("mistral", '[TOOL_CALLS] [{"name": "run_python", "arguments": {"code": "print(1)"}}]', [RUN]),
    ("llama3", '{"name": "search_documents", "parameters": {"query": "연차 휴가"}}', [SEARCH]),
    ("llama3", '<|python_tag|>{"name": "run_python", "parameters": {"code": "print(1)"}}', [RUN]),
    ("forced", '{"name": "run_python", "arguments": {"code": "print(1)"}}', [RUN]),
])
def test_each_family_gives_the_call_at_every_token_split(call_format, text, expected):
    assert every_split(call_format, text) == expected


@pytest.mark.parametrize("call_format,text", [
    ("hermes", '예시입니다:\n```\n<tool_call>{"name": "run_python", "arguments": {"code": "x"}}</tool_call>\n```\n끝.'),
    ("generic", '태그는 <tool_call>{"name": "run_python", "arguments": {}}</tool_call> 처럼 씁니다.'),  # prose, mid-line
    ("generic", '<tool_call>{"name": "delete_everything", "arguments": {}}</tool_call>'),  # no such tool
    ("generic", '<tool_call>{"name": "run_python", "arguments": [1, 2]}</tool_call>'),  # arguments not an object
    ("generic", 'a < b, and <tool is not a tag; x <tool_call'),
    ("llama3", '{"answer": 42} is the JSON you asked for.'),
    ("llama3", 'Here is JSON: {"name": "run_python", "parameters": {"code": "x"}}'),  # not the whole answer
    ("mistral", 'Write [TOOL_CALLS] in a sentence and it stays text.'),
])
def test_code_blocks_prose_and_bad_calls_stay_text(call_format, text):
    assert every_split(call_format, text) == [text]


def test_a_model_that_loops_is_cut_at_max_calls_and_extra_calls_are_not_text():
    prompt = Prompt([], [], None, 0, 10, tool_format="generic", tool_names=NAMES, max_calls=2)
    calls = ToolCalls(prompt)
    call = '<tool_call>{"name": "run_python", "arguments": {"code": "print(1)"}}</tool_call>\n'
    events = calls.feed(call * 5) + calls.finish()
    assert [e.index for e in calls.made] == [0, 1] and all(e.name == "run_python" for e in events)
    assert len({e.id for e in calls.made}) == 2


def test_formats_by_template_and_the_forced_schema():
    plan = ToolPlan(({"type": "function", "function": {"name": "run_python", "parameters": {
        "type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}},))
    qwen = "{% for tool in tools %}{{ tool | tojson }}{% endfor %}<tool_call>"
    assert template_family(qwen) == ("hermes", True) and call_format(qwen, plan) == "hermes"
    assert call_format("<|im_start|>{{ messages }}", plan) == "generic"  # SmolLM2: no tools in its template
    assert call_format(qwen, ToolPlan(plan.tools, "none")) is None
    assert call_format(qwen, ToolPlan(plan.tools, "run_python")) == "forced"
    schema = call_schema(ToolPlan(plan.tools, "required"))
    assert schema["properties"]["name"] == {"const": "run_python"} and schema["properties"]["arguments"]["required"] == ["code"]


def test_history_calls_and_results_become_text_for_templates_without_tools():
    history = [{"role": "user", "content": "run it"},
               {"role": "assistant", "content": "", "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "run_python", "arguments": '{"code": "1"}'}}]},
               {"role": "tool", "content": "1", "tool_call_id": "c1"}]
    generic = as_messages(history, native=False)
    assert generic[1] == {"role": "assistant", "content": '<tool_call>{"name": "run_python", "arguments": {"code": "1"}}'
                                                          '</tool_call>'}
    assert generic[2] == {"role": "user", "content": "<tool_response>\n1\n</tool_response>"}
    native = as_messages(history, native=True)
    assert native[1]["tool_calls"][0]["function"]["arguments"] == {"code": "1"} and native[2]["role"] == "tool"


def test_after_an_opener_in_auto_mode_the_call_is_generated_again_under_the_schemas_grammar(monkeypatch):
    """LlmEngine.stream on a stub model: text up to the opener goes out, what the model wrote after
    it is dropped, and the call is regenerated with the tools' call schema as a grammar, then closed."""
    import threading

    import llm_engine
    from core.contracts import Finish, Prompt
    from core.events import Token
    from settings import ChatModel
    from tools.syntax import opener_end

    assert opener_end("ok\n<tool_call>{", "generic") == len("ok\n<tool_call>")
    assert opener_end("see ```\n<tool_call>", "generic") is None and opener_end("a <tool_call>", "hermes") is None

    tool = {"type": "function", "function": {"name": "run_python", "parameters": {
        "type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}
    calls = []
    scripts = [["Let me run it.\n", "<tool_", "call>{\"nam", "e\": \"oops"], ['{"name": "run_python", ', '"arguments": {"code": "1"}}']]

    def fake_completion(llm, cfg, tokens, max_tokens, sampling, prompt, stop, sampled):
        calls.append((tokens, sampling))
        for text in scripts[len(calls) - 1]:
            sampled.tokens += 1
            yield text, None

    class Stub:
        def tokenize(self, data, add_bos, special):
            return [len(data)]

    monkeypatch.setattr(llm_engine, "completion", fake_completion)
    engine = llm_engine.LlmEngine(ChatModel())
    engine._llm = Stub()
    prompt = Prompt([1, 2, 3], [], None, 0, 64, tool_format="generic", tool_names=("run_python",), tool_schemas=(tool,),
                    max_calls=1)
    out = list(engine.stream(prompt, threading.Event()))
    text = "".join(item.text for item in out if isinstance(item, Token))
    assert text == 'Let me run it.\n<tool_call>{"name": "run_python", "arguments": {"code": "1"}}</tool_call>'
    (_first, _), (second_tokens, second_sampling) = calls
    assert second_tokens == [1, 2, 3, len(b"Let me run it.\n<tool_call>")]  # the prompt and the text so far
    assert second_sampling.json_schema["properties"]["name"] == {"const": "run_python"}
    assert isinstance(out[-1], Finish) and out[-1].completion_tokens == 3 + 2  # the first pass stopped at the opener
    parsed = parse("generic", [text])
    assert parsed == ["Let me run it.\n", ParsedCall("run_python", '{"code":"1"}')]


def test_a_calls_arguments_are_parsed_once_where_it_is_made_and_one_rule_reads_any_writers():
    """ParsedCall and ToolCallMade compare without `args`, so the other tests cannot see them:
    the parsed object travels with the text (the chat tools and PKC Mark read it), and text that
    is no JSON object reads as {} wherever it comes from (a remote server, a client's history)."""
    text = '<tool_call>{"name": "search_documents", "arguments": "{\\"query\\": \\"연차\\", \\"k\\": 3}"}</tool_call>'
    (call,) = [item for item in parse("generic", [text]) if isinstance(item, ParsedCall)]
    assert call.arguments == '{"query":"연차","k":3}' and call.args == {"query": "연차", "k": 3}
    calls = ToolCalls(Prompt([1], [], None, 0, 16, tool_format="generic", tool_names=NAMES, max_calls=1))
    (made,) = [e for e in [*calls.feed(text), *calls.finish()] if isinstance(e, ToolCallMade)]
    assert made.args == {"query": "연차", "k": 3} and made.arguments == call.arguments
    assert arguments_object('{"a": [1]}') == {"a": [1]} and arguments_object({"b": 2}) == {"b": 2}
    assert arguments_object("[1, 2]") == {} and arguments_object("not json") == {} and arguments_object("") == {}
