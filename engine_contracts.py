"""What the heavy models promise: the slot's side (`Engine`) and one run contract per kind.

Engines are reached only through the slot's lease (`lease.engine`, typed by the contract the
lease was taken for); nothing else holds one. Run methods are blocking and run in a worker
thread (thread_bridge); they check `stop` between tokens or pictures.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from events import Token
    from image_engine import FamilyDefaults, GenerationParams
    from llm_engine import Finish, Prompt
    from vlm_engine import VisionPrompt


@dataclass(frozen=True)
class Sampling:
    """One request's overrides of the model's sampling settings (None: the setting's value).
    The page sends none; the OpenAI-compatible API passes what the client asked for."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: dict | None = field(default=None, hash=False)  # the answer must match it (llama.cpp grammar)
    json_object: bool = False  # the answer must be a JSON object


DEFAULT_SAMPLING = Sampling()


@runtime_checkable
class Engine(Protocol):
    """What the slot needs from a heavy model."""

    name: str

    @property
    def loaded(self) -> bool: ...

    @property
    def model_label(self) -> str: ...  # the file's name, for the page and the logs

    def check_files(self) -> None: ...  # raises ModelMissing naming the setting; loads nothing

    def load(self, progress: Callable[[float], None] | None = None) -> None: ...  # may raise ModelLoadError

    def unload(self) -> None: ...  # close(), drop references; must not raise

    def estimate_vram(self) -> int: ...  # bytes on the GPU, from the model files and settings

    def shrink_context(self) -> bool: ...  # for the next load after out-of-memory; False if it cannot


@runtime_checkable
class ChatEngine(Engine, Protocol):
    """A chat LLM: a prompt from the history and the message, then tokens."""

    @property
    def system_prompt(self) -> str: ...

    def prepare(self, system_prompt: str, history: list[dict], message: str, session_id: str | None = None,
                sampling: Sampling = DEFAULT_SAMPLING) -> Prompt: ...  # may raise ContextOverflow

    def stream(self, prompt: Prompt, stop: threading.Event) -> Iterator[Token | Finish]: ...


@runtime_checkable
class VisionEngine(Engine, Protocol):
    """A vision LLM: the same, with images (ids of stored images) in the prompt."""

    @property
    def system_prompt(self) -> str: ...

    def prepare(self, system_prompt: str, history: list[dict], message: str, images: Sequence[str],
                sampling: Sampling = DEFAULT_SAMPLING) -> VisionPrompt: ...

    def stream(self, prompt: VisionPrompt, stop: threading.Event) -> Iterator[Token | Finish]: ...


@runtime_checkable
class ImageGenerator(Engine, Protocol):
    """A text-to-image model: emits image_engine.Step per sampling step and Picture per picture."""

    family: str
    defaults: FamilyDefaults

    def generate(self, params: GenerationParams, init_image, emit: Callable[[object], None],
                 stop: threading.Event) -> None: ...
