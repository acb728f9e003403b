"""Labels every saved turn in the background: emotion, intent, keywords.

One worker thread at low priority (nice 10) does the CPU work in batches, and only while no
model is generating: a token never waits for a label. The store says what is left (turns
without labels, after a crash or an import, are labelled the same way: that is the backfill);
a saved turn only wakes the worker. Changing the classifier re-labels on request (`relabel`),
with progress in `status()`.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from analytics.keywords import KeywordExtractor, rank
from emotion_engine import (
    EMOTIONS,
    INTENTS,
    SEED_DIR,
    IntentClassifier,
    SeedHeadClassifier,
    TextClassifier,
    TransformersEmotionClassifier,
    TurnContext,
)
from models.embedder import SharedEmbedder
from store.db import now_iso
from store.labels import LabelStore

log = logging.getLogger(__name__)
BUSY_POLL_S = 0.25
MAX_LABEL_CHARS = 2000  # the start of a long answer says enough about its tone


def _lower_priority() -> None:
    """The worker thread yields the CPU to the chat model (Linux: per-thread nice)."""
    if hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass


@dataclass
class Classifiers:
    emotion: TextClassifier
    intent: IntentClassifier
    keywords: KeywordExtractor


def classifiers_from_settings(cfg, embedder: SharedEmbedder, cache_dir: Path) -> Classifiers:
    """settings.analysis's classifiers; nothing is loaded until the first label (the server
    starts without waiting)."""
    if cfg.model_path is not None:
        emotion: TextClassifier = LazyClassifier(
            lambda: TransformersEmotionClassifier(cfg.model_path, tuple(cfg.label_names.split(",")), cfg.threads),
            f"transformers:{cfg.model_path.name}")
    else:
        emotion = SeedHeadClassifier("emotion", [SEED_DIR / "emotion_ko.txt", SEED_DIR / "emotion_en.txt"],
                                     EMOTIONS, embedder, cache_dir)
    intent = SeedHeadClassifier("intent", [SEED_DIR / "intent.txt"], INTENTS, embedder, cache_dir)
    return Classifiers(emotion, IntentClassifier(intent), KeywordExtractor())


class LazyClassifier:
    """A classifier built at its first use, in the worker thread (a transformers model loads in seconds)."""

    labels: tuple[str, ...] = EMOTIONS

    def __init__(self, build: Callable[[], TextClassifier], name: str) -> None:
        self._build, self.name = build, name
        self._classifier: TextClassifier | None = None
        self._lock = threading.Lock()

    def classify(self, texts: list[str]):
        with self._lock:
            if self._classifier is None:
                self._classifier = self._build()
                self.labels = self._classifier.labels
        return self._classifier.classify(texts)


class TurnAnalyzer:
    def __init__(self, labels: LabelStore, classifiers: Classifiers, busy: Callable[[], bool],
                 batch_size: int = 16, keywords_keep_s: float = 60.0) -> None:
        """`keywords_keep_s`: how long the keyword analyser stays loaded once nothing is left to
        label (0: always); the server's memory is then what it holds while the user reads."""
        self._labels, self._classifiers, self._busy = labels, classifiers, busy
        self._batch_size, self._keywords_keep_s = batch_size, keywords_keep_s
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="analysis", initializer=_lower_priority)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._relabel: dict | None = None  # {"done", "total"} while re-labelling
        self.error: str | None = None  # the last failure, shown by /api/analysis
        self._after = 0  # the cursor: turns up to this id have been looked at
        self._rewind: int | None = None  # a saved turn below the cursor (a finished answer, an import)

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="turn-analyzer")
        self._wake.set()  # the backfill: whatever is unlabelled from before

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def turn_saved(self, turn_id: int) -> None:
        """Called by the store after it saved a turn: only notes it and wakes the worker (never
        waits). An answer saved after a later turn was labelled lies behind the cursor."""
        if turn_id <= self._after:
            self._rewind = min(turn_id - 1, self._rewind if self._rewind is not None else turn_id - 1)
        self._wake.set()

    # ---- the worker --------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._idle_until_woken()
            self._wake.clear()
            try:
                while await self._one_batch():
                    pass
                self.error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken classifier must not end the worker or the server
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("turn labels: %s", self.error)
                await asyncio.sleep(5)

    async def _idle_until_woken(self) -> None:
        """Wait for work; after `keywords_keep_s` without any, let the keyword analyser go."""
        if self._keywords_keep_s <= 0 or self._wake.is_set():
            await self._wake.wait()
            return
        try:
            await asyncio.wait_for(self._wake.wait(), self._keywords_keep_s)
        except TimeoutError:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._classifiers.keywords.release)
            await self._wake.wait()

    async def _one_batch(self) -> bool:
        """Label one batch (after the models are idle); False when nothing is left."""
        while self._busy():
            await asyncio.sleep(BUSY_POLL_S)
        if self._rewind is not None:  # applied here, so a rewind noted during a batch is not lost
            self._after, self._rewind = min(self._after, self._rewind), None
        turns = await self._labels.unlabelled(self._after, self._batch_size)
        relabel = not turns and self._relabel is not None
        if relabel:
            turns = await self._labels.stale(self.emotion_model, self.intent_model, self._batch_size)
        if not turns:
            self._relabel = None
            return False
        rows, terms = await self._label_turns(turns, keep_keywords=relabel)
        await self._labels.save(rows, terms)
        if not relabel:
            self._after = max(self._after, turns[-1]["id"])
        if relabel and self._relabel is not None:
            self._relabel["done"] += len(rows)
        return True

    async def _label_turns(self, turns: list[dict], keep_keywords: bool) -> tuple[list[dict], dict[int, list[str]]]:
        loop = asyncio.get_running_loop()
        labelled = await loop.run_in_executor(self._executor, self._classify, turns)
        terms: dict[int, list[str]] = {}
        if not keep_keywords:
            frequency, total = await self._labels.document_frequency(
                term for counts in labelled.values() for term in counts[1])
            for turn in turns:
                counts = labelled[turn["id"]][1]
                labelled[turn["id"]][0]["keywords"] = rank(counts, frequency, total)
                terms[turn["id"]] = list(counts)
        return [labelled[turn["id"]][0] for turn in turns], terms

    def _classify(self, turns: list[dict]):
        """CPU work, in the worker thread: {turn id: (label row, term counts)}."""
        c = self._classifiers
        texts = [turn["text"][:MAX_LABEL_CHARS] for turn in turns]
        with_text = [i for i, text in enumerate(texts) if text.strip()]
        emotions = dict(zip(with_text, c.emotion.classify([texts[i] for i in with_text])))
        users = [i for i in with_text if turns[i]["role"] == "user"]
        contexts = [TurnContext(turns[i]["kind"], bool(turns[i]["has_images"]), bool(turns[i]["used_documents"]))
                    for i in users]
        intents = dict(zip(users, c.intent.classify([texts[i] for i in users], contexts)))
        result = {}
        for i, turn in enumerate(turns):
            row: dict = {"turn_id": turn["id"], "session_id": turn["session_id"], "created": now_iso(),
                         "keyword_model": c.keywords.name}
            if i in emotions:
                e = emotions[i]
                row |= {"emotion": e.label, "emotion_score": round(e.score, 4),
                        "emotion_scores": e.as_dict()["scores"], "emotion_model": c.emotion.name}
            if i in intents:
                row |= {"intent": intents[i].label, "intent_score": round(intents[i].score, 4),
                        "intent_model": c.intent.name}
            result[turn["id"]] = (row, c.keywords.terms(texts[i]))
        return result

    # ---- on request ----------------------------------------------------------------------------
    @property
    def emotion_model(self) -> str:
        return self._classifiers.emotion.name

    @property
    def intent_model(self) -> str:
        return self._classifiers.intent.name

    async def relabel(self) -> dict:
        """Re-label every turn whose emotion or intent came from another classifier."""
        stale = (await self._labels.counts(self.emotion_model, self.intent_model))["stale"]
        self._relabel = {"done": 0, "total": stale}
        self._wake.set()
        return await self.status()

    async def analyze(self, text: str) -> dict:
        """Labels of any text (the /api/analyze route): not stored, keywords ranked against the history."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        labelled = await loop.run_in_executor(
            self._executor, self._classify,
            [{"id": 0, "session_id": "", "text": text, "role": "user", "kind": "chat", "has_images": False,
              "used_documents": False}])
        row, counts = labelled[0]
        frequency, total = await self._labels.document_frequency(counts)
        c = self._classifiers
        return {
            "emotion": {"label": row.get("emotion"), "score": row.get("emotion_score"),
                        "scores": row.get("emotion_scores", {})},
            "intent": {"label": row.get("intent"), "score": row.get("intent_score")},
            "keywords": rank(counts, frequency, total),
            "model": {"emotion": c.emotion.name, "intent": c.intent.name, "keywords": c.keywords.name},
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    async def status(self) -> dict:
        counts = await self._labels.counts(self.emotion_model, self.intent_model)
        accuracy = getattr(self._classifiers.emotion, "accuracy", None)
        return counts | {
            "emotion_model": self.emotion_model, "intent_model": self.intent_model,
            "keyword_model": self._classifiers.keywords.name,
            "held_out_accuracy": accuracy, "relabel": dict(self._relabel) if self._relabel else None,
            "error": self.error,
            "emotions": list(self._classifiers.emotion.labels),  # the classifier's labels, in its order
        }
