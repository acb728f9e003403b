"""Chat LLM on llama-cpp-python, with the chat template from the GGUF's own metadata.

The engine renders the prompt itself (so it can count tokens and fit the conversation into the
context: models/context_window.py keeps the window's prefix between overflows and drops old
turns in blocks) and streams completion tokens, checking a stop flag between tokens. Loading and
unloading happen only through the model slot.

Warm swap-back: the KV cache belongs to one conversation at a time. Before another
conversation takes it, and before the model is unloaded, the owner's cache is saved to a
KvStore in RAM; when that conversation speaks again it is restored instead of recomputed.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.contracts import ChatInput, ContextFit, Finish, Prompt, Sampling, ToolPlan, Window, refuse_images
from core.errors import AppError, ModelLoadError
from core.events import Token
from models.chat_template import template_formatter, tokenize_chat
from models.context_window import cut_tool_results, fit_window, memory_text, summarise_drop, with_summary
from models.gguf import GgufShape, VramEstimate, check_gguf_file, gpu_estimate, read_shape
from models.kv_keeper import KvKeeper
from models.kv_store import KvStore
from settings import ChatModel, env_name
from tools.syntax import CLOSERS, call_schema, opener_end, with_tools

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

MODEL_SETTING = env_name('chat', 'model_path')
WARM_BATCH = 32  # tokens per step of background evaluation: between steps it gives way to a user
_load_lock = threading.Lock()  # the progress hook below patches a module function


def _looks_like_oom(message: str, on_gpu: bool) -> bool:
    text = message.lower()
    if any(word in text for word in ("out of memory", "alloc", "memory")):
        return True
    # llama-cpp-python says only "Failed to create llama_context" when the KV/compute
    # buffers do not fit, and "Failed to load model" when GPU weights do not.
    return "llama_context" in text or (on_gpu and "failed to load model" in text)


@contextmanager
def _load_progress(callback: Callable[[float], None] | None):
    """Report llama.cpp's model-load progress (0..1). Llama() exposes no hook, so the model
    params it builds get our callback for the duration of one load."""
    if callback is None:
        yield
        return
    import llama_cpp.llama_cpp as lib

    def report(progress: float, _user_data) -> bool:
        try:
            callback(float(progress))
        except Exception:  # a broken observer must not abort the load
            pass
        return True

    c_callback = lib.llama_progress_callback(report)
    original = lib.llama_model_default_params

    def params_with_progress():
        params = original()
        params.progress_callback = c_callback
        return params

    with _load_lock:
        lib.llama_model_default_params = params_with_progress
        try:
            yield
        finally:
            lib.llama_model_default_params = original


def sampling_args(cfg: ChatModel, sampling: Sampling) -> dict:
    """llama-cpp-python's sampling arguments: the settings, with the request's overrides."""
    temperature, top_p, seed = sampling.over(cfg.temperature, cfg.top_p, cfg.seed)
    args = {"temperature": temperature, "top_p": top_p, "top_k": cfg.top_k, "repeat_penalty": cfg.repeat_penalty,
            "seed": seed}
    grammar = json_grammar(sampling)
    return args | ({"grammar": grammar} if grammar is not None else {})


def json_grammar(sampling: Sampling):
    """A llama.cpp grammar that forces JSON (a schema's, or any object), or None."""
    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import JSON_GBNF

    try:
        if sampling.json_schema is not None:
            return LlamaGrammar.from_json_schema(json.dumps(sampling.json_schema), verbose=False)
        if sampling.json_object:
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise AppError(f"the JSON schema cannot be turned into a grammar: {exc}", code="invalid_json_schema",
                       status=400) from exc
    return None


@dataclass
class Sampled:
    """The tokens one answer sampled, over its completions (the text, then a tool call under its
    grammar): each completion adds its own when it closes."""

    tokens: int = 0


def llama_settings(cfg: ChatModel, n_ctx: int) -> dict[str, Any]:
    """Llama()'s arguments from a chat model's settings (the file and the context aside)."""
    import llama_cpp

    cache_type = getattr(llama_cpp, f"GGML_TYPE_{cfg.cache_type.upper()}")
    return {"n_ctx": n_ctx, "n_gpu_layers": cfg.n_gpu_layers, "n_threads": cfg.n_threads,
            "n_batch": min(cfg.n_batch, n_ctx), "use_mmap": cfg.use_mmap, "type_k": cache_type, "type_v": cache_type,
            "flash_attn": cfg.flash_attn or cfg.cache_type != "f16",
            "seed": llama_cpp.LLAMA_DEFAULT_SEED if cfg.seed < 0 else cfg.seed, "verbose": False}


def completion(llm: Any, cfg: ChatModel, tokens: list[int], max_tokens: int, sampling: Sampling, prompt: Prompt,
               stop: threading.Event, sampled: Sampled) -> Generator[tuple[str, str | None], None, None]:
    """(text, "trimmed" when the length ended it) per chunk of one llama.cpp completion."""
    from llama_cpp import StoppingCriteriaList

    longest_input = 0

    def count_or_stop(input_ids: Any, _logits: Any) -> bool:
        # llama-cpp-python calls this per sampled token with the ids evaluated before it
        # (and once more at the end), so the longest call gives the sampled count.
        nonlocal longest_input
        longest_input = max(longest_input, len(input_ids))
        return stop.is_set()

    chunks = llm.create_completion(
        tokens, max_tokens=max_tokens, stop=prompt.stop, **sampling_args(cfg, sampling),
        stopping_criteria=StoppingCriteriaList([*(prompt.stopping_criteria or []), count_or_stop]), stream=True)
    try:
        for chunk in chunks:
            choice = chunk["choices"][0]
            yield choice["text"], "trimmed" if choice.get("finish_reason") == "length" else None
            if stop.is_set():
                break
    finally:
        chunks.close()
        sampled.tokens += longest_input - len(tokens) + 1 if longest_input else 0


class _Renderer:
    """The prompt (tokens and the template's answer) for a window starting at `start`, with the
    current window's summary; cached per start until the window changes."""

    def __init__(self, engine: LlmEngine, request: ChatInput, history: list[dict], system: str) -> None:
        self.engine, self.request, self.history, self.system = engine, request, history, system
        self.window = request.window
        self.memory, self.memories = memory_text(request.memory, engine._count_system)  # fixed for the prompt
        self._cache: dict[int, tuple] = {}

    def set_window(self, window: Window) -> None:
        self.window, self._cache = window, {}

    def count(self, start: int) -> int:
        return len(self(start)[0])

    def __call__(self, start: int) -> tuple:
        if start not in self._cache:
            engine, request = self.engine, self.request
            system_prompt, kept, extra, sampling, calls_as = with_tools(
                replace(request, history=self.history[start:]), self.system,
                engine.llama.metadata.get("tokenizer.chat_template"))
            content = with_summary(system_prompt, self.window, self.memory)
            head = [{"role": "system", "content": content}] if content else []
            new = [{"role": "user", "content": request.message}] if request.message else []
            tokens, rendered = engine._tokenize_chat(head + kept + new, **extra)
            self._cache[start] = (tokens, rendered, sampling, calls_as)
        return self._cache[start]


class LlmEngine:
    """The chat engine (core.contracts.ChatEngine): load/unload for the slot, prepare + stream."""

    accepts_images = False

    def __init__(self, cfg: ChatModel, name: str = "chat", kv_store: KvStore | None = None,
                 headroom_bytes: int = 512 << 20, model_setting: str = MODEL_SETTING,
                 llama_args: Callable[[], dict] | None = None, after_load: Callable[[object], None] | None = None
                 ) -> None:
        """`llama_args` adds Llama() arguments and `after_load` runs on the new Llama (may raise
        ModelLoadError): how the vision engine, which wraps this one, brings its projector."""
        self.cfg = cfg
        self.name = name
        self.model_setting = model_setting
        self._llama_args = llama_args or dict
        self._after_load = after_load or (lambda _llm: None)
        self._kv = KvKeeper(name, kv_store if kv_store is not None else KvStore(0, 0))
        self.headroom_bytes = headroom_bytes
        self.n_ctx = cfg.n_ctx  # may shrink after an out-of-memory load
        self._next_ctx: int | None = None  # set by reconfigure while loaded: used at the next load
        self._llm: Llama | None = None
        self._formatter: Any = None  # llama-cpp-python's Jinja2ChatFormatter for the file's template
        self._formatter_for: Path | None = None  # the model file the formatter was built from

    @property
    def kv_store(self) -> KvStore:
        """Where conversations' KV state waits across swaps (one store for every chat model)."""
        return self._kv.store

    @kv_store.setter
    def kv_store(self, store: KvStore) -> None:
        self._kv.store = store

    # ---- slot contract ----------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._llm is not None

    @property
    def model_label(self) -> str:
        return self.cfg.model_path.name if self.cfg.model_path else "(none)"

    def check_files(self) -> None:
        check_gguf_file(self.cfg.model_path, self.model_setting, self.name)

    def reconfigure(self, cfg: ChatModel) -> None:
        """New settings for the same file: sampling and the system prompt apply to the next answer;
        what sizes memory (context, GPU layers, threads, cache) at the next load."""
        self.cfg = cfg
        self._next_ctx = cfg.n_ctx
        if self._llm is None:
            self.n_ctx = cfg.n_ctx

    def load(self, progress: Callable[[float], None] | None = None) -> None:
        from llama_cpp import Llama

        path = check_gguf_file(self.cfg.model_path, self.model_setting, self.name)
        if self._next_ctx is not None:  # a context chosen while the model was loaded
            self.n_ctx, self._next_ctx = self._next_ctx, None
        try:
            with _load_progress(progress):
                self._llm = Llama(model_path=str(path), **llama_settings(self.cfg, self.n_ctx), **self._llama_args())
            self._after_load(self._llm)
            if self._formatter_for != path:  # the template comes from the file: reuse it across reloads
                self._formatter, self._formatter_for = self._template_formatter(), path
        except ModelLoadError:
            self.unload()
            raise
        except (ValueError, RuntimeError, KeyError) as exc:
            self.unload()
            raise ModelLoadError(
                f"{self.name} model could not be loaded from {path.name}: {exc}. Check {self.model_setting}",
                oom=_looks_like_oom(str(exc), self.cfg.n_gpu_layers != 0),
            ) from exc

    @property
    def loaded_context(self) -> int | None:
        """The context of the loaded model, read back from llama.cpp."""
        return self._llm.n_ctx() if self._llm is not None else None

    @property
    def llama(self) -> Llama:
        """The loaded llama_cpp.Llama (for the vision engine's own generation)."""
        if self._llm is None:
            raise ModelLoadError(f"{self.name} model is not loaded", code="model_not_loaded")
        return self._llm

    def unload(self) -> None:
        llm = self._llm
        if llm is not None:
            self._kv.save(llm)
        self._llm, self._kv.owner = None, None
        if llm is not None:
            # Frees the model and context now (the finalizer would error at interpreter exit);
            # no reference cycles hold a Llama, so no gc.collect() is needed (it cost ~20 ms).
            llm.close()

    def shrink_context(self) -> bool:
        """Halve the context for the next load (after out of memory); False at the floor."""
        smaller = max(self.cfg.min_ctx_on_retry, self.n_ctx // 2)
        if smaller >= self.n_ctx:
            return False
        log.warning("%s: context %d -> %d after a failed load", self.name, self.n_ctx, smaller)
        self.n_ctx = smaller
        return True

    @cached_property
    def _shape(self) -> GgufShape:
        return read_shape(check_gguf_file(self.cfg.model_path, self.model_setting, self.name))

    def estimate(self) -> VramEstimate:
        """What the model puts on the GPU, from its GGUF header and the settings."""
        if self.cfg.n_gpu_layers == 0:
            return VramEstimate(0, 0, 0)
        return gpu_estimate(self._shape, self.n_ctx, self.cfg.n_gpu_layers, self.cfg.cache_type, self.headroom_bytes)

    def estimate_vram(self) -> int:
        return self.estimate().total

    # ---- prompt -----------------------------------------------------------------------
    def _template_formatter(self):
        formatter = template_formatter(self._llm)
        if formatter is None:
            raise ModelLoadError(
                f"{self.model_label} has no chat template in its GGUF metadata; use an instruct/chat model"
            )
        return formatter

    def _tokenize_chat(self, messages: list[dict], **extra):
        return tokenize_chat(self._llm, self._formatter, messages, **extra)

    def prepare(self, request: ChatInput) -> Prompt:
        """System prompt, summary, the kept window of history and the new message, fitted into the
        context by models/context_window.py (old turns dropped in blocks, the prefix kept between
        overflows). The new message is never dropped or cut: if it alone does not fit,
        ContextOverflow says so. A text model is shown no images: refused."""
        if request.images:
            raise refuse_images(self.name)
        if self._llm is None:
            raise ModelLoadError(f"{self.name} model is not loaded", code="model_not_loaded")
        n_ctx = self.n_ctx
        max_tokens = (request.sampling.max_tokens or self.cfg.max_tokens)
        budget = n_ctx - min(max_tokens, n_ctx // 4)  # room kept for the answer
        system = request.system_or(self.cfg.system_prompt)
        history = cut_tool_results(request.history, budget, lambda text: len(self.llama.tokenize(text.encode(), False, False)))
        render = _Renderer(self, request, history, system)
        fitted = fit_window(history, render.window, budget, render.count)
        if fitted.dropped is not None and render.window.overflow == "window":
            fitted = summarise_drop(history, render, fitted, budget, self._count_system)
        tokens, rendered, sampling, calls_as = render(fitted.start)
        self._kv.bind(self.llama, request.session_id, self.n_ctx)
        stop = rendered.stop if isinstance(rendered.stop, list) else [s for s in [rendered.stop] if s]
        plan = request.tool_plan
        context = ContextFit(n_ctx, budget, fitted.start, fitted.dropped, len(tokens), render.window.summary,
                             render.memories)
        return Prompt(tokens, [*stop, *sampling.stop], rendered.stopping_criteria, fitted.start,
                      max_new_tokens=min(max_tokens, n_ctx - len(tokens)),
                      cached_tokens=self._reusable_prefix(tokens), sampling=sampling, tool_format=calls_as,
                      tool_names=tuple(plan.names) if plan else (), tool_schemas=plan.tools if plan else (),
                      max_calls=(plan.max_calls if plan.parallel else 1) if plan else 0, context=context)

    def _count_system(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def _reusable_prefix(self, tokens: list[int]) -> int:
        """Tokens llama-cpp-python will not evaluate again (it always re-evaluates the last one)."""
        llm = self.llama
        cached = llm.input_ids[: llm.n_tokens]
        n = 0
        for a, b in zip(cached, tokens[:-1]):
            if a != b:
                break
            n += 1
        return n

    def warm(self, prompt: Prompt, should_stop: Callable[[], bool]) -> bool:
        """Evaluate a prompt into the KV cache without answering (the window's new prefix, made
        while the user reads, so the next turn starts from it; a summary's input before it is
        written), in small batches so that `should_stop` (a user's request waits) is seen within
        a fraction of a second; False when stopped part way."""
        llm = self._llm
        if llm is None:
            return False
        self._kv.settle()
        tokens = prompt.tokens[:-1]  # the next turn re-evaluates the last token anyway
        done = self._reusable_prefix(tokens + [-1])
        llm.n_tokens = done
        step = max(1, min(WARM_BATCH, self.cfg.n_batch, self.n_ctx))
        while done < len(tokens):
            if should_stop():
                return False
            llm.eval(tokens[done:done + step])
            done = llm.n_tokens
        self._kv.keep_soon(llm)
        return True

    # ---- generation ---------------------------------------------------------------------
    def stream(self, prompt: Prompt, stop: threading.Event) -> Iterator[Token | Finish]:
        """Yield Token pieces, then one Finish. Checks `stop` between tokens. When the answer may
        call tools and a call opener starts a line, the call itself is generated again under a
        grammar of the tools' schemas (its arguments valid), and closed."""
        if self._llm is None:
            raise ModelLoadError(f"{self.name} model is not loaded", code="model_not_loaded")
        self._kv.settle()
        said, sampled, reason, opener = "", Sampled(), "done", False
        with closing(completion(self._llm, self.cfg, prompt.tokens, prompt.max_new_tokens, prompt.sampling, prompt,
                                stop, sampled)) as chunks:
            for text, finish in chunks:
                maybe = prompt.tool_names and ("<" in text or "<" in said[-16:])  # the opener starts with "<": cheap
                end = opener_end(said + text, prompt.tool_format) if maybe else None
                if end is not None:  # the opener: keep the text up to it, then a call under the grammar
                    yield Token((said + text)[len(said):end])
                    said, opener = (said + text)[:end], True
                    break
                if text:
                    said += text
                    yield Token(text)
                reason = finish or reason
        if opener:  # the first completion is closed (and counted) before the call's own starts
            yield from self._constrained_call(prompt, said, stop, sampled)
        if stop.is_set():
            reason = "stopped"
        self._kv.keep_soon(self._llm)  # while the answer is saved: a swap after it then copies nothing
        yield Finish(reason, len(prompt.tokens), sampled.tokens)

    def _constrained_call(self, prompt: Prompt, said: str, stop: threading.Event, sampled: Sampled) -> Iterator[Token]:
        tokens = prompt.tokens + self.llama.tokenize(said.encode("utf-8"), add_bos=False, special=True)
        schema = call_schema(ToolPlan(prompt.tool_schemas, "required"))
        sampling = replace(prompt.sampling, json_schema=schema, json_object=False)
        left = max(16, prompt.max_new_tokens - sampled.tokens)
        for text, _ in completion(self._llm, self.cfg, tokens, left, sampling, prompt, stop, sampled):
            if text:
                yield Token(text)
        yield Token(CLOSERS.get(prompt.tool_format or "", ""))
