"""A role served by an OpenAI-compatible server instead of a local file, for when one PC is not
enough: the chat model on vLLM, SGLang, a llama.cpp server or Ollama on a bigger machine.

`RemoteChatEngine` keeps the chat contract (core.contracts.ChatEngine), so the turn runner,
the events and the page are the same; it takes no VRAM here. The slot hands it out through a
`RemoteLease`: no swap, no budget, only the role's own concurrency limit. Stop closes the
upstream request; an upstream that is down or fails mid-answer is a clear error naming the
URL and the setting, never a silent fallback to a local model.
"""
from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlparse

from core.contracts import DEFAULT_SAMPLING, ChatInput, Finish, Sampling, ToolPlan, refuse_images
from core.errors import AppError, SlotBusy
from core.events import Queued, Ready, SlotEvent, Token, ToolCallMade
from models.context_window import system_with_memories
from settings import ChatModel, ImageModel, RemoteRole, VisionModel, env_name
from tools.syntax import arguments_object

if TYPE_CHECKING:
    import httpx

    from core.contracts import GenerationParams

FINISH = {"stop": "done", "length": "trimmed", "tool_calls": "tool_calls"}


@dataclass(frozen=True)
class RemotePrompt:
    messages: list[dict[str, Any]]
    max_new_tokens: int
    sampling: Sampling = DEFAULT_SAMPLING
    dropped_messages: int = 0
    tokens: list[int] = field(default_factory=list)  # counted by the remote server, reported at the end
    cached_tokens: int = 0
    tool_plan: ToolPlan | None = None  # passed through: the remote server parses its model's calls


def remote_error(message: str, setting: str, status: int = 502, code: str = "remote_backend_failed") -> AppError:
    return AppError(f"{message}. Check {setting}", code=code, status=status)


class RemoteModel:
    """What every remote role shares: the slot's side (nothing to load, no VRAM)."""

    accepts_images = False

    def __init__(self, cfg: RemoteRole, name: str = "chat", setting: str = env_name('chat', 'base_url')) -> None:
        self.cfg, self.name = cfg, name
        self.setting = setting  # named in every error, so the user knows what to fix
        self.base_url = (cfg.base_url or "").rstrip("/")
        self.concurrency = cfg.remote_concurrency

    # ---- the slot's side: nothing to load here ------------------------------------------------
    loaded = True

    @property
    def model_label(self) -> str:
        return f"{self.cfg.remote_model or 'remote'} @ {urlparse(self.base_url).netloc}"

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

    @cached_property
    def client(self) -> httpx.Client:
        """One HTTP client per role, kept: its connections (and TLS sessions) are reused across
        requests. httpx clients are thread-safe; every run method works in a worker thread."""
        import httpx

        key = self.cfg.api_key
        return httpx.Client(timeout=httpx.Timeout(self.cfg.remote_timeout_s, connect=10.0),
                            headers={"Authorization": f"Bearer {key.get_secret_value()}"} if key is not None else {})


class RemoteAnswers(RemoteModel):
    """A remote chat or vision role: answers streamed from an OpenAI-compatible /chat/completions."""

    cfg: ChatModel

    def _messages(self, request: ChatInput, history: list[dict[str, Any]],
                  last: dict[str, Any] | None) -> list[dict[str, Any]]:
        system_prompt = system_with_memories(request, self.cfg.system_prompt)
        return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            _openai_message(turn) for turn in history] + ([last] if last else [])

    def _body(self, prompt: RemotePrompt) -> dict[str, Any]:
        cfg, sampling = self.cfg, prompt.sampling
        temperature, top_p, seed = sampling.over(cfg.temperature, cfg.top_p, cfg.seed)
        body = {"messages": prompt.messages, "stream": True, "stream_options": {"include_usage": True},
                "max_tokens": prompt.max_new_tokens, "temperature": temperature, "top_p": top_p}
        if cfg.remote_model:
            body["model"] = cfg.remote_model
        if seed is not None:
            body["seed"] = seed
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.json_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer",
                                                                            "schema": sampling.json_schema}}
        elif sampling.json_object:
            body["response_format"] = {"type": "json_object"}
        plan = prompt.tool_plan
        if plan is not None:
            body["tools"] = list(plan.tools)
            body["tool_choice"] = (plan.choice if plan.choice in ("auto", "none", "required")
                                   else {"type": "function", "function": {"name": plan.choice}})
            body["parallel_tool_calls"] = plan.parallel
        return body

    def stream(self, prompt: RemotePrompt, stop: threading.Event) -> Iterator[Token | ToolCallMade | Finish]:
        """Tokens as the remote server streams them, then its tool calls (their arguments come in
        pieces); Stop closes the request."""
        import httpx

        reason, sent = "done", 0
        usage: dict[str, Any] = {}
        calls: dict[str, Any] = {}
        try:
            with self.client.stream("POST", f"{self.base_url}/chat/completions", json=self._body(prompt),
                                    headers={"Accept": "text/event-stream"}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise remote_error(f"the remote backend at {self.base_url} refused the request "
                                       f"({response.status_code}: {_upstream_message(response)})", self.setting)
                with _closed_on(stop, response):
                    for line in response.iter_lines():
                        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                            continue
                        chunk = json.loads(line[5:])
                        usage = chunk.get("usage") or usage
                        for choice in chunk.get("choices") or []:
                            _gather_calls(calls, (choice.get("delta") or {}).get("tool_calls") or [])
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                sent += 1
                                yield Token(text)
                            if choice.get("finish_reason"):
                                reason = FINISH.get(choice["finish_reason"], "done")
                        if stop.is_set():
                            break
        except httpx.ConnectError as exc:
            raise remote_error(f"the remote backend at {self.base_url} cannot be reached ({exc})", self.setting,
                               status=503, code="remote_backend_unreachable") from exc
        except (httpx.TransportError, httpx.StreamError, json.JSONDecodeError) as exc:
            if not stop.is_set():  # (closing it ourselves on Stop also ends the read this way)
                raise remote_error(f"the remote backend at {self.base_url} stopped mid-answer "
                                   f"({type(exc).__name__}: {exc})", self.setting) from exc
        if stop.is_set():
            reason = "stopped"
        for index, call in enumerate(calls[key] for key in sorted(calls)):
            text = call["arguments"] or "{}"
            yield ToolCallMade(index, call["id"] or f"call_{index}", call["name"], text, arguments_object(text))
        yield Finish(reason, usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or sent)


class RemoteChatEngine(RemoteAnswers):
    """The chat contract (core.contracts.ChatEngine) on a remote server: text only."""

    accepts_images = False

    def prepare(self, request: ChatInput) -> RemotePrompt:
        if request.images:
            raise refuse_images(self.name)
        last = {"role": "user", "content": request.message} if request.message else None
        messages = self._messages(request, request.history, last)
        return RemotePrompt(messages, request.sampling.max_tokens or self.cfg.max_tokens, request.sampling,
                            tool_plan=request.tool_plan)


class RemoteVisionEngine(RemoteAnswers):
    """The chat contract with images on a remote server: the stored images travel as data URLs,
    the history is trimmed and shown as the local vision model's (ChatInput.recent)."""

    accepts_images = True

    def __init__(self, cfg: VisionModel, read_image: Callable[[str], bytes], name: str = "vision") -> None:
        super().__init__(cfg, name, env_name('vision', 'base_url'))
        self.cfg: VisionModel = cfg
        self._read_image = read_image

    def prepare(self, request: ChatInput) -> RemotePrompt:
        recent, dropped = request.recent(self.cfg.history_turns)
        history = [{"role": turn["role"], "content": self._content(turn["content"], turn.get("images") or ())
                    if turn["role"] == "user" else turn["content"]} for turn in recent]
        last = {"role": "user", "content": self._content(request.message, request.images)}
        return RemotePrompt(self._messages(request, history, last),
                            request.sampling.max_tokens or self.cfg.max_tokens, request.sampling, dropped_messages=dropped)

    def _content(self, text: str, images: Sequence[str]) -> str | list[dict[str, Any]]:
        """A message with its stored images as data URLs (the message alone when it has none)."""
        if not images:
            return text
        parts = [{"type": "image_url", "image_url": {
            "url": "data:image/png;base64," + base64.b64encode(self._read_image(image_id)).decode("ascii")}}
            for image_id in images]
        return [*parts, {"type": "text", "text": text}]


class RemoteImageGenerator(RemoteModel):
    """The image contract (core.contracts.ImageGenerator) on a server with
    /images/generations: one request per picture, so Stop acts between pictures."""

    accepts_images = False

    def __init__(self, cfg: ImageModel, name: str = "image") -> None:
        from models.image_families import family_defaults, guess_family

        super().__init__(cfg, name, env_name('image', 'base_url'))
        self.family, self.defaults = guess_family(cfg), family_defaults(cfg)

    def generate(self, params: GenerationParams, init_image: Any, emit: Callable[[object], None],
                 stop: threading.Event) -> None:
        import io
        import time

        import httpx
        from PIL import Image

        from core.contracts import Picture

        if init_image is not None:
            raise AppError("the remote image server takes no input image (img2img): generate without one, or use a "
                           f"local model ({env_name('image', 'model_path')})", code="img2img_unavailable", status=422)
        for index in range(params.batch_count):  # one request per picture, so Stop acts between pictures
            if stop.is_set():
                return
            started, seed = time.perf_counter(), params.seed + index
            body = {"prompt": params.prompt, "n": 1, "size": f"{params.width}x{params.height}",
                    "response_format": "b64_json", "negative_prompt": params.negative_prompt,
                    "steps": params.steps, "cfg_scale": params.cfg_scale, "seed": seed, "sampler": params.sampler,
                    "scheduler": params.scheduler} | ({"model": self.cfg.remote_model} if self.cfg.remote_model else {})
            try:
                response = self.client.post(f"{self.base_url}/images/generations", json=body)
            except httpx.HTTPError as exc:
                raise remote_error(f"the remote image server at {self.base_url} cannot be reached ({exc})",
                                   self.setting, status=503, code="remote_backend_unreachable") from exc
            if response.status_code >= 400:
                raise remote_error(f"the remote image server at {self.base_url} refused the request "
                                   f"({response.status_code}: {_upstream_message(response)})", self.setting)
            png = base64.b64decode(response.json()["data"][0]["b64_json"])
            image = Image.open(io.BytesIO(png)).convert("RGB")
            emit(Picture(index, seed, image, {"total": round(time.perf_counter() - started, 3)}))


def _openai_message(turn: dict[str, Any]) -> dict[str, Any]:
    """A history message as OpenAI servers take it (tool calls and results kept)."""
    message = {"role": turn["role"], "content": turn["content"]}
    if turn.get("tool_calls"):
        message["tool_calls"] = turn["tool_calls"]
    if turn["role"] == "tool":
        message["tool_call_id"] = turn.get("tool_call_id")
    return message


def _gather_calls(calls: dict[str, Any], deltas: list[Any]) -> None:
    """Streamed tool-call pieces, by index: the id and name come once, the arguments in parts."""
    for delta in deltas:
        call = calls.setdefault(delta.get("index", len(calls)), {"id": None, "name": "", "arguments": ""})
        function = delta.get("function") or {}
        call["id"] = delta.get("id") or call["id"]
        call["name"] = call["name"] or function.get("name") or ""  # some servers repeat it in every piece
        call["arguments"] += function.get("arguments") or ""


@contextmanager
def _closed_on(stop: threading.Event, response: httpx.Response) -> Iterator[None]:
    """Close the upstream response the moment Stop is pressed, even while a read waits for it."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if stop.is_set():
                response.close()
                return

    watcher = threading.Thread(target=watch, name="remote-stop", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()


def _upstream_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        return str(error.get("message") if isinstance(error, dict) else error)[:300]
    except Exception:
        return str(response.text[:300])


class RemoteGate:
    """A remote role's own concurrency limit, with a bounded queue."""

    def __init__(self, concurrency: int, queue_limit: int) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.queue_limit = queue_limit
        self.waiting = 0
        self.running = 0


class RemoteLease:
    """The slot's lease for a remote role (core.contracts.SlotLease, as vram_guard.Lease is for a local one)."""

    def __init__(self, engine: RemoteModel, gate: RemoteGate) -> None:
        self._engine, self._gate = engine, gate
        self.engine_name = engine.name
        self._enqueued = self._granted = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
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

    def start_swap(self) -> None:
        """Nothing to load: the model lives on another machine."""

    def check_files(self) -> None:
        self._engine.check_files()

    @property
    def engine(self) -> RemoteModel:
        if not self._granted:
            raise AppError("the remote backend was not acquired", code="slot_not_acquired", status=500)
        return self._engine

    async def acquire(self, reload: bool = False) -> AsyncGenerator[SlotEvent, None]:
        """The backend's own concurrency limit (`reload`: nothing to load here)."""
        self.enqueue()
        if self._gate.semaphore.locked():
            yield Queued(self._gate.waiting, 0.0)
        await self._gate.semaphore.acquire()
        self._gate.waiting -= 1
        self._gate.running += 1
        self._granted = True
        yield Ready(self.engine_name)

