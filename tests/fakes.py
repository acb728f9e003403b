"""Fake engines for slot, queue and HTTP tests. Real engines have their own tests."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from errors import ModelLoadError
from llm_engine import Finish, Prompt, Token


class FakeEngine:
    """A heavy model with controllable load time and failures; records what happened."""

    def __init__(self, name: str, log: list[str] | None = None, load_seconds: float = 0.0) -> None:
        self.name = name
        self.log = log if log is not None else []
        self.load_seconds = load_seconds
        self.fail_next_load = False
        self._loaded = False
        self.gate: threading.Event | None = None  # when set, load() waits for it

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self.log.append(f"load {self.name}")
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.load_seconds)
        if self.fail_next_load:
            self.fail_next_load = False
            raise ModelLoadError(f"{self.name} failed to load")
        self._loaded = True

    def unload(self) -> None:
        self.log.append(f"unload {self.name}")
        self._loaded = False

    def estimate_vram(self) -> int:
        return 1 << 30


class FakeChatEngine(FakeEngine):
    """Answers with scripted tokens, one every `token_seconds`."""

    def __init__(self, replies: list[list[str]] | None = None, token_seconds: float = 0.0) -> None:
        super().__init__("chat")
        self.replies = list(replies or [])
        self.token_seconds = token_seconds
        self.prompts: list[list[dict]] = []

    model_label = "fake-chat"

    def enqueue(self, tokens: list[str]) -> None:
        self.replies.append(tokens)

    def check_files(self) -> None:
        pass

    def prepare(self, system_prompt: str, history: list[dict], message: str) -> Prompt:
        self.prompts.append([{"role": "system", "content": system_prompt}, *history, {"role": "user", "content": message}])
        return Prompt(tokens=[1, 2, 3], stop=[], stopping_criteria=None, dropped_messages=0, max_new_tokens=64)

    def stream(self, prompt: Prompt, stop: threading.Event) -> Iterator[Token | Finish]:
        tokens = self.replies.pop(0) if self.replies else ["ok"]
        sent = 0
        for text in tokens:
            if stop.is_set():
                break
            time.sleep(self.token_seconds)
            sent += 1
            yield Token(text)
        yield Finish("stopped" if stop.is_set() else "done", len(prompt.tokens), sent)
