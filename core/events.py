"""The typed events of a request, in one place.

The slot (queue, swaps) and the turn runner (chat, image generation) yield these; only the
web layer turns them into a wire format: `web/sse.py` into the page's `data: {...}`
frames. A second encoder (the OpenAI-compatible API) reads the same events.

    SessionStarted -> [TurnSaved] -> [MemorySaved] -> [ImagesStored] -> [Sources | NoDocumentsMatched]
      -> Queued* -> Unloading* -> Loading* -> Retrying* -> Ready
      -> [HistoryTrimmed] -> Generating -> (Token* | (StepProgress* PictureMade)*)
      -> ChatDone | PicturesDone | Error
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import AppError, storage_error


@dataclass(frozen=True)
class SessionStarted:
    session_id: str


@dataclass(frozen=True)
class TurnSaved:
    """The request's turn is saved: {"id", "role", "parent_id", "sibling_ids"} (its place in the
    session's tree, so the page can draw it without asking)."""

    turn: dict[str, Any]


@dataclass(frozen=True)
class MemorySaved:
    """The message asked to remember or forget something, and it was done (the page offers undo)."""

    action: str  # added / updated / unchanged / forgotten / not_found
    memory: dict[str, Any] | None
    previous: dict[str, Any] | None = None  # the memory before the change: what undo puts back


@dataclass(frozen=True)
class ImagesStored:
    """Images sent with the request, validated and stored under these ids."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class Sources:
    """The document passages put into the prompt, numbered as the answer cites them."""

    sources: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class NoDocumentsMatched:
    pass


# ---- the slot ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Queued:
    position: int
    eta_s: float


@dataclass(frozen=True)
class Unloading:
    model: str


@dataclass(frozen=True)
class Loading:
    model: str
    progress: float


@dataclass(frozen=True)
class Retrying:
    model: str
    reason: str


@dataclass(frozen=True)
class Ready:
    model: str


SlotEvent = Queued | Unloading | Loading | Retrying | Ready


# ---- generation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryTrimmed:
    dropped: int  # oldest messages left out to fit the context


@dataclass(frozen=True)
class Generating:
    model: str
    images: int | None = None  # image generation: pictures asked for
    steps: int | None = None  # ... and sampling steps each


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class ToolCallMade:
    """The model called a tool (parsed out of its output, never shown as text)."""

    index: int  # 0-based, in this answer
    id: str
    name: str
    arguments: str  # a JSON object, as text (as the model or the server wrote it: what clients get)
    args: Mapping[str, Any] = field(default_factory=dict, compare=False)  # the same, parsed once where it was made


@dataclass(frozen=True)
class ToolConfirm:
    """A tool call waits for the user (running code, unless allowed for the conversation)."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolResult:
    """What a built-in tool gave back to the model (shown as a step of the answer)."""

    call_id: str
    name: str
    ok: bool
    content: str
    for_page: Mapping[str, Any] | None = None  # a page tool's work after the answer ({"draw": prompt})


@dataclass(frozen=True)
class StepProgress:
    step: int
    steps: int
    image: int  # 1-based picture of the batch
    images: int


@dataclass(frozen=True)
class PictureMade:
    id: str
    index: int
    seed: int
    width: int
    height: int
    png: bytes = field(repr=False)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None = None


@dataclass(frozen=True)
class ChatDone:
    turn_id: int | None  # None: not stored (the stateless OpenAI-compatible API)
    finish_reason: str  # done / stopped / trimmed
    model: str
    usage: Usage
    timings: dict[str, Any]  # wait_ms, ttft_ms, tokens_per_s, total_ms
    dropped_turns: int = 0
    answer: dict[str, Any] | None = None  # the saved answer's place in the tree (as TurnSaved.turn)
    question: dict[str, Any] | None = None  # the question's place (after an edit it is a new sibling)
    context: dict[str, Any] | None = None  # {used_tokens, n_ctx, window_first_turn_id, summarized_turns} (local chat models)
    memories_used: tuple[dict[str, Any], ...] = ()  # {"id", "text"}: the memories the prompt held


@dataclass(frozen=True)
class PicturesDone:
    turn_id: int | None
    finish_reason: str
    model: str
    images: tuple[str, ...]
    seeds: tuple[int, ...]
    timings: dict[str, Any]


@dataclass(frozen=True)
class Error:
    code: str
    message: str
    status: int = 500  # what it would be as an HTTP error (the OpenAI encoder uses it)

    @classmethod
    def of(cls, exc: BaseException) -> Error:
        typed = exc if isinstance(exc, AppError) else storage_error(exc)
        if typed is not None:
            return cls(typed.code, typed.message, typed.status)
        return cls("internal_error", f"unexpected error: {type(exc).__name__}: {exc}")


# ---- code runs (sandbox/runs.py): Queued* -> RunStarted -> RunOutput* -> RunFinished ------------
@dataclass(frozen=True)
class RunPicture:
    name: str
    width: int
    height: int
    png: bytes
    image_id: str | None = None  # once stored


@dataclass(frozen=True)
class RunResult:
    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool
    killed: bool
    reason: str | None  # timeout | stopped | output_limit | cpu_time | memory_limit | killed | None
    duration_ms: float
    pictures: tuple[RunPicture, ...] = ()


@dataclass(frozen=True)
class RunStarted:
    run_id: str


@dataclass(frozen=True)
class RunOutput:
    stream: Literal["stdout", "stderr"]
    text: str


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    result: RunResult


Event = (SessionStarted | TurnSaved | MemorySaved | ImagesStored | Sources | NoDocumentsMatched | Queued | Unloading
         | Loading | Retrying | Ready | HistoryTrimmed | Generating | Token | ToolCallMade | ToolConfirm | ToolResult
         | StepProgress | PictureMade | ChatDone | PicturesDone | Error | RunStarted | RunOutput | RunFinished)
