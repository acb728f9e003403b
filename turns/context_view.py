"""What the model sees: the parts the next turn's prompt will hold for a conversation's branch
(GET /api/sessions/{id}/context), with token counts from the chat model's own tokenizer. The
same window rule as the chat engine (models/context_window.py, the same functions): a window
that would overflow at the next turn is shown as it will be, after its block has dropped."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.contracts import Window
from models.chat_template import TemplateCounter, template_counter
from models.context_window import fit_window, memory_text, summarise_drop, with_summary
from settings import ChatModel
from store.sessions import SessionStore
from turns.context_memory import Conversation, ConversationWindows


class _CountingRenderer:
    """models.context_window.Renderer over the vocabulary-only counter (the new message unknown)."""

    def __init__(self, counter: TemplateCounter, system: str, history: list[dict[str, Any]], window: Window,
                 memory: str = "") -> None:
        self.counter, self.system, self.window, self.memory = counter, system, window, memory
        self.plain = [{"role": m["role"], "content": m["content"]} for m in history]

    def set_window(self, window: Window) -> None:
        self.window = window

    def head(self, window: Window | None = None, memory: bool = True) -> list[dict[str, Any]]:
        content = with_summary(self.system, window or self.window, self.memory if memory else "")
        return [{"role": "system", "content": content}] if content else []

    def count(self, start: int) -> int:
        return self.counter.messages(self.head() + self.plain[start:])


def context_view(conversation: Conversation, cfg: ChatModel, n_ctx: int) -> dict[str, Any]:
    """Blocking (tokenizes): the view of `conversation` for a chat model with settings `cfg`
    (settings.ChatModel) at context `n_ctx`."""
    assert cfg.model_path is not None  # the route answers 409 for a chat model without a file
    counter = template_counter(cfg.model_path)
    history, ids = conversation.history, conversation.ids
    budget = n_ctx - min(cfg.max_tokens, n_ctx // 4)
    system = cfg.system_prompt if conversation.system_prompt is None else conversation.system_prompt
    memory, kept = memory_text(conversation.memory, counter.text)
    render = _CountingRenderer(counter, system, history, conversation.window, memory)
    fitted = fit_window(history, render.window, budget, render.count)
    summary_kind = (conversation.summary or {}).get("kind")
    if fitted.dropped is not None:
        fitted = summarise_drop(history, render, fitted, budget, counter.text)
        summary_kind = "extractive"
    window, start = render.window, fitted.start
    # Each part's tokens as what it adds to the rendered prompt: the parts add up to used_tokens.
    bare = replace(window, summary="")
    system_only = counter.messages(render.head(bare, memory=False)) if system else 0
    with_memory = counter.messages(render.head(bare)) if system or memory else 0
    before = counter.messages(render.head()) if render.head() else 0
    parts: list[dict[str, Any]] = [{"kind": "system", "tokens": system_only, "text": system}] if system else []
    if memory and conversation.memory is not None:
        parts.append({"kind": "memory", "tokens": with_memory - system_only, "label": conversation.memory.label,
                      "text": memory, "memories": list(conversation.memory.lines[:kept])})
    if window.summary:
        parts.append({"kind": "summary", "tokens": before - with_memory, "text": window.summary,
                      "label": window.summary_label, "summary_kind": summary_kind,
                      "through_turn_id": ids[start - 1] if start else None})
    for at, turn_id in enumerate(ids[start:]):
        now = counter.messages(render.head() + render.plain[start:start + at + 1])
        parts.append({"kind": "turn", "role": render.plain[start + at]["role"], "turn_id": turn_id, "tokens": now - before})
        before = now
    return {"n_ctx": n_ctx, "budget": budget, "parts": parts, "used_tokens": fitted.tokens,
            "window_first_turn_id": ids[start] if start < len(ids) else None, "summarized_turns": start}


async def conversation_for(windows: ConversationWindows, sessions: SessionStore, session_id: str,
                           turn_id: int | None) -> Conversation:
    history = await sessions.history(session_id, leaf=turn_id)
    return await windows.conversation(session_id, history)
