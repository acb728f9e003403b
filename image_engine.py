"""Image generator on stable-diffusion-cpp-python (stable-diffusion.cpp).

One checkpoint file, or for SD3.5 / FLUX the diffusion model plus its text encoders. Loaded
only through the slot (it swaps with the chat LLM on 8 GB). `generate` runs one request:
each picture of a batch is its own library call (seed, seed+1, ...), so Stop takes effect
between pictures; the library itself cannot be interrupted inside one.
"""
from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from core.contracts import GenerationParams, Picture, Step
from core.errors import ModelLoadError, ModelMissing
from models.image_families import family_defaults, guess_family
from settings import ImageModel, env_name

log = logging.getLogger(__name__)

# The library's sampler and scheduler names (stable_diffusion_cpp.stable_diffusion maps);
# "default" lets the library pick the one that suits the loaded model.
SAMPLERS = ("default", "euler", "euler_a", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "dpm++2mv2", "ipndm",
            "ipndm_v", "lcm", "ddim_trailing", "tcd", "res_multistep", "res_2s", "er_sde")
SCHEDULERS = ("default", "discrete", "karras", "exponential", "ays", "gits", "sgm_uniform", "simple",
              "smoothstep", "kl_optimal", "lcm", "bong_tangent")
PATH_SETTINGS = {  # setting field -> env var a user changes
    "model_path": env_name('image', 'model_path'),
    "diffusion_model_path": env_name('image', 'diffusion_model_path'),
    "clip_l_path": env_name('image', 'clip_l_path'),
    "clip_g_path": env_name('image', 'clip_g_path'),
    "t5xxl_path": env_name('image', 't5xxl_path'),
    "vae_path": env_name('image', 'vae_path'),
    "taesd_path": env_name('image', 'taesd_path'),
}
GPU_SYMBOLS = ("ggml_backend_cuda_init", "ggml_backend_vk_init", "ggml_backend_metal_init", "ggml_backend_sycl_init")


# ---- library log lines -> Python logging, and the last errors for messages -------------------
_recent_errors: deque[str] = deque(maxlen=8)
_log_callback = None


def _install_log_callback() -> None:
    """Route stable-diffusion.cpp's log into logging (its default prints every line to stderr)
    and keep the last error lines: a failed load says why only there."""
    global _log_callback
    if _log_callback is not None:
        return
    import stable_diffusion_cpp as sd_cpp

    def on_log(level: int, text: bytes, _data) -> None:
        line = text.decode("utf-8", errors="replace").strip()
        if not line:
            return
        if level >= 3:  # SD_LOG_ERROR
            _recent_errors.append(line)
            log.warning("stable-diffusion.cpp: %s", line)
        elif level == 2:
            log.info("stable-diffusion.cpp: %s", line)
        else:
            log.debug("stable-diffusion.cpp: %s", line)

    _log_callback = sd_cpp.sd_log_callback(on_log)  # kept referenced: the library holds only the pointer
    sd_cpp.sd_set_log_callback(_log_callback, ctypes.c_void_p(0))


def gpu_build() -> bool:
    """True when the installed stable-diffusion-cpp-python has a GPU backend compiled in."""
    try:
        from stable_diffusion_cpp.stable_diffusion_cpp import _lib
    except Exception:
        return False
    return any(hasattr(_lib, symbol) for symbol in GPU_SYMBOLS)


def _check_model_file(path: Path, setting: str, role: str) -> Path:
    if not path.is_file():
        raise ModelMissing(f"image {role} file not found: {path}. Set {setting} to the file")
    try:
        with path.open("rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise ModelMissing(f"image {role} file cannot be read ({exc}). Check {setting}") from exc
    # GGUF, safetensors (8-byte header length, then JSON), or a zip / pickle checkpoint (.ckpt)
    if not (head[:4] == b"GGUF" or head[8:9] == b"{" or head[:2] == b"PK" or head[:1] == b"\x80"):
        raise ModelMissing(f"image {role} file is not a model (gguf, safetensors or ckpt): {path.name}. "
                           f"Check {setting}")
    return path


class ImageEngine:
    model_setting = PATH_SETTINGS["model_path"]

    accepts_images = False  # it draws from a prompt; image-to-image takes its picture apart

    def __init__(self, cfg: ImageModel, name: str = "image", headroom_bytes: int = 512 << 20) -> None:
        self.cfg = cfg
        self.name = name
        self.headroom_bytes = headroom_bytes
        self.family = guess_family(cfg)
        self.defaults = family_defaults(cfg)
        self.low_vram = False  # set after an out-of-memory load: text encoders and VAE leave the GPU
        self._sd = None
        self._lock = threading.Lock()  # the library's progress callback is one global

    def reconfigure(self, cfg: ImageModel) -> None:
        """New settings for the same files: what loads with the model at the next load, the rest at once."""
        self.cfg = cfg
        self.family = guess_family(cfg)
        self.defaults = family_defaults(cfg)

    # ---- slot contract ----------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._sd is not None

    @property
    def model_label(self) -> str:
        main = self.cfg.model_path or self.cfg.diffusion_model_path
        return main.name if main else "(none)"

    def files(self) -> dict[str, Path]:
        """The configured model files by setting name, checked; raises ModelMissing."""
        cfg = self.cfg
        if cfg.model_path is None and cfg.diffusion_model_path is None:
            raise ModelMissing(f"image generation is off: set {env_name('image', 'model_path')} to a checkpoint, or for SD3.5 "
                               f"{env_name('image', 'diffusion_model_path')} with _CLIP_L_PATH, _CLIP_G_PATH and _T5XXL_PATH")
        found = {}
        for key, setting in PATH_SETTINGS.items():
            path = getattr(cfg, key)
            if path is not None:
                found[key] = _check_model_file(path, setting, key.removesuffix("_path").replace("_", " "))
        return found

    def check_files(self) -> None:
        self.files()

    def estimate_vram(self) -> int:
        if self.cfg.vram_estimate_mb is not None:
            return self.cfg.vram_estimate_mb << 20
        if not gpu_build():
            return 0  # everything runs in RAM
        files = self.files()
        on_cpu = set()
        if self.cfg.keep_clip_on_cpu or self.low_vram:
            on_cpu |= {"clip_l_path", "clip_g_path", "t5xxl_path"}
        if self.cfg.keep_vae_on_cpu or self.low_vram:
            on_cpu |= {"vae_path"}
        weights = sum(path.stat().st_size for key, path in files.items() if key not in on_cpu)
        return weights + self.headroom_bytes

    def load(self, progress: Callable[[float], None] | None = None) -> None:
        import stable_diffusion_cpp as sd_cpp
        from stable_diffusion_cpp import StableDiffusion
        from stable_diffusion_cpp._logger import set_verbose

        files = self.files()
        cfg = self.cfg
        _install_log_callback()
        _recent_errors.clear()
        low = self.low_vram
        def loading(step: int, steps: int, _seconds: float) -> None:
            if progress is not None and steps:
                progress(step / steps)

        with self._lock, _progress_callback(loading):
            try:
                sd = StableDiffusion(
                    **{key: str(path) for key, path in files.items()},
                    n_threads=cfg.n_threads,
                    wtype=cfg.weight_type,
                    keep_clip_on_cpu=cfg.keep_clip_on_cpu or low,
                    keep_vae_on_cpu=cfg.keep_vae_on_cpu,
                    offload_params_to_cpu=cfg.offload_params_to_cpu or low,
                    diffusion_flash_attn=cfg.flash_attn,
                    # verbose=True only stops the wrapper redirecting the process's stdout/stderr
                    # around each call (unsafe in a threaded server); our log callback decides what shows.
                    verbose=True,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise self._load_error(str(exc)) from exc
            finally:
                set_verbose(False)
                sd_cpp.sd_set_log_callback(_log_callback, ctypes.c_void_p(0))
        if not sd.model:
            # A failed load returns a NULL pointer, which the wrapper's `is None` check misses;
            # its close() would then pass NULL to free_sd_ctx and crash the process.
            sd._model.model = None
            sd.close()
            raise self._load_error("the library could not build a model from these files")
        self._sd = sd

    def _load_error(self, detail: str) -> ModelLoadError:
        errors = "; ".join(_recent_errors)
        message = f"image model could not be loaded from {self.model_label}: {detail}"
        if errors:
            message += f" ({errors})"
        oom = any(word in (detail + errors).lower() for word in ("out of memory", "alloc"))
        return ModelLoadError(f"{message}. Check {self.model_setting} and the other AIONE_IMAGE__ paths", oom=oom)

    def unload(self) -> None:
        sd, self._sd = self._sd, None
        if sd is not None:
            sd.close()  # frees the context now, not at garbage collection

    def shrink_context(self) -> bool:
        """After out of memory: next load keeps text encoders on the CPU and offloads weights."""
        if self.low_vram:
            return False
        log.warning("image: retrying with text encoders on the CPU and weights offloaded")
        self.low_vram = True
        return True

    # ---- generation -----------------------------------------------------------------------------
    def generate(self, params: GenerationParams, init_image, emit: Callable[[object], None],
                 stop: threading.Event) -> None:
        """Make the batch, emitting Step for each sampling step and Picture for each picture."""
        sd = self._sd
        if sd is None:
            raise ModelLoadError("image model is not loaded", code="model_not_loaded")
        for index in range(params.batch_count):
            if stop.is_set():
                return
            emit(self._one(sd, params, init_image, index, emit))

    def _one(self, sd, params: GenerationParams, init_image, index: int, emit: Callable[[object], None]) -> Picture:
        seed = params.seed + index
        marks: dict[str, float] = {}
        last = [0]

        def on_progress(step: int, steps: int, _time: float) -> None:
            # The sampler reports 0 when it starts, then 1..steps; VAE tiling reports after it.
            if "sampled" in marks:
                return
            now = time.perf_counter()
            if step == 0:
                marks.setdefault("sampling", now)
            elif step > last[0]:
                marks.setdefault("sampling", now)
                last[0] = step
                emit(Step(index, step, steps))
                if step >= steps:
                    marks["sampled"] = now

        extra = {}
        if init_image is not None:
            extra = {"init_image": init_image, "strength": params.strength}
        started = time.perf_counter()
        with self._lock, _progress_callback(on_progress):
            images = sd.generate_image(
                prompt=params.prompt, negative_prompt=params.negative_prompt, width=params.width,
                height=params.height, cfg_scale=params.cfg_scale, sample_method=params.sampler,
                scheduler=params.scheduler, sample_steps=params.steps, seed=seed, batch_count=1,
                vae_tiling=self.cfg.vae_tiling or self.low_vram, **extra)
        ended = time.perf_counter()
        if not images:
            raise RuntimeError(f"the library returned no picture ({'; '.join(_recent_errors) or 'no error logged'})")
        sampling = marks.get("sampling", started)
        sampled = marks.get("sampled", ended)
        timings = {"encode_s": sampling - started, "sampling_s": sampled - sampling, "decode_s": ended - sampled,
                   "total_s": ended - started}
        timings["per_step_s"] = timings["sampling_s"] / max(1, last[0])
        return Picture(index, seed, images[0], {k: round(v, 4) for k, v in timings.items()})


class _progress_callback:
    """Install a progress callback for one library call (it is process-global in the library)."""

    def __init__(self, callback: Callable[[int, int, float], None]) -> None:
        import stable_diffusion_cpp as sd_cpp

        self._sd_cpp = sd_cpp

        def report(step: int, steps: int, seconds: float, _data) -> None:
            try:
                callback(step, steps, seconds)
            except Exception:  # an observer's error must not reach the C library
                log.exception("image progress callback failed")

        self._c_callback = sd_cpp.sd_progress_callback(report)

    def __enter__(self) -> None:
        self._sd_cpp.sd_set_progress_callback(self._c_callback, ctypes.c_void_p(0))

    def __exit__(self, *exc_info) -> None:
        self._sd_cpp.sd_set_progress_callback(self._sd_cpp.sd_progress_callback(), ctypes.c_void_p(0))  # NULL: none
