"""Fake engines for slot, queue and HTTP tests. Real engines have their own tests."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from core.contracts import ChatInput, Finish, Prompt, Sampling, refuse_images
from core.errors import ModelLoadError
from core.events import Token
from models.context_window import system_with_memories
from settings import ChatModel

GIB = 1 << 30


class FakeEngine:
    """A heavy model with controllable load time, size and failures; records what happened."""

    accepts_images = False

    def __init__(self, name: str, log: list[str] | None = None, load_seconds: float = 0.0, vram: int = GIB) -> None:
        self.name = name
        self.cfg = ChatModel()  # declared by every engine; a fake's settings are the defaults
        self.log = log if log is not None else []
        self.load_seconds = load_seconds
        self.vram = vram
        self.fail_loads = 0  # the next N loads fail
        self.fail_oom = False  # ... and look like out-of-memory
        self.shrinks_left = 1
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def model_label(self) -> str:
        return f"fake-{self.name}"

    def check_files(self) -> None:
        pass

    def load(self, progress: Callable[[float], None] | None = None) -> None:
        self.log.append(f"load {self.name}")
        for step in range(1, 5):
            time.sleep(self.load_seconds / 4)
            if progress:
                progress(step / 4)
        if self.fail_loads:
            self.fail_loads -= 1
            raise ModelLoadError(f"{self.name} failed to load", oom=self.fail_oom)
        self._loaded = True

    def unload(self) -> None:
        self.log.append(f"unload {self.name}")
        self._loaded = False

    def estimate_vram(self) -> int:
        return self.vram

    def shrink_context(self) -> bool:
        if self.shrinks_left <= 0:
            return False
        self.shrinks_left -= 1
        self.log.append(f"shrink {self.name}")
        return True


class FakeChatEngine(FakeEngine):
    """Answers with scripted tokens, one every `token_seconds`."""

    def __init__(self, replies: list[list[str]] | None = None, token_seconds: float = 0.0, name: str = "chat") -> None:
        super().__init__(name)
        self.replies = list(replies or [])
        self.token_seconds = token_seconds
        self.prompts: list[list[dict]] = []
        self.samplings: list[Sampling] = []

    model_label = "fake-chat"  # type: ignore[assignment]
    system_prompt = "You are a test double."
    accepts_images = False

    def enqueue(self, tokens: list[str]) -> None:
        self.replies.append(tokens)

    def prepare(self, request: ChatInput) -> Prompt:
        if request.images and not self.accepts_images:
            raise refuse_images(self.name)
        history = [{k: v for k, v in turn.items() if k in ("role", "content", "tool_calls", "tool_call_id")}
                   for turn in request.history]
        new = [{"role": "user", "content": request.message}] if request.message else []
        system = system_with_memories(request, self.system_prompt)  # the system prompt, then the memories
        self.prompts.append([{"role": "system", "content": system}, *history, *new])
        self.samplings.append(request.sampling)
        plan = request.tool_plan  # a model without tools in its template: the generic <tool_call> format
        calls = plan is not None and plan.choice != "none"
        return Prompt(tokens=[1, 2, 3], stop=[], stopping_criteria=None, dropped_messages=0, max_new_tokens=64,
                      sampling=request.sampling, tool_format="generic" if calls else None,
                      tool_names=tuple(plan.names) if calls else (), max_calls=plan.max_calls if calls else 0)

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


class FakeImageEngine(FakeEngine):
    """A text-to-image double for route, gallery and disconnect tests: one flat-colour picture
    per seed (so a seed reproduces it), `step_seconds` per sampling step."""

    def __init__(self, cfg, step_seconds: float = 0.0, name: str = "image") -> None:
        from models.image_families import family_defaults, guess_family

        super().__init__(name)
        self.cfg = cfg
        self.family = guess_family(cfg)
        self.defaults = family_defaults(cfg)
        self.step_seconds = step_seconds
        self.requests: list = []  # the GenerationParams it was asked for

    def generate(self, params, init_image, emit, stop: threading.Event) -> None:
        from PIL import Image

        from core.contracts import Picture, Step

        self.requests.append(params)
        for index in range(params.batch_count):
            if stop.is_set():
                return
            for step in range(1, params.steps + 1):
                time.sleep(self.step_seconds)
                emit(Step(index, step, params.steps))
            seed = params.seed + index
            colour = (seed % 256, seed // 256 % 256, seed // 65536 % 256)
            emit(Picture(index, seed, Image.new("RGB", (params.width, params.height), colour), {"total": 0.0}))
