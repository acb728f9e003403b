"""Vision LLM: llama-cpp-python with libmtmd (the generic MTMDChatHandler) and a projector.

Loaded through the slot only for image questions (it swaps with the chat LLM on 8 GB).
Images reach it only as references to files the server validated and stored itself.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from core.contracts import ChatInput, Finish, VisionPrompt
from core.errors import ContextOverflow, ModelLoadError
from core.events import Token
from llm_engine import LlmEngine, VramEstimate, sampling_args
from models.context_window import system_with_memories
from models.gguf import check_gguf_file
from settings import VisionModel, env_name

MODEL_SETTING = env_name('vision', 'model_path')
MMPROJ_SETTING = env_name('vision', 'mmproj_path')
IMAGE_REF = "aione-image:"  # how a stored image is named inside a message


def _stored_image_handler(clip_model_path: str, use_gpu: bool, read_image: Callable[[str], bytes]):
    from llama_cpp.llama_chat_format import MTMDChatHandler

    class StoredImageHandler(MTMDChatHandler):
        """MTMDChatHandler that reads images only from our store (never a URL: the base
        class would fetch any non-data URL), and flattens message parts into text with the
        media marker, as llama.cpp's own server does, so text-only chat templates work too."""

        def load_image(self, image_url: str) -> bytes:
            if not image_url.startswith(IMAGE_REF):
                raise ValueError("only images stored by the server can be read")
            return read_image(image_url[len(IMAGE_REF):])

        @classmethod
        def _convert_message_for_template(cls, message, media_marker: str) -> dict:
            flat = dict(message)
            content = flat.get("content")
            if isinstance(content, list):
                flat["content"] = "\n".join(
                    media_marker if part.get("type") == "image_url" else str(part.get("text", ""))
                    for part in content
                )
            return flat

    return StoredImageHandler(clip_model_path=clip_model_path, verbose=False, use_gpu=use_gpu)


class VlmEngine:
    """The vision engine (core.contracts.ChatEngine with accepts_images). It wraps a chat engine for what the
    two share (loading the GGUF, VRAM estimate, context shrinking) and brings the projector
    and its own prompt and generation."""

    accepts_images = True

    def __init__(self, cfg: VisionModel, read_image: Callable[[str], bytes], name: str = "vision",
                 headroom_bytes: int = 512 << 20) -> None:
        self.cfg = cfg
        self.name = name
        self._read_image = read_image
        self._handler: Any = None  # llama-cpp-python's chat handler with the projector
        self._llm = LlmEngine(cfg, name=name, headroom_bytes=headroom_bytes, model_setting=MODEL_SETTING,
                              llama_args=self._handler_args, after_load=self._open_projector)

    # ---- slot contract ----------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._llm.loaded

    @property
    def model_label(self) -> str:
        return self._llm.model_label

    def check_files(self) -> None:
        self._llm.check_files()
        check_gguf_file(self.cfg.mmproj_path, MMPROJ_SETTING, "vision projector")

    def load(self, progress: Callable[[float], None] | None = None) -> None:
        self._llm.load(progress)

    def reconfigure(self, cfg: VisionModel) -> None:
        self.cfg = cfg
        self._llm.reconfigure(cfg)

    @property
    def loaded_context(self) -> int | None:
        return self._llm.loaded_context

    def _handler_args(self) -> dict:
        mmproj = check_gguf_file(self.cfg.mmproj_path, MMPROJ_SETTING, "vision projector")
        self._handler = _stored_image_handler(str(mmproj), self.cfg.mmproj_on_gpu, self._read_image)
        return {"chat_handler": self._handler}

    def _open_projector(self, llama) -> None:
        """Open the projector now, not at the first question: a mismatch fails the load."""
        try:
            self._handler._init_mtmd_context(llama)
        except ValueError as exc:
            projector = self.cfg.mmproj_path.name if self.cfg.mmproj_path else "(none)"
            raise ModelLoadError(
                f"the vision projector {projector} does not fit {self.model_label} ({exc}). "
                f"Set {MMPROJ_SETTING} to the mmproj made for this model"
            ) from exc

    def unload(self) -> None:
        self._llm.unload()  # closing the Llama frees the projector context too
        self._handler = None

    def shrink_context(self) -> bool:
        return self._llm.shrink_context()

    def estimate(self) -> VramEstimate:
        base = self._llm.estimate()
        mmproj = 0
        if self.cfg.mmproj_on_gpu and self.cfg.n_gpu_layers != 0:
            mmproj = check_gguf_file(self.cfg.mmproj_path, MMPROJ_SETTING, "vision projector").stat().st_size
        return VramEstimate(base.weights + mmproj, base.kv_cache, base.headroom)

    def estimate_vram(self) -> int:
        return self.estimate().total

    # ---- prompt and generation -----------------------------------------------------------
    def prepare(self, request: ChatInput) -> VisionPrompt:
        """Messages for the chat handler: the last `history_turns` messages (each may carry
        the ids of images to show again), then the new message with its images."""
        _ = self._llm.llama  # raises when not loaded
        recent, dropped = request.recent(self.cfg.history_turns)
        system_prompt = system_with_memories(request, self.cfg.system_prompt)
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        for turn in recent:
            messages.append(self._message(turn["role"], turn["content"], turn.get("images", ())))
        messages.append(self._message("user", request.message, request.images))
        return VisionPrompt(messages, dropped_messages=dropped, sampling=request.sampling)

    @staticmethod
    def _message(role: str, text: str, images: Sequence[str]) -> dict:
        if not images or role != "user":
            return {"role": role, "content": text}
        parts = [{"type": "image_url", "image_url": {"url": IMAGE_REF + image_id}} for image_id in images]
        return {"role": role, "content": [*parts, {"type": "text", "text": text}]}

    def stream(self, prompt: VisionPrompt, stop: threading.Event) -> Iterator[Token | Finish]:
        llama: Any = self._llm.llama  # its streaming overloads do not narrow: the chunks are plain dicts
        cfg = self.cfg
        chunks = llama.create_chat_completion(
            messages=prompt.messages, stream=True, max_tokens=prompt.sampling.max_tokens or cfg.max_tokens,
            stop=list(prompt.sampling.stop) or None, **sampling_args(cfg, prompt.sampling))
        reason, sampled, prompt_tokens = "done", 0, 0
        try:
            for chunk in chunks:  # the images are encoded before the first chunk arrives
                if not prompt_tokens:
                    prompt_tokens = llama.n_tokens
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content")
                if text:
                    sampled += 1
                    yield Token(text)
                if choice.get("finish_reason") == "length":
                    reason = "trimmed"
                if stop.is_set():
                    reason = "stopped"
                    break
        except ValueError as exc:
            if "exceeds n_ctx" in str(exc):
                raise ContextOverflow(f"the images and message do not fit the vision model's context ({exc}). "
                                      f"Send fewer or smaller images, or raise {env_name('vision', 'n_ctx')}") from exc
            raise
        finally:
            chunks.close()
        yield Finish(reason, prompt_tokens, sampled)
