"""Shared fixtures: every test gets its own data dir; servers run on loopback in a thread."""
from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat import create_app  # noqa: E402
from settings import Analysis, ChatModel, Paths, Server, Settings, VisionModel  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tests never touch data/ or a developer's .env."""
    data = tmp_path / "data"
    monkeypatch.setenv("AIONE_PATHS__DATA", str(data))
    monkeypatch.chdir(tmp_path)
    return data


TEST_MAX_IMAGE_BYTES = 200_000  # keeps the chat body limit (it grows with image limits) small


def make_settings(data: Path, vision: dict | None = None, analysis: bool = False, **chat: object) -> Settings:
    """`analysis`: label turns in the background (off elsewhere: it would load the embedder and
    compete for the CPU in tests about something else)."""
    chat_cfg = {"temperature": 0.0, "seed": 7, "max_tokens": 48, "n_threads": 2} | chat
    return Settings(
        _env_file=None,
        paths=Paths(data=data),
        chat=ChatModel(**chat_cfg),
        vision=VisionModel(**({"max_image_bytes": TEST_MAX_IMAGE_BYTES} | (vision or {}))),
        server=Server(preload_chat=False),
        analysis=Analysis(enabled=analysis),
    )


@pytest.fixture
def settings(isolated_data: Path) -> Settings:
    return make_settings(isolated_data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app) -> Iterator[str]:
    """Run the app with uvicorn on a free loopback port in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[str]:
    """The real app with the real embedded SmolLM2 chat model."""
    with serve(create_app(settings)) as url:
        yield url


def read_frames(response: httpx.Response) -> list:
    """Parse an SSE response body into frames: dicts, and the string "[DONE]"."""
    import json

    frames = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            payload = line[5:].strip()
            frames.append(payload if payload == "[DONE]" else json.loads(payload))
    return frames


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(isolated_data: Path):
    """A real SessionStore in the test's own data dir (its database holds every store's tables)."""
    from store import open_stores

    stores = await open_stores(isolated_data / "db.sqlite3", isolated_data / "logs")
    yield stores.sessions
    await stores.close()


CACHE = Path(__file__).resolve().parent / ".cache"


@pytest.fixture(scope="session")
def tiny_mmproj() -> Path:
    """A random-weight projector that fits SmolLM2 (generated once, cached)."""
    from tests.tiny_models import make_tiny_mmproj

    path = CACHE / "tiny-mmproj-576.gguf"
    return path if path.is_file() else make_tiny_mmproj(path)


@pytest.fixture(scope="session")
def mismatched_mmproj() -> Path:
    """A projector whose output width (512) does not match SmolLM2's 576."""
    from tests.tiny_models import make_tiny_mmproj

    path = CACHE / "tiny-mmproj-512.gguf"
    return path if path.is_file() else make_tiny_mmproj(path, n_embd_llm=512)


@pytest.fixture(scope="session")
def tiny_sd() -> Path:
    """A random-weight SDXS-512 checkpoint (0.88 GB, generated once in ~10 s, cached)."""
    from tests.tiny_models import make_tiny_sd_checkpoint

    path = CACHE / "tiny-sdxs-random.safetensors"
    return path if path.is_file() else make_tiny_sd_checkpoint(path)


def image_settings(data: Path, checkpoint: Path, **image: object) -> Settings:
    """Chat = SmolLM2, image = the given checkpoint, small limits for fast tests."""
    from settings import ImageModel

    settings = make_settings(data)
    settings.image = ImageModel(model_path=checkpoint, n_threads=2, max_width=256, max_height=256, max_steps=4,
                                **image)
    return settings


def vision_settings(data: Path, mmproj: Path, **vision: object) -> Settings:
    """Chat = SmolLM2, vision = SmolLM2 + the given projector."""
    from settings import embedded_chat_model_path

    return make_settings(data, vision={"model_path": embedded_chat_model_path(), "mmproj_path": mmproj,
                                       "n_ctx": 2048, "temperature": 0.0, "seed": 3, "max_tokens": 16,
                                       "n_threads": 2} | vision)


def fake_image_app(data: Path, folder: Path, step_seconds: float = 0.05, analysis: bool = False):
    """The real app with a fake chat model and a fake image generator (tests.fakes): the routes,
    slot, stores and page for real, without the generated checkpoint."""
    from tests.fakes import FakeChatEngine, FakeImageEngine

    checkpoint = folder / "fake-sdxs.safetensors"
    checkpoint.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")  # passes the file check
    settings = image_settings(data, checkpoint)
    settings.analysis.enabled = analysis
    engines = {"chat": FakeChatEngine(), "image": FakeImageEngine(settings.image, step_seconds=step_seconds)}
    return create_app(settings, engines=engines)
