"""What the heavy models promise, and the values their run methods take and give.

`Engine` is the slot's side (load, unload, estimate); `ChatEngine` (chat and vision models
alike: one `prepare(ChatInput)`, images allowed where `accepts_images`) and `ImageGenerator`
are the run contracts. Engines are reached only through a `SlotLease` (`lease.engine`, typed by
the contract the lease was taken for); nothing else holds one. Run methods are blocking and run
in a worker thread (core/threads.py); they check `stop` between tokens or pictures.
"""
from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from core.errors import AppError
from core.events import SlotEvent, Token
from settings import ChatModel, ImageModel, RemoteRole

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class Sampling:
    """One request's overrides of the model's sampling settings (None: the setting's value).
    The page sends none; the OpenAI-compatible API passes what the client asked for."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = field(default=None, hash=False)  # the answer must match it (llama.cpp grammar)
    json_object: bool = False  # the answer must be a JSON object

    def over(self, temperature: float, top_p: float, seed: int) -> tuple[float, float, int | None]:
        """A model's settings with this request's overrides: temperature, top_p, seed (None: random)."""
        chosen_seed = self.seed if self.seed is not None else seed
        return (temperature if self.temperature is None else self.temperature,
                top_p if self.top_p is None else self.top_p, None if chosen_seed < 0 else chosen_seed)


DEFAULT_SAMPLING = Sampling()


@dataclass(frozen=True)
class ToolPlan:
    """The tools an answer may call (OpenAI function tools, validated by the caller) and how:
    choice "auto" (the model decides), "none", "required" (some call), or a function's name."""

    tools: tuple[dict[str, Any], ...] = field(hash=False)  # {"type": "function", "function": {name, description, parameters}}
    choice: str = "auto"
    parallel: bool = True
    max_calls: int = 4  # per answer: a model that loops is cut off here

    @property
    def names(self) -> list[str]:
        return [tool["function"]["name"] for tool in self.tools]


# ---- what the run methods take and give ------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """How a conversation's history goes into the context (models/context_window.py).

    `start`: where the kept window starts in the history (what comes before is in `summary`,
    or fell out); `overflow`: what happens when the history no longer fits — "window" drops
    old turns in a block down to `low_water` of the history's room (the next turns then reuse
    the cached prefix), "refuse" answers context_length_exceeded (/v1, as OpenAI does)."""

    start: int = 0
    summary: str = ""  # what the prompt holds now
    summary_base: str = ""  # what the next drop extends, when newer than `summary` (the model's, written late)
    summary_label: str = "Summary of the earlier conversation"
    overflow: str = "window"
    low_water: float = 0.5
    headroom: float = 0.0  # share of the room to keep free (the upkeep after an answer drops early)
    summary_chars: int = 600  # longest first-sentence summary written when a block drops


DEFAULT_WINDOW = Window()


@dataclass(frozen=True)
class MemoryPart:
    """What the assistant remembers about the user, for this prompt (memories/): its own part
    after the system prompt and before the summary. Lines past `budget` tokens (the model's own
    tokenizer counts) are left out, the last first."""

    label: str
    lines: tuple[str, ...]
    budget: int = 300


@dataclass(frozen=True)
class ChatInput:
    """One answer to prepare: the conversation so far, the new message and the stored images
    shown with it. Chat and vision models take the same input; a model that cannot see refuses
    images (`ChatEngine.accepts_images`)."""

    history: list[dict[str, Any]]  # earlier messages: {"role", "content", "images"?: stored image ids, "tool_calls"?, ...}
    message: str  # "": none (the history ends with tool results to answer)
    images: tuple[str, ...] = ()  # ids of stored images shown with the message
    system_prompt: str | None = None  # None: the model's own setting; "": none
    session_id: str | None = None  # whose conversation (a chat model keeps its KV cache warm)
    sampling: Sampling = DEFAULT_SAMPLING
    tool_plan: ToolPlan | None = None  # the tools the model is told of, and how it may call them
    window: Window = DEFAULT_WINDOW
    memory: MemoryPart | None = None

    def system_or(self, configured: str) -> str:
        return configured if self.system_prompt is None else self.system_prompt

    def recent(self, keep: int) -> tuple[list[dict[str, Any]], int]:
        """The last `keep` history messages, starting at a user message (a model with a short
        memory for images), and how many were left out."""
        recent = self.history[-keep:] if keep else []
        while recent and recent[0]["role"] != "user":
            recent = recent[1:]
        return recent, len(self.history) - len(recent)


def refuse_images(engine_name: str) -> AppError:
    return AppError(f"{engine_name!r} is not a vision model: it cannot be shown images", code="not_a_vision_model",
                    status=422)


@dataclass(frozen=True)
class Prompt:
    tokens: list[int]
    stop: list[str]
    stopping_criteria: list[Any] | None  # llama_cpp.StoppingCriteriaList: end on the template's EOS token id
    dropped_messages: int  # oldest history messages left out to fit the context (summarised or not)
    max_new_tokens: int
    cached_tokens: int = 0  # prefix already in the KV cache (kept, or restored after a swap)
    sampling: Sampling = DEFAULT_SAMPLING
    tool_format: str | None = None  # how calls appear in the output (tools/syntax.py), None: no tools
    tool_names: tuple[str, ...] = ()
    tool_schemas: tuple[dict[str, Any], ...] = field(default=(), hash=False)  # the tools, for a call's grammar
    max_calls: int = 0
    context: ContextFit | None = None  # what the context holds (local chat models)


@dataclass(frozen=True)
class ContextFit:
    """What a prompt's context holds: the window's start in the history, a block dropped now
    (history[a:b], to be summarised), the prompt's tokens."""

    n_ctx: int
    budget: int  # the prompt's room: n_ctx less the answer's reserve
    start: int
    dropped: tuple[int, int] | None
    prompt_tokens: int
    summary: str = ""  # the summary the prompt holds (a new one when a block dropped now)
    memories: int = 0  # lines of the memory part the prompt holds (the first ones)


@dataclass(frozen=True)
class Finish:
    reason: str  # done / stopped / trimmed
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class VisionPrompt:
    messages: list[dict[str, Any]]
    dropped_messages: int = 0
    tokens: list[int] = field(default_factory=list)  # known only after the images are encoded
    cached_tokens: int = 0
    sampling: Sampling = DEFAULT_SAMPLING


@dataclass(frozen=True)
class FamilyDefaults:
    width: int
    height: int
    steps: int
    cfg_scale: float


@dataclass(frozen=True)
class GenerationParams:
    """One validated request (see turns.pictures.validate_request)."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    cfg_scale: float
    seed: int  # the first picture's; picture i uses seed + i
    sampler: str
    scheduler: str
    batch_count: int
    strength: float | None = None  # img2img only
    init_image_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Step:
    index: int  # which picture of the batch (0-based)
    step: int
    steps: int


@dataclass
class Picture:
    index: int
    seed: int
    image: Image.Image
    timings: dict[str, Any] = field(default_factory=dict)  # seconds: encode, sampling, per_step, decode, total


@dataclass(frozen=True)
class Chunk:
    """A passage of a document, as the RAG engine indexes it."""

    index: int
    text: str
    page: int | None
    ocr: bool = False  # read by OCR from a scan or a picture (the sources say so)


@runtime_checkable
class Engine(Protocol):
    """What the slot needs from a heavy model. Its settings and capabilities are declared here,
    so nobody probes an engine's attributes."""

    name: str
    accepts_images: bool  # a chat input with pictures (vision models); False for the rest

    @property
    def cfg(self) -> RemoteRole: ...  # its settings: ChatModel, VisionModel or ImageModel

    @property
    def loaded(self) -> bool: ...

    @property
    def model_label(self) -> str: ...  # the file's name, for the page and the logs

    def check_files(self) -> None: ...  # raises ModelMissing naming the setting; loads nothing

    def load(self, progress: Callable[[float], None] | None = None) -> None: ...  # may raise ModelLoadError

    def unload(self) -> None: ...  # close(), drop references; must not raise

    def estimate_vram(self) -> int: ...  # bytes on the GPU, from the model files and settings

    def shrink_context(self) -> bool: ...  # for the next load after out-of-memory; False if it cannot


class PreparedPrompt(Protocol):
    """What any chat engine's prepared prompt tells the turn (its engine reads the rest)."""

    dropped_messages: int  # oldest history messages left out to fit
    tokens: list[int]  # the prompt's tokens, where known before generation
    cached_tokens: int  # of those, already in the KV cache


@runtime_checkable
class Reconfigurable(Protocol):
    """A local engine whose settings the model library may change (applied now or at the next load)."""

    def reconfigure(self, cfg: Any) -> None: ...


@runtime_checkable
class PrefixWarmer(Protocol):
    """A local chat engine that can evaluate a prompt into its KV cache without answering (the
    conversation's next prefix, made while the user reads); `should_stop` is polled in small steps."""

    def warm(self, prompt: Any, should_stop: Callable[[], bool]) -> bool: ...


@runtime_checkable
class ChatEngine(Engine, Protocol):
    """A chat or vision LLM: a prompt from the input, then tokens. Capabilities are data:
    `accepts_images` says whether `prepare` takes an input with images (else it refuses)."""

    @property
    def cfg(self) -> ChatModel: ...

    def prepare(self, request: ChatInput) -> PreparedPrompt: ...  # may raise ContextOverflow

    def stream(self, prompt: Any, stop: threading.Event) -> Iterator[Token | Finish]: ...


@runtime_checkable
class ImageGenerator(Engine, Protocol):
    """A text-to-image model: emits image_engine.Step per sampling step and Picture per picture."""

    family: str
    defaults: FamilyDefaults

    @property
    def cfg(self) -> ImageModel: ...

    def generate(self, params: GenerationParams, init_image: Any, emit: Callable[[object], None],
                 stop: threading.Event) -> None: ...


E_co = TypeVar("E_co", bound=Engine, covariant=True)


class SlotLease(Protocol[E_co]):
    """One request's claim on a model, local (the VRAM slot) or remote (another machine's
    concurrency limit): take a place, wait for it (slot events), use `engine`, release."""

    engine_name: str

    def enqueue(self) -> None: ...  # a place in the line now, or a refusal (404 / 429 / 503 / 507)

    def acquire(self, reload: bool = False) -> AsyncGenerator[SlotEvent, None]: ...  # Queued / ... / Ready

    def check_files(self) -> None: ...  # the leased engine's files are there (raises ModelMissing)

    @property
    def engine(self) -> E_co: ...  # once acquired

    def release(self) -> None: ...  # idempotent, safe in any finally

    def start_swap(self) -> None: ...  # granted: load the model now, while the request does its own work

    async def __aenter__(self) -> SlotLease[E_co]: ...

    async def __aexit__(self, *exc_info: object) -> None: ...
