"""Conversations out, for keeping and for fine-tuning, and the full record back in.

Pure functions over sessions as `conversations.archive.export_sessions` gives them (a
session with its whole turn tree). Formats:
- `json`: the full record (import reads it back);
- `markdown`: readable, the active branch;
- `openai`: SFT JSONL, {"messages": [...]} per conversation path;
- `sharegpt`: {"conversations": [{"from", "value"}]} per path;
- `dpo`: TRL's conversational preference pairs {"prompt", "chosen", "rejected"};
- `openai-dpo`: {"input": {"messages"}, "preferred_output", "non_preferred_output"}.
Pairs come from sibling answers to one question: ratings decide first (👍 > unrated > 👎);
between unrated siblings the one kept on the active branch beats those regenerated away.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

EXPORT_FORMAT, EXPORT_VERSION = "pkc-aione-export", 1
FORMATS = ("json", "markdown", "openai", "sharegpt", "dpo", "openai-dpo")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}


def line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


# ---- paths through a session's tree --------------------------------------------------------------
def _usable(turn: dict) -> bool:
    """A chat turn with text; failed answers and image-generation turns are no training data."""
    return turn["kind"] == "chat" and bool(turn["text"].strip()) and turn.get("finish_reason") != "error"


def _children(session: dict) -> dict[int | None, list[dict]]:
    children: dict[int | None, list[dict]] = {}
    for turn in session["turns"]:
        children.setdefault(turn["parent_id"], []).append(turn)
    return children


def _path_to(session: dict, turn_id: int | None) -> list[dict]:
    by_id = {turn["id"]: turn for turn in session["turns"]}
    path = []
    while turn_id is not None and turn_id in by_id:
        path.append(by_id[turn_id])
        turn_id = by_id[turn_id]["parent_id"]
    return path[::-1]


def paths(session: dict, all_branches: bool) -> list[list[dict]]:
    """The active branch, or every root-to-leaf path."""
    if not all_branches:
        return [_path_to(session, session["active_leaf"])] if session["turns"] else []
    children = _children(session)
    return [_path_to(session, turn["id"]) for turn in session["turns"] if turn["id"] not in children]


def _rating(turn: dict) -> int:
    return (turn.get("feedback") or {}).get("rating") or 0


def _message(turn: dict, references: list[dict]) -> dict:
    content = turn["text"]
    if references:
        refs = "\n\n".join(f"[{s['n']}] {s['name']}:\n{s['snippet']}" for s in references)
        content = f"{refs}\n\nQuestion: {content}"
    return {"role": turn["role"], "content": content}


def passages(sources: list[dict]) -> list[dict]:
    """The document passages of an answer's sources (its tool steps and memories are kept there too)."""
    return [source for source in sources if source.get("type") is None]


def messages(path: list[dict], system_prompt: str | None, include_context: bool) -> list[dict]:
    """A path as chat messages: usable turns only; with `include_context`, the system prompt and
    each question's references (the passages its answer used)."""
    usable = [turn for turn in path if _usable(turn)]
    result = [{"role": "system", "content": system_prompt}] if include_context and system_prompt else []
    for i, turn in enumerate(usable):
        answer = usable[i + 1] if i + 1 < len(usable) else None
        used = passages(answer.get("sources") or []) \
            if include_context and turn["role"] == "user" and answer else []
        if turn["role"] == "assistant":
            result.extend(_tool_messages(turn))
        result.append(_message(turn, used))
    return result


def _tool_messages(answer: dict) -> list[dict]:
    """The answer's tool steps (kept in its sources) as OpenAI's assistant tool_calls and tool
    messages, before the answer itself: what a model is trained to do with tools."""
    out = []
    for step in (s for s in answer.get("sources") or [] if s.get("type") == "tool"):
        out.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": step["id"], "type": "function", "function": {"name": step["name"], "arguments": step["arguments"]}}]})
        out.append({"role": "tool", "tool_call_id": step["id"], "content": step.get("result", "")})
    return out


def _sharegpt(message: dict) -> dict:
    if message.get("tool_calls"):
        function = message["tool_calls"][0]["function"]
        return {"from": "function_call", "value": json.dumps({"name": function["name"],
                                                              "arguments": json.loads(function["arguments"] or "{}")},
                                                             ensure_ascii=False)}
    return {"from": SHAREGPT_ROLES[message["role"]], "value": message["content"]}


# ---- SFT ---------------------------------------------------------------------------------------
def sft_records(session: dict, fmt: str, all_branches: bool, min_rating: int | None, system_prompt: str | None,
                include_context: bool) -> Iterator[dict]:
    for path in paths(session, all_branches):
        answers = [turn for turn in path if turn["role"] == "assistant" and _usable(turn)]
        if not answers or (min_rating is not None and any(_rating(a) < min_rating for a in answers)):
            continue
        chat = messages(path, system_prompt, include_context)
        if chat and chat[-1]["role"] != "assistant":
            chat = chat[: max(i for i, m in enumerate(chat) if m["role"] == "assistant") + 1]
        if fmt == "openai":
            yield {"messages": chat}
        else:
            yield {"conversations": [_sharegpt(m) for m in chat]}


# ---- preference pairs ---------------------------------------------------------------------------
def _beats(a: dict, b: dict, active: set[int]) -> bool:
    ra, rb = _rating(a), _rating(b)
    if ra != rb:
        return ra > rb
    unrated = not (a.get("feedback") or {}).get("rating") and not (b.get("feedback") or {}).get("rating")
    return unrated and a["id"] in active and b["id"] not in active


def preference_pairs(session: dict, min_rating: int | None) -> Iterator[tuple[list[dict], dict, dict]]:
    """(the path up to the question, chosen answer, rejected answer) for every decided pair."""
    active = {turn["id"] for turn in _path_to(session, session["active_leaf"])}
    for parent, siblings in _children(session).items():
        answers = [t for t in siblings if t["role"] == "assistant" and _usable(t)]
        if parent is None or len(answers) < 2:
            continue
        for chosen in answers:
            if min_rating is not None and _rating(chosen) < min_rating:
                continue
            for rejected in answers:
                if chosen is not rejected and _beats(chosen, rejected, active):
                    yield _path_to(session, parent), chosen, rejected


def dpo_records(session: dict, fmt: str, min_rating: int | None, system_prompt: str | None,
                include_context: bool) -> Iterator[dict]:
    for prompt_path, chosen, rejected in preference_pairs(session, min_rating):
        prompt = messages(prompt_path, system_prompt, include_context)
        good = [{"role": "assistant", "content": chosen["text"]}]
        bad = [{"role": "assistant", "content": rejected["text"]}]
        if fmt == "dpo":
            yield {"prompt": prompt, "chosen": good, "rejected": bad}
        else:
            yield {"input": {"messages": prompt}, "preferred_output": good, "non_preferred_output": bad}


# ---- readable -----------------------------------------------------------------------------------
def markdown(session: dict) -> str:
    lines = [f"# {session['title'] or 'Untitled'}", "", f"- created: {session['created']}",
             f"- updated: {session['updated']}", ""]
    for turn in _path_to(session, session["active_leaf"]):
        who = "**You**" if turn["role"] == "user" else f"**AI-ONE** ({turn.get('model') or 'model'})"
        extra = []
        if turn.get("labels") and turn["labels"].get("emotion"):
            extra.append(f"emotion: {turn['labels']['emotion']}")
        if _rating(turn):
            extra.append("👍" if _rating(turn) > 0 else "👎")
        lines += [f"### {who} · {turn['created']}" + (f" · {' · '.join(extra)}" if extra else ""), ""]
        lines += [turn["text"] or ("(images)" if turn.get("images") else "(empty)"), ""]
        for image_id in turn.get("images") or []:
            lines.append(f"![image](images/{image_id}.png)")
        for source in passages(turn.get("sources") or []):
            lines.append(f"> [{source['n']}] {source['name']}" + (f" p.{source['page']}" if source.get("page") else ""))
        lines.append("")
    return "\n".join(lines)


def markdown_name(session: dict) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in (session["title"] or "untitled"))[:60].strip()
    return f"{session['created'][:10]} {safe or 'untitled'} {session['id'][:8]}.md"
