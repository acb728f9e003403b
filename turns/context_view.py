"""What the model sees: the parts the next turn's prompt will hold for a conversation's branch
(GET /api/sessions/{id}/context), with token counts from the chat model's own tokenizer. The
same window rule as the chat engine (models/context_window.py): a window that would overflow
at the next turn is shown as it will be, after its block has dropped."""
from __future__ import annotations

from dataclasses import replace

from core.contracts import Window
from models.context_window import extractive, fit_window, with_summary
from models.vocab import template_counter
from turns.context_memory import ConversationWindows


def context_view(windows_conversation, cfg, n_ctx: int) -> dict:
    """Blocking (tokenizes): the view of `conversation` (turns.context_memory.Conversation) for
    a chat model with settings `cfg` (settings.ChatModel) at context `n_ctx`."""
    conversation = windows_conversation
    counter = template_counter(cfg.model_path)
    history, ids, window = conversation.history, conversation.ids, conversation.window
    budget = n_ctx - min(cfg.max_tokens, n_ctx // 4)
    system = cfg.system_prompt

    def head(w: Window) -> list[dict]:
        content = with_summary(system, w)
        return [{"role": "system", "content": content}] if content else []

    def count(start: int) -> int:
        return counter.messages(head(window) + [{"role": m["role"], "content": m["content"]} for m in history[start:]])

    fitted = fit_window(history, window, budget, count)
    summary_kind = (conversation.summary or {}).get("kind")
    if fitted.dropped is not None:
        window = replace(window, start=fitted.start, summary=extractive(
            window.summary, history[fitted.dropped[0]:fitted.dropped[1]], window.summary_chars, counter.text,
            budget // 4))
        fitted = fit_window(history, window, budget, count)
        summary_kind = "extractive"
    # Each part's tokens as what it adds to the rendered prompt: the parts add up to used_tokens.
    plain = [{"role": m["role"], "content": m["content"]} for m in history[fitted.start:]]
    system_only = counter.messages(head(replace(window, summary=""))) if system else 0
    with_head = counter.messages(head(window)) if (system or window.summary) else 0
    parts: list[dict] = [{"kind": "system", "tokens": system_only, "text": system}] if system else []
    if window.summary:
        parts.append({"kind": "summary", "tokens": with_head - system_only, "text": window.summary,
                      "label": window.summary_label, "summary_kind": summary_kind,
                      "through_turn_id": ids[fitted.start - 1] if fitted.start else None})
    before = with_head
    for at, turn_id in enumerate(ids[fitted.start:]):
        now = counter.messages(head(window) + plain[:at + 1])
        parts.append({"kind": "turn", "role": plain[at]["role"], "turn_id": turn_id, "tokens": now - before})
        before = now
    first = ids[fitted.start] if fitted.start < len(ids) else None
    return {"n_ctx": n_ctx, "budget": budget, "parts": parts, "used_tokens": count(fitted.start),
            "window_first_turn_id": first, "summarized_turns": fitted.start}


async def conversation_for(windows: ConversationWindows, sessions, session_id: str, turn_id: int | None):
    history = await sessions.history(session_id, leaf=turn_id)
    return await windows.conversation(session_id, history)
