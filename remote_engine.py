"""A role served by an OpenAI-compatible server instead of a local file, for when one PC is not
enough: the chat model on vLLM, SGLang, a llama.cpp server or Ollama on a bigger machine.

`RemoteChatEngine` keeps the chat contract (engine_contracts.ChatEngine), so the turn runner,
the events and the page are the same; it takes no VRAM here. The slot hands it out through a
`RemoteLease`: no swap, no budget, only the role's own concurrency limit. Stop closes the
upstream request; an upstream that is down or fails mid-answer is a clear error naming the
URL and the setting, never a silent fallback to a local model.
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

from engine_contracts import DEFAULT_SAMPLING, Sampling
from errors import AppError, SlotBusy
from events import Queued, Ready, SlotEvent, Token
from llm_engine import Finish
from settings import ChatModel

FINISH = {"stop": "done", "length": "trimmed"}


@dataclass(frozen=True)
class RemotePrompt:
    messages: list[dict]
    max_new_tokens: int
    sampling: Sampling = DEFAULT_SAMPLING
    dropped_messages: int = 0
    tokens: list[int] = field(default_factory=list)  # counted by the remote server, reported at the end
    cached_tokens: int = 0


def remote_error(message: str, setting: str, status: int = 502, code: str = "remote_backend_failed") -> AppError:
    return AppError(f"{message}. Check {setting}", code=code, status=status)


class RemoteChatEngine:
    """The chat contract over an OpenAI-compatible /chat/completions."""

    def __init__(self, cfg: ChatModel, name: str = "chat", setting_prefix: str = "AIONE_CHAT") -> None:
        self.cfg, self.name = cfg, name
        self.setting = f"{setting_prefix}__BASE_URL"
        self.base_url = (cfg.base_url or "").rstrip("/")
        self.concurrency = cfg.remote_concurrency

    # ---- the slot's side: nothing to load here ------------------------------------------------
    loaded = True

    @property
    def model_label(self) -> str:
        return f"{self.cfg.remote_model or 'remote'} @ {urlparse(self.base_url).netloc}"

    @property
    def system_prompt(self) -> str:
        return self.cfg.system_prompt

    def check_files(self) -> None:
        url = urlparse(self.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise AppError(f"{self.setting}={self.base_url!r} is not an http(s) URL", code="model_missing", status=503)

    def load(self, progress: Callable[[float], None] | None = None) -> None:
        pass

    def unload(self) -> None:
        pass

    def estimate_vram(self) -> int:
        return 0

    def shrink_context(self) -> bool:
        return False

    # ---- prompt and generation ----------------------------------------------------------------
    def prepare(self, system_prompt: str, history: list[dict], message: str, session_id: str | None = None,
                sampling: Sampling = DEFAULT_SAMPLING) -> RemotePrompt:
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": turn["role"], "content": turn["content"]} for turn in history] + [
            {"role": "user", "content": message}]
        return RemotePrompt(messages, sampling.max_tokens or self.cfg.max_tokens, sampling)

    def _body(self, prompt: RemotePrompt) -> dict:
        cfg, sampling = self.cfg, prompt.sampling
        body = {"messages": prompt.messages, "stream": True, "stream_options": {"include_usage": True},
                "max_tokens": prompt.max_new_tokens,
                "temperature": cfg.temperature if sampling.temperature is None else sampling.temperature,
                "top_p": cfg.top_p if sampling.top_p is None else sampling.top_p}
        seed = sampling.seed if sampling.seed is not None else cfg.seed
        if cfg.remote_model:
            body["model"] = cfg.remote_model
        if seed >= 0:
            body["seed"] = seed
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.json_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer",
                                                                            "schema": sampling.json_schema}}
        elif sampling.json_object:
            body["response_format"] = {"type": "json_object"}
        return body

    def stream(self, prompt: RemotePrompt, stop: threading.Event) -> Iterator[Token | Finish]:
        """Tokens as the remote server streams them; Stop closes the request."""
        import httpx

        headers = {"Accept": "text/event-stream"}
        if self.cfg.api_key is not None:
            headers["Authorization"] = f"Bearer {self.cfg.api_key.get_secret_value()}"
        reason, usage, sent = "done", {}, 0
        timeout = httpx.Timeout(self.cfg.remote_timeout_s, connect=10.0)
        try:
            with httpx.Client(timeout=timeout) as client, client.stream(
                    "POST", f"{self.base_url}/chat/completions", json=self._body(prompt), headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise remote_error(f"the remote backend at {self.base_url} refused the request "
                                       f"({response.status_code}: {_upstream_message(response)})", self.setting)
                for line in response.iter_lines():
                    if stop.is_set():
                        reason = "stopped"
                        break  # leaving the block closes the upstream request
                    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                        continue
                    chunk = json.loads(line[5:])
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            sent += 1
                            yield Token(text)
                        if choice.get("finish_reason"):
                            reason = FINISH.get(choice["finish_reason"], "done")
        except httpx.ConnectError as exc:
            raise remote_error(f"the remote backend at {self.base_url} cannot be reached ({exc})", self.setting,
                               status=503, code="remote_backend_unreachable") from exc
        except (httpx.TransportError, json.JSONDecodeError) as exc:
            raise remote_error(f"the remote backend at {self.base_url} stopped mid-answer "
                               f"({type(exc).__name__}: {exc})", self.setting) from exc
        yield Finish(reason, usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or sent)


def _upstream_message(response) -> str:
    try:
        error = response.json().get("error")
        return str(error.get("message") if isinstance(error, dict) else error)[:300]
    except Exception:
        return response.text[:300]


class RemoteGate:
    """A remote role's own concurrency limit, with a bounded queue."""

    def __init__(self, concurrency: int, queue_limit: int) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.queue_limit = queue_limit
        self.waiting = 0
        self.running = 0


class RemoteLease:
    """The slot's lease for a remote role: the same interface as vram_guard.Lease."""

    def __init__(self, engine: RemoteChatEngine, gate: RemoteGate) -> None:
        self._engine, self._gate = engine, gate
        self.engine_name = engine.name
        self._enqueued = self._granted = False

    async def __aenter__(self) -> RemoteLease:
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.release()

    def enqueue(self) -> None:
        if self._enqueued:
            return
        gate = self._gate
        if gate.semaphore.locked() and gate.waiting >= gate.queue_limit:
            raise SlotBusy(f"{gate.waiting} requests already wait for {self.engine_name}; try again shortly",
                           retry_after=1.0)
        gate.waiting += 1
        self._enqueued = True

    def release(self) -> None:
        if self._granted:
            self._granted = False
            self._gate.running -= 1
            self._gate.semaphore.release()
        elif self._enqueued:
            self._gate.waiting -= 1
        self._enqueued = False

    @property
    def engine(self) -> RemoteChatEngine:
        if not self._granted:
            raise AppError("the remote backend was not acquired", code="slot_not_acquired", status=500)
        return self._engine

    async def acquire(self) -> AsyncIterator[SlotEvent]:
        self.enqueue()
        if self._gate.semaphore.locked():
            yield Queued(self._gate.waiting, 0.0)
        await self._gate.semaphore.acquire()
        self._gate.waiting -= 1
        self._gate.running += 1
        self._granted = True
        yield Ready(self.engine_name)
