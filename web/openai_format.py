"""The OpenAI-compatible API's side of a request: what clients send (validated), the stateless
work the turn runner does for them, and the second encoder of the same typed events (the
page's is web/sse.py): `chat.completion` / `chat.completion.chunk`, and OpenAI's error shape.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.contracts import Sampling
from core.events import ChatDone, Error, Event, Token, ToolCallMade


def is_openai_path(path: str) -> bool:
    """A request of the OpenAI-compatible API: its errors are in OpenAI's shape."""
    return path.startswith("/v1/")


# Our error codes as OpenAI clients know them: (HTTP status, error type, OpenAI code).
ERRORS: dict[str, tuple[int, str, str | None]] = {
    "context_overflow": (400, "invalid_request_error", "context_length_exceeded"),
    "context_length_exceeded": (400, "invalid_request_error", "context_length_exceeded"),
    "unknown_model": (404, "invalid_request_error", "model_not_found"),
    "model_not_found": (404, "invalid_request_error", "model_not_found"),
    "queue_full": (429, "rate_limit_exceeded", "rate_limit_exceeded"),
    "auth_required": (401, "invalid_request_error", "invalid_api_key"),
    "too_many_failures": (429, "rate_limit_exceeded", "rate_limit_exceeded"),
}
FINISH = {"done": "stop", "trimmed": "length", "stopped": "stop", "tool_calls": "tool_calls"}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: dict | None = None  # {"url": "data:image/png;base64,..."}


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")  # name ...: accepted, not used
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list | None = None  # an assistant's calls (web/openai_tools.py checks them)
    tool_call_id: str | None = None  # a tool message: the call it answers


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict | None = None  # {"name", "schema", "strict"}


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())  # clients send more than we use
    model: str = "chat"
    messages: list[Message] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: dict | None = None
    max_tokens: int | None = Field(None, ge=1, le=131_072)
    max_completion_tokens: int | None = Field(None, ge=1, le=131_072)
    temperature: float | None = Field(None, ge=0, le=5)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1)
    response_format: ResponseFormat | None = None
    tools: list | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None

    def sampling(self) -> Sampling:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        schema = None
        if self.response_format is not None and self.response_format.type == "json_schema":
            schema = (self.response_format.json_schema or {}).get("schema") or {"type": "object"}
        return Sampling(max_tokens=self.max_completion_tokens or self.max_tokens, temperature=self.temperature,
                        top_p=self.top_p, seed=self.seed, stop=tuple(stop[:8]), json_schema=schema,
                        json_object=self.response_format is not None and self.response_format.type == "json_object")


def text_of(message: Message) -> str:
    if isinstance(message.content, list):
        return "\n".join(part.text or "" for part in message.content if part.type == "text")
    return message.content or ""


def image_urls(message: Message) -> list[str]:
    if not isinstance(message.content, list):
        return []
    return [str((part.image_url or {}).get("url", "")) for part in message.content if part.type == "image_url"]


# ---- the encoder: events -> OpenAI objects ------------------------------------------------------
def error_body(error: Error, param: str | None = None) -> tuple[int, dict]:
    """(status, {"error": {message, type, param, code}}) for one of our errors: the one mapper
    for every /v1 error (routes, exception handlers, the access checks). Invalid input is 400 as
    OpenAI answers it (we say 422 elsewhere); any 401 is OpenAI's invalid_api_key."""
    status = 400 if error.status == 422 else error.status if error.status >= 400 else 500
    default = (status, "invalid_request_error" if 400 <= status < 500 else "server_error",
               "invalid_api_key" if status == 401 else error.code)
    status, kind, code = ERRORS.get(error.code, default)
    return status, {"error": {"message": error.message, "type": kind, "param": param, "code": code}}


class CompletionEncoder:
    """One chat completion's chunks (streamed) or object (not streamed), from the runner's events."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model, self.include_usage = model, include_usage
        self.started = False
        self.text: list[str] = []
        self.calls: list[dict] = []
        self.done: ChatDone | None = None

    def _chunk(self, delta: dict, finish: str | None = None) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    def usage(self) -> dict | None:
        if self.done is None:
            return None
        prompt, completion = self.done.usage.prompt_tokens or 0, self.done.usage.completion_tokens or 0
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def chunks(self, event: Event) -> list[dict]:
        """The stream's chunks for one event (most events say nothing to an OpenAI client)."""
        if isinstance(event, Token):
            self.text.append(event.text)
            first = [] if self.started else [self._chunk({"role": "assistant", "content": ""})]
            self.started = True
            return first + [self._chunk({"content": event.text})]
        if isinstance(event, ToolCallMade):
            call = {"id": event.id, "type": "function", "function": {"name": event.name, "arguments": event.arguments}}
            self.calls.append(call)
            first = [] if self.started else [self._chunk({"role": "assistant", "content": None})]
            self.started = True
            return first + [self._chunk({"tool_calls": [{"index": event.index, **call}]})]
        if isinstance(event, ChatDone):
            self.done = event
            first = [] if self.started else [self._chunk({"role": "assistant", "content": ""})]
            self.started = True
            last = [self._chunk({}, FINISH.get(event.finish_reason, "stop"))]
            if self.include_usage:
                last.append({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                             "model": self.model, "choices": [], "usage": self.usage()})
            return first + last
        return []

    def completion(self) -> dict:
        finish = FINISH.get(self.done.finish_reason, "stop") if self.done else "stop"
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": self._message(), "logprobs": None, "finish_reason": finish}],
                "usage": self.usage()}


    def _message(self) -> dict:
        text = "".join(self.text)
        if not self.calls:
            return {"role": "assistant", "content": text}
        return {"role": "assistant", "content": text or None, "tool_calls": self.calls}


def sse(data: dict | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n".encode()
