"""The image engine on the real stable-diffusion-cpp-python, with a random-weight SDXS checkpoint."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from core.contracts import GenerationParams, Picture, Step
from core.errors import ModelLoadError, ModelMissing
from image_engine import SAMPLERS, SCHEDULERS, ImageEngine
from models.image_families import guess_family
from settings import ImageModel


def params(**overrides) -> GenerationParams:
    base = {"prompt": "a red apple", "negative_prompt": "", "width": 64, "height": 64, "steps": 2, "cfg_scale": 1.0, "seed": 5,
                "sampler": "euler_a", "scheduler": "default", "batch_count": 1}
    return GenerationParams(**(base | overrides))


@pytest.fixture(scope="module")
def engine(tiny_sd: Path):
    e = ImageEngine(ImageModel(model_path=tiny_sd, n_threads=2))
    progress: list[float] = []
    e.load(progress.append)
    e.load_progress = progress
    yield e
    e.unload()


def run(engine: ImageEngine, p: GenerationParams, init_image=None, stop: threading.Event | None = None) -> list:
    events: list = []
    engine.generate(p, init_image, events.append, stop or threading.Event())
    return events


def test_loads_with_progress_and_detects_the_family(engine: ImageEngine):
    assert engine.loaded
    assert engine.family == "sdxs"
    assert engine.load_progress and engine.load_progress[-1] == pytest.approx(1.0)
    assert engine.load_progress == sorted(engine.load_progress)


def test_txt2img_gives_pictures_of_the_asked_size_with_steps_in_order(engine: ImageEngine):
    events = run(engine, params(width=128, height=64, batch_count=2))
    steps = [(e.index, e.step, e.steps) for e in events if isinstance(e, Step)]
    assert steps == [(0, 1, 2), (0, 2, 2), (1, 1, 2), (1, 2, 2)]
    pictures = [e for e in events if isinstance(e, Picture)]
    assert [p.seed for p in pictures] == [5, 6]  # picture i uses seed + i
    assert all(p.image.size == (128, 64) for p in pictures)
    # each picture's events come before the next picture's steps
    assert isinstance(events[2], Picture) and events[2].index == 0
    assert set(pictures[0].timings) >= {"encode_s", "sampling_s", "per_step_s", "decode_s", "total_s"}


def test_the_seed_decides_the_picture(engine: ImageEngine):
    def pixels(seed: int) -> np.ndarray:
        picture = next(e for e in run(engine, params(seed=seed)) if isinstance(e, Picture))
        return np.asarray(picture.image.convert("RGB"), dtype=np.int16)

    first, again, other = pixels(11), pixels(11), pixels(12)
    assert np.array_equal(first, again)
    assert np.abs(first - other).mean() > 1


def test_img2img_uses_the_init_image_and_strength(engine: ImageEngine):
    from PIL import Image

    init = Image.new("RGB", (100, 80), (200, 30, 30))
    events = run(engine, params(steps=4, strength=0.5, width=64, height=64), init_image=init)
    steps = [e for e in events if isinstance(e, Step)]
    # the library runs only the last part of the schedule on an init image (about steps x strength)
    assert [e.step for e in steps] == list(range(1, steps[-1].steps + 1))
    assert steps[-1].steps < 4
    picture = next(e for e in events if isinstance(e, Picture))
    assert picture.image.size == (64, 64)


def test_stop_ends_the_batch_after_the_current_picture(engine: ImageEngine):
    stop = threading.Event()
    events: list = []

    def emit(event) -> None:
        events.append(event)
        if isinstance(event, Picture):
            stop.set()

    engine.generate(params(batch_count=3), None, emit, stop)
    assert len([e for e in events if isinstance(e, Picture)]) == 1


def test_sampler_and_scheduler_names_are_the_librarys():
    from stable_diffusion_cpp.stable_diffusion import SAMPLE_METHOD_MAP, SCHEDULER_MAP

    assert set(SAMPLERS) == set(SAMPLE_METHOD_MAP) - {"sample_method_count"}
    assert set(SCHEDULERS) == set(SCHEDULER_MAP) - {"scheduler_count"}


def test_a_file_that_is_no_model_is_refused_before_the_library(tmp_path: Path):
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(ModelMissing, match="AIONE_IMAGE__MODEL_PATH"):
        ImageEngine(ImageModel(model_path=text)).load()
    with pytest.raises(ModelMissing, match="not found"):
        ImageEngine(ImageModel(model_path=tmp_path / "absent.gguf")).load()
    with pytest.raises(ModelMissing, match="image generation is off"):
        ImageEngine(ImageModel()).check_files()


def test_a_model_the_library_cannot_read_fails_cleanly(tmp_path: Path):
    """An empty safetensors file passes our header check; the library returns a NULL context,
    which the wrapper would pass to free() and crash on: we get an error instead."""
    fake = tmp_path / "empty.safetensors"
    fake.write_bytes((2).to_bytes(8, "little") + b"{}")
    engine = ImageEngine(ImageModel(model_path=fake))
    with pytest.raises(ModelLoadError, match="get sd version"):
        engine.load()
    assert not engine.loaded


def test_families_are_guessed_from_settings(tmp_path: Path):
    assert guess_family(ImageModel(model_path=tmp_path / "v1-5-pruned.safetensors")) == "sd1"
    assert guess_family(ImageModel(model_path=tmp_path / "sd_xl_base_1.0.safetensors")) == "sdxl"
    assert guess_family(ImageModel(diffusion_model_path=tmp_path / "sd3.5_medium-Q5_1.gguf",
                                   clip_l_path=tmp_path / "clip_l.safetensors",
                                   clip_g_path=tmp_path / "clip_g.safetensors",
                                   t5xxl_path=tmp_path / "t5xxl_fp16.safetensors")) == "sd3"
    assert guess_family(ImageModel(diffusion_model_path=tmp_path / "flux1-schnell-q4_0.gguf",
                                   clip_l_path=tmp_path / "clip_l.safetensors",
                                   t5xxl_path=tmp_path / "t5xxl.safetensors")) == "flux"
    assert guess_family(ImageModel(model_path=tmp_path / "x.gguf", family="sd2")) == "sd2"


def test_cpu_build_needs_no_vram(tiny_sd: Path):
    from image_engine import gpu_build

    engine = ImageEngine(ImageModel(model_path=tiny_sd))
    if gpu_build():
        assert engine.estimate_vram() >= tiny_sd.stat().st_size
    else:
        assert engine.estimate_vram() == 0
    assert ImageEngine(ImageModel(model_path=tiny_sd, vram_estimate_mb=3000)).estimate_vram() == 3000 << 20
