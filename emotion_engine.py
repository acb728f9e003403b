"""Emotion and intent of a text, on the CPU (never the VRAM slot).

Two emotion classifiers behind one contract (`TextClassifier`):
- `TransformersEmotionClassifier`: a transformers text-classification folder, the reference
  being a Korean KLUE-BERT emotion model. Labels come from its `id2label`; a config that only
  says LABEL_0..6 is named by a setting (that model's order: 공포, 놀람, 분노, 슬픔, 중립, 행복, 혐오).
- `SeedHeadClassifier`: the embedded default. A softmax head over the shared multilingual
  sentence embedder, fitted on the labelled sentences in analytics/seed/ (written for this
  project, Korean and English) and cached; every 5th sentence of each block is held out, never
  fitted, and only used for the accuracy report (`held_out_accuracy`).

Intent is the same head over analytics/seed/intent.txt, after rules that know what the seed
cannot (an image was sent, a picture was asked for, a code block).

Every label carries the name of what produced it (`classifier.name`).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from core.errors import AppError
from models.embedder import Embedder, SharedEmbedder
from settings import EMOTION_NAMES, env_name

SEED_DIR = Path(__file__).resolve().parent / "analytics" / "seed"
HOLD_OUT_EVERY = 5

EMOTIONS = EMOTION_NAMES  # the reference model's classes, in its id order
# English names some emotion models use, mapped onto the same seven (stats stay comparable).
ENGLISH_EMOTIONS = {"fear": "공포", "surprise": "놀람", "anger": "분노", "sadness": "슬픔", "neutral": "중립",
                    "happiness": "행복", "joy": "행복", "disgust": "혐오"}
INTENTS = ("question", "request", "code", "summarize", "translate", "image_generation", "image_question",
           "document_question", "small_talk", "complaint")

CODE_PATTERN = re.compile(r"```|^\s*(def |class |import |from \S+ import |#include|function |SELECT |public )",
                          re.MULTILINE)


@dataclass(frozen=True)
class Label:
    label: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"label": self.label, "score": round(self.score, 4),
                "scores": {k: round(v, 4) for k, v in self.scores.items()}}


class TextClassifier(Protocol):
    """CPU only; `classify` takes a batch and is called from one worker thread at a time."""

    name: str  # recorded with every label it produced
    labels: tuple[str, ...]

    def classify(self, texts: list[str]) -> list[Label]: ...


# ---- the seed set -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SeedExample:
    label: str
    text: str
    held_out: bool
    source: str  # the file it came from (the language, for the report)


def load_seed(path: Path) -> list[SeedExample]:
    """Blocks of "## label" followed by one sentence per line; every 5th of a block is held out."""
    examples, label, position = [], None, 0
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or (line.startswith("#") and not line.startswith("## ")):
            continue
        if line.startswith("## "):
            label, position = line[3:].strip(), 0
            continue
        if label is None:
            raise ValueError(f"{path.name}: a sentence before the first '## label' line")
        position += 1
        examples.append(SeedExample(label, line, position % HOLD_OUT_EVERY == 0, path.stem))
    return examples


# ---- a softmax head, fitted in numpy (no extra dependency; seconds on 600 sentences) ----------
class SoftmaxHead:
    SCALE = 5.0  # unit vectors scaled up: the fit converges in a few hundred steps (held-out best 4-20)

    def __init__(self, weights: np.ndarray, bias: np.ndarray) -> None:
        self.weights, self.bias = weights, bias

    @classmethod
    def fit(cls, vectors: np.ndarray, targets: np.ndarray, classes: int, l2: float = 0.01,
            steps: int = 400, rate: float = 0.5) -> SoftmaxHead:
        x = vectors * cls.SCALE
        n, dim = x.shape
        weights, bias = np.zeros((dim, classes), np.float32), np.zeros(classes, np.float32)
        onehot = np.eye(classes, dtype=np.float32)[targets]
        for _ in range(steps):
            grad = (_softmax(x @ weights + bias) - onehot) / n
            weights -= rate * (x.T @ grad + l2 * weights)
            bias -= rate * grad.sum(axis=0)
        return cls(weights, bias)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        return _softmax(vectors * self.SCALE @ self.weights + self.bias)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SeedHeadClassifier:
    """A head over the shared embedder, fitted on a seed set's training sentences (at first use,
    in seconds) and cached in `cache_dir` under a name that changes with the seed or embedder."""

    def __init__(self, kind: str, seed_files: list[Path], labels: tuple[str, ...], embedder: SharedEmbedder,
                 cache_dir: Path | None = None) -> None:
        self.kind, self.labels = kind, labels
        self._seed_files, self._embedder, self._cache_dir = seed_files, embedder, cache_dir
        self._head: SoftmaxHead | None = None
        self._lock = threading.Lock()
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in seed_files)).hexdigest()[:8]
        self._digest = digest
        spec = embedder.spec
        source = re.sub(r"[^a-z0-9]+", "-", (spec.model or Path(spec.folder).name or spec.kind).lower()).strip("-")
        self.name = f"seed-{kind}-{digest}@{source}"
        self.accuracy: dict[str, float] | None = None  # held-out accuracy per seed file, once fitted

    def examples(self) -> list[SeedExample]:
        examples = [e for path in self._seed_files for e in load_seed(path)]
        unknown = {e.label for e in examples} - set(self.labels)
        if unknown:
            raise ValueError(f"seed labels not in the label set: {sorted(unknown)}")
        return examples

    def _ready(self) -> tuple[Embedder, SoftmaxHead]:
        embedder = self._embedder.get()
        with self._lock:
            if self._head is None:
                self._head = self._cached(embedder) or self._fit(embedder)
            return embedder, self._head

    def _cache_path(self, embedder: Embedder) -> Path | None:
        return self._cache_dir / f"{self.kind}-{self._digest}-{embedder.name}.npz" if self._cache_dir else None

    def _cached(self, embedder: Embedder) -> SoftmaxHead | None:
        path = self._cache_path(embedder)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as saved:
                head = SoftmaxHead(saved["weights"], saved["bias"])
                self.accuracy = json.loads(str(saved["accuracy"]))
                return head
        except (OSError, ValueError, KeyError):
            return None  # a damaged cache is fitted again

    def _fit(self, embedder: Embedder) -> SoftmaxHead:
        examples = self.examples()
        train = [e for e in examples if not e.held_out]
        vectors = embedder.encode([e.text for e in train])
        targets = np.array([self.labels.index(e.label) for e in train])
        head = SoftmaxHead.fit(vectors, targets, len(self.labels))
        self.accuracy = _accuracy(self.labels, head, embedder, [e for e in examples if e.held_out])
        path = self._cache_path(embedder)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path, weights=head.weights, bias=head.bias, accuracy=json.dumps(self.accuracy))
            except OSError:
                pass  # the cache only saves seconds at the next start
        return head

    def classify(self, texts: list[str]) -> list[Label]:
        if not texts:
            return []
        embedder, head = self._ready()
        return [_label(self.labels, row) for row in head.probabilities(embedder.encode(texts))]

    def held_out_accuracy(self) -> dict[str, float]:
        """Accuracy on the held-out sentences, per seed file (language), never fitted on."""
        embedder, head = self._ready()
        return _accuracy(self.labels, head, embedder, [e for e in self.examples() if e.held_out])


def _accuracy(labels: tuple[str, ...], head: SoftmaxHead, embedder: Embedder,
              held: list[SeedExample]) -> dict[str, float]:
    predicted = head.probabilities(embedder.encode([e.text for e in held])).argmax(axis=1)
    report: dict[str, list[bool]] = {}
    for example, index in zip(held, predicted):
        report.setdefault(example.source, []).append(labels[int(index)] == example.label)
    return {source: round(sum(hits) / len(hits), 3) for source, hits in report.items()}


def _label(labels: tuple[str, ...], probabilities: np.ndarray) -> Label:
    best = int(np.argmax(probabilities))
    return Label(labels[best], float(probabilities[best]),
                 {name: float(p) for name, p in zip(labels, probabilities)})


# ---- the reference backend: a transformers text-classification folder -------------------------
class TransformersEmotionClassifier:
    labels: tuple[str, ...] = EMOTIONS

    def __init__(self, folder: Path, label_names: tuple[str, ...] = EMOTIONS, threads: int = 1,
                 max_tokens: int = 256) -> None:
        if not (folder / "config.json").is_file():
            raise AppError(f"emotion model folder not found (no config.json): {folder}. Set {env_name('analysis', 'model_path')} "
                           "to a transformers text-classification folder, or unset it for the embedded classifier",
                           code="emotion_model_missing", status=503)
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.set_num_threads(threads)  # the chat model keeps the other cores
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self._model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
        self._names = _emotion_names(self._model.config.id2label, label_names)
        self.labels = tuple(dict.fromkeys(self._names))
        self.max_tokens = max_tokens
        self.name = f"transformers:{folder.name}"

    def classify(self, texts: list[str]) -> list[Label]:
        if not texts:
            return []
        batch = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                                return_tensors="pt")
        with self._torch.inference_mode():
            probabilities = self._torch.softmax(self._model(**batch).logits, dim=-1).numpy()
        results = []
        for row in probabilities:
            scores: dict[str, float] = {}
            for index, p in enumerate(row):
                scores[self._names[index]] = scores.get(self._names[index], 0.0) + float(p)
            best = max(scores, key=scores.__getitem__)
            results.append(Label(best, scores[best], scores))
        return results


def _emotion_names(id2label: dict, label_names: tuple[str, ...]) -> list[str]:
    """The model's labels in id order, as the seven names: LABEL_n (no names in the config) are
    named by `label_names`; English names are mapped; other names are kept as they are."""
    names = []
    for index in range(len(id2label)):
        raw = str(id2label.get(index, id2label.get(str(index), f"LABEL_{index}")))
        if re.fullmatch(r"LABEL_\d+", raw):
            if index >= len(label_names):
                raise AppError(f"the emotion model has {len(id2label)} classes but only {len(label_names)} label "
                               f"names are set ({env_name('analysis', 'label_names')})", code="emotion_model_invalid", status=503)
            raw = label_names[index]
        names.append(ENGLISH_EMOTIONS.get(raw.lower(), raw))
    return names


# ---- intent: rules first, then the seed head --------------------------------------------------
@dataclass(frozen=True)
class TurnContext:
    """What the store knows about a message besides its text."""

    kind: str = "chat"  # "image": an image-generation request
    has_images: bool = False  # images were sent with it
    used_documents: bool = False  # its answer quoted uploaded documents


class IntentClassifier:
    def __init__(self, head: TextClassifier) -> None:
        self._head = head

    @property
    def name(self) -> str:
        return f"rules+{self._head.name}"

    @property
    def accuracy(self) -> dict[str, float] | None:
        """The head's held-out accuracy (the rules are not scored), once it is fitted."""
        return getattr(self._head, "accuracy", None)

    def classify(self, texts: list[str], contexts: list[TurnContext]) -> list[Label]:
        ranked = self._head.classify(texts)
        return [self._decide(text, context, label) for text, context, label in zip(texts, contexts, ranked)]

    @staticmethod
    def _decide(text: str, context: TurnContext, ranked: Label) -> Label:
        if context.kind == "image":
            return Label("image_generation", 1.0)
        if context.has_images:
            return Label("image_question", 1.0)
        if CODE_PATTERN.search(text):
            return Label("code", 1.0)
        if context.used_documents and ranked.label in ("question", "request", "summarize"):
            return Label("document_question", ranked.score)
        return Label(ranked.label, ranked.score)
