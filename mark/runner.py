"""PKC Mark runs: each model's speed, then every item of every task with every seed, each answer
a request through the same slot and turn runner as the chat, at background priority and one
lease per answer, so a user's chat request waiting meanwhile goes first and the run resumes
after it. Cancelling ends the answer under way and frees the slot at once.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import os
import platform
import resource
import time
import uuid
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from core.contracts import ChatEngine, ChatInput, Chunk, GenerationParams, ImageGenerator, Sampling, ToolPlan
from core.errors import AppError, InvalidInput
from core.events import ChatDone, Error, Event, Loading, PicturesDone, Ready, RunFinished, Token, ToolCallMade
from core.threads import run_blocking
from mark import scoring
from mark.items import LIBRARY, SUITE_VERSION, TASKS, Item, items, picture_png
from mark.tool_set import TOOLS
from models.gpu_probe import GpuProbe
from models.image_families import family_defaults
from rag_engine import RagEngine
from settings import ChatModel, ImageModel
from store.db import now_iso
from store.image_files import ImageStore
from turns.answer import AnswerTurn
from turns.pictures import ImageTurn
from turns.references import with_references
from turns.runner import LoadOnly, Turn
from vram_guard import ModelSlot, Priority

log = logging.getLogger(__name__)
FILLER = "The library opens at nine and closes at six; visitors sign in at the front desk. "  # ~20 tokens
NAMES = {"instruct": "대화", "reasoning": "추론", "summary": "요약", "documents": "문서 질문", "json": "JSON", "code": "코드",
         "tools": "도구", "vision": "그림 질문"}


@dataclass
class Answer:
    text: str
    finish: str
    calls: list[tuple[str, Mapping[str, Any]]]
    done: ChatDone | None


class MarkRun:
    def __init__(self, models: list[str], tasks: list[str], seeds: int, quick: bool) -> None:
        self.id = uuid.uuid4().hex
        self.request: dict[str, Any] = {"models": models, "tasks": tasks, "seeds": seeds, "quick": quick}
        self.status, self.created = "running", now_iso()
        self.error: str | None = None
        self.done, self.total, self.started = 0, 0, time.monotonic()
        self.results: list[dict] = []
        self.speed: dict[str, dict] = {}
        self.changed = asyncio.Event()  # set (and replaced) at every change: each listener waits on its own
        self.task: asyncio.Task | None = None

    def step(self) -> None:
        self.done += 1
        self.notify()

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def public(self, settings: dict, hardware: dict) -> dict:
        spent = time.monotonic() - self.started
        eta = spent / self.done * (self.total - self.done) if self.done and self.status == "running" else None
        return {"id": self.id, "created": self.created, "status": self.status, "error": self.error,
                "request": self.request, "suite": SUITE_VERSION, "settings": settings, "hardware": hardware,
                "progress": {"done": self.done, "total": self.total, "eta_s": round(eta, 1) if eta else None},
                "results": self.results, "speed": self.speed, "recommendation": recommend(self.results, self.speed)}


def tasks_for(kind: str, tasks: list[str]) -> list[str]:
    """A vision model answers the vision task; a chat model the others; an image model none (speed only)."""
    if kind == "image":
        return []
    return [task for task in tasks if (task == "vision") == (kind == "vision")]


def recommend(results: list[dict], speed: dict[str, dict]) -> dict[str, str]:
    """Per task, the model with the best score (the faster one when equal); none where all scored 0."""
    best: dict[str, dict] = {}
    for row in results:
        if row["task"] not in NAMES:
            continue
        current = best.get(row["task"])
        rate = (speed.get(row["model"]) or {}).get("gen_tokens_per_s") or 0
        if row["score"] > 0 and (current is None or (row["score"], rate) > (current["score"], current["rate"])):
            best[row["task"]] = {"model": row["model"], "score": row["score"], "rate": rate}
    return {NAMES[task]: pick["model"] for task, pick in best.items()}


class MarkRunner:
    def __init__(self, slot: ModelSlot, store, settings, library=None, sandbox=None, embedder=None, images=None) -> None:
        self.slot, self.store, self.settings, self.library, self.sandbox = slot, store, settings, library, sandbox
        self.embedder, self.images = embedder, images
        self._pictures: dict[str, str] = {}
        self.runs: dict[str, MarkRun] = {}
        self._rag = None  # the documents task's own small library (its own collection, made once)

    # ---- starting, watching, cancelling ------------------------------------------------------------
    def start(self, models: list[str], tasks: list[str], seeds: int, quick: bool) -> MarkRun:
        if any(run.status == "running" for run in self.runs.values()):
            raise AppError("a benchmark run is under way; cancel it or wait for it", code="run_busy", status=409)
        unknown = [task for task in tasks if task not in TASKS]
        if not tasks or unknown:
            raise InvalidInput(f"tasks: choose from {', '.join(TASKS)}", code="invalid_tasks", status=422)
        engines = [self._engine(model) for model in models]  # (engine, kind): 404 / 422 now, not mid-run
        run = MarkRun(models, tasks, seeds, quick)
        run.total = sum(1 if kind == "image" else 2 + sum(len(items(task, quick)) for task in tasks_for(kind, tasks)) * seeds
                        for _, kind in engines)
        self.runs[run.id] = run
        run.task = asyncio.create_task(self._execute(run, engines))
        return run

    def _engine(self, model: str) -> tuple[str, str]:
        """(the slot's engine, its kind: chat / vision / image) for a role name or a library id."""
        found = self.library.catalog.models.get(model) if self.library is not None else None
        if found is not None and found.status == "ok" and ("vision" in found.roles or "image" in found.roles):
            kind = "vision" if "vision" in found.roles else "image"
            return self.library.ensure_engine(found, kind), kind
        name = self.library.engine_for_request(model) if self.library is not None else model  # 404/422 for bad ids
        if name not in self.slot.registry.names:
            raise AppError(f"no model {model!r}: GET /api/models lists them", code="model_not_found", status=404)
        engine = self.slot.registry.engine(name)
        if isinstance(engine, ImageGenerator):
            return name, "image"
        return name, "vision" if engine.accepts_images else "chat"

    def cancel(self, run_id: str) -> MarkRun:
        run = self.get_live(run_id)
        if run.status == "running" and run.task is not None:
            run.task.cancel()  # closes the answer under way: its lease is released at once
        return run

    def get_live(self, run_id: str) -> MarkRun:
        if run_id not in self.runs:
            raise AppError(f"no benchmark run under way with id {run_id[:64]}", code="run_not_found", status=404)
        return self.runs[run_id]

    def view(self, run: MarkRun) -> dict:
        return run.public(self._settings(), hardware())

    def _settings(self) -> dict:
        chat = self.settings.chat
        return {"n_ctx": chat.n_ctx, "n_gpu_layers": chat.n_gpu_layers, "temperature": chat.temperature,
                "top_p": chat.top_p, "vram_budget_mb": self.settings.slot.vram_budget_mb}

    async def _documents(self):
        """The documents task's library, in a collection of its own under data/ (never the user's)."""
        if self._rag is None:
            rag = RagEngine(self.settings.rag, self.settings.paths.data / "mark_library", self.embedder)
            for index, (name, text) in enumerate(LIBRARY.items()):
                await run_blocking(rag.ingest, f"mark{index}", name, [Chunk(0, text, None)])
            self._rag = rag
        return self._rag

    async def _picture(self, spec: list) -> str:
        """The vision task's picture (drawn here, stored once per process; removed at close)."""
        key = f"{spec[0]}-{'-'.join(map(str, spec[1]))}"
        if key not in self._pictures:  # through the upload door (checked and stored as PNG), as a page's picture
            url = "data:image/png;base64," + base64.b64encode(picture_png(spec[0], tuple(spec[1]))).decode()
            (stored,) = await run_blocking(self.images.save_all, [url])
            self._pictures[key] = stored.id
        return self._pictures[key]

    async def close(self) -> None:
        if self._rag is not None:
            await run_blocking(self._rag.close)
        if self._pictures and self.images is not None:  # the vision task's pictures: not the user's uploads
            await run_blocking(self.images.delete, list(self._pictures.values()))
        for run in self.runs.values():
            if run.task is not None and not run.task.done():
                run.task.cancel()
        await asyncio.gather(*(r.task for r in self.runs.values() if r.task), return_exceptions=True)

    # ---- the run ----------------------------------------------------------------------------------
    async def _execute(self, run: MarkRun, engines: list[tuple[str, str]]) -> None:
        await self.store.save(self.view(run))
        try:
            for model, (engine, kind) in zip(run.request["models"], engines):
                if kind == "image":
                    run.speed[model] = await image_speed(self.slot, self.images, engine)
                    run.step()
                    continue
                run.speed[model] = await self._speed(run, engine, kind)
                for task in tasks_for(kind, run.request["tasks"]):
                    run.results.extend(await self._task(run, model, engine, task))
                    await self.store.save(self.view(run))
            run.status = "done"
        except asyncio.CancelledError:
            run.status = "cancelled"
        except Exception as exc:
            log.exception("benchmark run failed")
            run.status, run.error = "failed", exc.message if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
        finally:
            run.notify()
            await asyncio.shield(self.store.save(self.view(run)))

    async def _answer(self, engine: str, prompt: str, max_tokens: int, seed: int | None,
                      tools: ToolPlan | None = None, choices: tuple[str, ...] = (), images: tuple[str, ...] = ()) -> Answer:
        lease = self.slot.lease(engine, Priority.BACKGROUND, ChatEngine, images=bool(images))
        schema = {"type": "string", "enum": list(choices)} if choices else None  # a letter, by grammar
        work = AnswerTurn(ChatInput([], prompt, images, sampling=Sampling(max_tokens=max_tokens, seed=seed,
                                                                           json_schema=schema), tool_plan=tools))
        turn = await Turn.start(lease, lambda: (None, work))
        text: list[str] = []
        calls: list[tuple[str, Mapping[str, Any]]] = []
        done: ChatDone | None = None
        async with aclosing(turn.events()) as events:
            async for event in events:
                if isinstance(event, Token):
                    text.append(event.text)
                elif isinstance(event, ToolCallMade):
                    calls.append((event.name, event.args))
                elif isinstance(event, ChatDone):
                    done = event
                elif isinstance(event, Error):
                    return Answer("".join(text), "error", calls, None)
        return Answer("".join(text), done.finish_reason if done else "error", calls, done)

    async def _speed(self, run: MarkRun, engine: str, kind: str = "chat") -> dict:
        """Load, time to first token at prompt depths 0 / 2k / 8k (what the context allows),
        prompt and generated tokens per second, memory; a vision model's TTFT with one picture."""
        cfg = self.slot.registry.config(engine)
        n_ctx = cfg.n_ctx if isinstance(cfg, ChatModel) else self.settings.chat.n_ctx
        depths = [d for d in (0, 2000, 8000)[: 2 if run.request["quick"] else 3] if d + 300 < n_ctx]
        load_s = await timed_load(self.slot, engine)
        story = await self._answer(engine, "Write a long story about a lighthouse keeper.", 64 if run.request["quick"] else 128, 1)
        result: dict[str, Any] = {"load_s": round(load_s, 2) if load_s is not None else None,
                  "gen_tokens_per_s": (story.done.timings.get("tokens_per_s") if story.done else None), "depths": {}}
        run.step()
        for depth in depths:
            answer = await self._answer(engine, FILLER * (depth // 20) + "\nReply with one word: OK", 4, 1)
            if answer.done is None:
                continue
            ttft = answer.done.timings.get("ttft_ms") or 0
            prompt_tokens = answer.done.usage.prompt_tokens or 0
            result["depths"][str(depth)] = {"ttft_ms": ttft, "prompt_tokens": prompt_tokens,
                                            "prompt_tokens_per_s": round(prompt_tokens / (ttft / 1000), 1) if ttft else None}
        run.step()
        if kind == "vision":
            picture = await self._picture(["square", [220, 30, 30]])
            seen = await self._answer(engine, "What is in the picture?", 8, 1, images=(picture,))
            result["image_ttft_ms"] = seen.done.timings.get("ttft_ms") if seen.done else None
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        resident = self.slot.state()["residents"].get(engine) or {}
        result["vram_mb"] = resident.get("measured_mb")
        result["estimate_mb"] = resident.get("estimate_mb")
        cfg = self.slot.registry.config(engine)
        layers = cfg.n_gpu_layers if isinstance(cfg, ChatModel) else 0  # an image model has no such setting
        # every layer on the GPU, and the whole estimate within the budget (measured free VRAM when there is a GPU)
        result["fully_on_gpu"] = layers < 0 and self.slot.estimate(engine) <= self.slot.budget()
        return result

    async def _task(self, run: MarkRun, model: str, engine: str, task: str) -> list[dict]:
        rows = []
        for language in ("ko", "en"):
            chosen = [item for item in items(task, run.request["quick"]) if item.language == language]
            scores, per_seed, counts, shares = [], [], dict.fromkeys(("empty", "truncated", "looping", "invalid_json",
                                                                         "failed"), 0), []
            for seed in range(1, run.request["seeds"] + 1):
                seed_scores = []
                for item in chosen:
                    value, found, answer = await self._score(engine, item, seed)
                    seed_scores.append(value)
                    for flag in found:
                        counts[flag] += 1
                    if language == "ko" and task in ("instruct", "reasoning", "summary", "documents", "vision"):
                        shares.append(scoring.hangul_share(answer))
                    run.step()
                scores.extend(seed_scores)
                per_seed.append(sum(seed_scores) / len(seed_scores) if seed_scores else 0.0)
            row = {"model": model, "task": task, "language": language, **scoring.summary(scores, per_seed), **counts}
            if shares:
                row["hangul_share"] = round(sum(shares) / len(shares), 3)
            rows.append(row)
        return rows

    async def _score(self, engine: str, item: Item, seed: int) -> tuple[float, set[str], str]:
        tools = ToolPlan(tuple(TOOLS)) if item.task == "tools" else None
        prompt, sources = item.prompt, list[dict[str, Any]]()
        if item.task == "documents":  # the passages the project's own retrieval finds, as in a chat

            rag = await self._documents()
            hits = await run_blocking(rag.search, item.prompt, 3)
            prompt, sources = with_references(item.prompt, hits, self.settings.rag.context_chars)
        shown = (await self._picture(item.check["picture"]),) if item.task == "vision" else ()
        answer = await self._answer(engine, prompt, item.max_tokens, seed, tools, item.choices, shown)
        found = scoring.flags(answer.text, answer.finish)
        if item.task == "instruct":
            return scoring.score_instruct(item, answer.text), found, answer.text
        if item.task == "reasoning":
            return scoring.score_reasoning(item, answer.text), found, answer.text
        if item.task == "summary":
            return scoring.score_summary(item, answer.text), found, answer.text
        if item.task == "documents":
            return scoring.score_documents(item, answer.text, sources), found, answer.text
        if item.task == "vision":
            return scoring.score_vision(item, answer.text), found, answer.text
        if item.task == "json":
            value, valid = scoring.score_json(item, answer.text)
            return value, found | (set() if valid else {"invalid_json"}), answer.text
        if item.task == "tools":
            return scoring.score_tools(item, answer.calls), found, answer.text
        return await self._run_tests(item, answer.text), found, answer.text

    async def _run_tests(self, item: Item, text: str) -> float:
        if self.sandbox is None or not self.sandbox.isolation.available:
            return 0.0
        program = scoring.test_program(item, text)
        async with aclosing(self.sandbox.run(program, self.sandbox.new_run_id())) as events:
            async for event in events:
                if isinstance(event, RunFinished):
                    return float(event.result.exit_code == 0 and "PASSED" in event.result.stdout)
        return 0.0


def hardware() -> dict:

    memory = GpuProbe().memory()
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "system": platform.system(),
            "gpu_total_mb": round(memory.total / (1 << 20)) if memory else None}


async def timed_load(slot: ModelSlot, engine: str) -> float | None:
    """Seconds to load `engine` through the slot, measured every run: a resident model is
    unloaded and loaded again (None for a remote model, which has nothing to load)."""
    marks: dict[str, float] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, Loading):
            marks.setdefault("loading", time.perf_counter())
        elif isinstance(event, Ready) and "loading" in marks:
            marks["ready"] = time.perf_counter()
        elif isinstance(event, Error):
            raise AppError(event.message, code=event.code, status=event.status)

    lease = slot.lease(engine, Priority.BACKGROUND)
    await (await Turn.start(lease, lambda: (None, LoadOnly(engine)), reload=True)).run_to_end(on_event)
    return marks["ready"] - marks["loading"] if "ready" in marks else None


async def image_speed(slot: ModelSlot, images: ImageStore, engine: str) -> dict[str, Any]:
    """One picture at the model's default size through the slot: seconds per step and per picture."""
    cfg = slot.registry.config(engine)
    assert isinstance(cfg, ImageModel)  # the caller found an ImageGenerator under this name
    defaults = family_defaults(cfg)
    params = GenerationParams("a red lighthouse by the sea at dusk", "", min(defaults.width, cfg.max_width),
                              min(defaults.height, cfg.max_height), min(defaults.steps, cfg.max_steps),
                              defaults.cfg_scale, 1, "euler_a", "discrete", 1)
    lease = slot.lease(engine, Priority.BACKGROUND, ImageGenerator)
    turn = await Turn.start(lease, lambda: (None, ImageTurn(params, images)))
    done = next((event for event in await turn.run_to_end() if isinstance(event, PicturesDone)), None)
    picture = (done.timings.get("pictures") or [{}])[0] if done else {}
    per_picture = picture.get("total_s", sum(v for k, v in picture.items() if k in ("encode_s", "sampling_s", "decode_s")))
    return {"kind": "image", "size": f"{params.width}x{params.height}", "steps": params.steps,
            "seconds_per_step": picture.get("per_step_s"), "seconds_per_picture": round(per_picture, 3),
            "total_ms": done.timings.get("total_ms") if done else None}
