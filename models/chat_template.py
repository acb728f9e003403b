"""A GGUF's own chat template and tokenizer: the prompt rendered and tokenized exactly as the chat
engine does it, and token counts without the weights (llama.cpp loads the vocabulary only:
milliseconds, no memory to speak of) for showing what a conversation's context holds while the
model itself is busy or not loaded."""
from __future__ import annotations

import atexit
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any


def template_formatter(llm: Any) -> Any:
    """llama-cpp-python's formatter for the template in the GGUF's metadata, or None without one."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    eos_id, bos_id = llm.token_eos(), llm.token_bos()
    eos = llm._model.token_get_text(eos_id) if eos_id != -1 else ""
    bos = llm._model.token_get_text(bos_id) if bos_id != -1 else ""
    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id])


def tokenize_chat(llm: Any, formatter: Any, messages: list[dict[str, Any]], **extra: Any) -> tuple[list[int], Any]:
    """(tokens, the formatter's answer) of the rendered conversation."""
    rendered = formatter(messages=messages, **extra)
    tokens = llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)
    return tokens, rendered


class TemplateCounter:
    """Token counts of a model file's tokenizer and template, from its vocabulary alone."""

    def __init__(self, path: Path) -> None:
        from llama_cpp import Llama

        self._lock = threading.Lock()
        self._llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        atexit.register(self._llm.close)  # its finalizer would fail at interpreter exit
        self._formatter = template_formatter(self._llm)

    def text(self, text: str) -> int:
        with self._lock:
            return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def messages(self, messages: list[dict[str, Any]]) -> int:
        """The rendered prompt's tokens, as the chat engine renders it."""
        if self._formatter is None:
            return sum(self.text(m.get("content") or "") + 4 for m in messages)
        with self._lock:
            return len(tokenize_chat(self._llm, self._formatter, messages)[0])


@lru_cache(maxsize=4)
def counter_for(path: Path, size: int, mtime: float) -> TemplateCounter:
    """One counter per model file (its size and time: a replaced file gets a new one)."""
    return TemplateCounter(path)


def template_counter(path: Path) -> TemplateCounter:
    stat = path.stat()
    return counter_for(path, stat.st_size, stat.st_mtime)
