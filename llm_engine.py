"""Chat LLM on llama-cpp-python, with the chat template from the GGUF's own metadata.

The engine renders the prompt itself (so it can count tokens and drop the oldest turns when
the conversation outgrows the context) and streams completion tokens, checking a stop flag
between tokens. Loading and unloading happen only through the model slot.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from errors import ContextOverflow, ModelLoadError
from gguf_meta import check_gguf_file, read_shape
from settings import ChatModel

MODEL_SETTING = "AIONE_CHAT__MODEL_PATH"
COMPUTE_HEADROOM_BYTES = 256 * 1024 * 1024  # scratch buffers beside weights and KV


@dataclass(frozen=True)
class Prompt:
    tokens: list[int]
    stop: list[str]
    stopping_criteria: object  # llama_cpp.StoppingCriteriaList: end on the template's EOS token id
    dropped_messages: int  # oldest history messages left out to fit the context
    max_new_tokens: int


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Finish:
    reason: str  # done / stopped / trimmed
    prompt_tokens: int
    completion_tokens: int


class LlmEngine:
    name = "chat"

    def __init__(self, cfg: ChatModel, name: str = "chat") -> None:
        self.cfg = cfg
        self.name = name
        self._llm = None
        self._formatter = None

    # ---- slot contract ----------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._llm is not None

    @property
    def model_label(self) -> str:
        return self.cfg.model_path.name if self.cfg.model_path else "(none)"

    def check_files(self) -> None:
        check_gguf_file(self.cfg.model_path, MODEL_SETTING, "chat")

    def load(self) -> None:
        from llama_cpp import LLAMA_DEFAULT_SEED, Llama

        path = check_gguf_file(self.cfg.model_path, MODEL_SETTING, "chat")
        try:
            self._llm = Llama(
                model_path=str(path),
                n_ctx=self.cfg.n_ctx,
                n_gpu_layers=self.cfg.n_gpu_layers,
                n_threads=self.cfg.n_threads,
                n_batch=self.cfg.n_batch,
                use_mmap=self.cfg.use_mmap,
                seed=LLAMA_DEFAULT_SEED if self.cfg.seed < 0 else self.cfg.seed,
                verbose=False,
            )
            self._formatter = self._template_formatter()
        except (ValueError, RuntimeError, KeyError) as exc:
            self.unload()
            raise ModelLoadError(f"chat model could not be loaded from {path.name}: {exc}. Check {MODEL_SETTING}") from exc

    def unload(self) -> None:
        llm, self._llm, self._formatter = self._llm, None, None
        if llm is not None:
            llm.close()  # frees the model now; the finalizer would error at interpreter exit
        gc.collect()

    def estimate_vram(self) -> int:
        """Bytes on the GPU: the offloaded share of the weights, the KV cache, a headroom."""
        if self.cfg.n_gpu_layers == 0:
            return 0
        path = check_gguf_file(self.cfg.model_path, MODEL_SETTING, "chat")
        shape = read_shape(path)
        layers = shape.n_layers or 1
        share = 1.0 if self.cfg.n_gpu_layers < 0 else min(1.0, self.cfg.n_gpu_layers / layers)
        n_ctx = self.cfg.n_ctx
        return int(shape.file_bytes * share + shape.kv_cache_bytes(n_ctx) * share + COMPUTE_HEADROOM_BYTES)

    # ---- prompt -----------------------------------------------------------------------
    def _template_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self._llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelLoadError(
                f"{self.model_label} has no chat template in its GGUF metadata; use an instruct/chat model"
            )
        eos_id, bos_id = llm.token_eos(), llm.token_bos()
        eos = llm._model.token_get_text(eos_id) if eos_id != -1 else ""
        bos = llm._model.token_get_text(bos_id) if bos_id != -1 else ""
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id])

    def _tokenize_chat(self, messages: list[dict]):
        rendered = self._formatter(messages=messages)
        tokens = self._llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)
        return tokens, rendered

    def prepare(self, system_prompt: str, history: list[dict], message: str) -> Prompt:
        """Fit system + history + message into the context, dropping the oldest turns first.

        The system prompt and the new message are never dropped or cut; if those alone do
        not fit, ContextOverflow says so.
        """
        n_ctx = self.cfg.n_ctx
        reserve = min(self.cfg.max_tokens, n_ctx // 4)  # room kept for the answer
        budget = n_ctx - reserve
        head = [{"role": "system", "content": system_prompt}] if system_prompt else []
        new = [{"role": "user", "content": message}]
        kept = list(history)
        dropped = 0
        while True:
            tokens, rendered = self._tokenize_chat(head + kept + new)
            if len(tokens) <= budget:
                break
            if not kept:
                raise ContextOverflow(
                    f"the message is too long for the model's context: {len(tokens)} tokens, at most {budget} fit. "
                    f"Shorten it or raise AIONE_CHAT__N_CTX"
                )
            # Drop the oldest message, and an assistant reply left at the front with it.
            kept.pop(0)
            dropped += 1
            while kept and kept[0]["role"] != "user":
                kept.pop(0)
                dropped += 1
        stop = rendered.stop if isinstance(rendered.stop, list) else [s for s in [rendered.stop] if s]
        return Prompt(tokens, stop, rendered.stopping_criteria, dropped,
                      max_new_tokens=min(self.cfg.max_tokens, n_ctx - len(tokens)))

    # ---- generation ---------------------------------------------------------------------
    def stream(self, prompt: Prompt, stop: threading.Event) -> Iterator[Token | Finish]:
        """Yield Token pieces, then one Finish. Checks `stop` between tokens."""
        from llama_cpp import StoppingCriteriaList

        if self._llm is None:
            raise ModelLoadError("chat model is not loaded", code="model_not_loaded")
        longest_input = 0

        def count_or_stop(input_ids, _logits) -> bool:
            # llama-cpp-python calls this per sampled token with the ids evaluated before it
            # (and once more at the end), so the longest call gives the sampled count.
            nonlocal longest_input
            longest_input = max(longest_input, len(input_ids))
            return stop.is_set()

        cfg = self.cfg
        chunks = self._llm.create_completion(
            prompt.tokens,
            max_tokens=prompt.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            top_k=cfg.top_k,
            repeat_penalty=cfg.repeat_penalty,
            seed=None if cfg.seed < 0 else cfg.seed,
            stop=prompt.stop,
            stopping_criteria=StoppingCriteriaList([*(prompt.stopping_criteria or []), count_or_stop]),
            stream=True,
        )
        reason = "done"
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                if choice["text"]:
                    yield Token(choice["text"])
                if choice.get("finish_reason") == "length":
                    reason = "trimmed"
                if stop.is_set():
                    break
        finally:
            chunks.close()
        if stop.is_set():
            reason = "stopped"
        sampled = longest_input - len(prompt.tokens) + 1 if longest_input else 0
        yield Finish(reason, len(prompt.tokens), sampled)
