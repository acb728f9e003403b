"""The model library's scan: every model file under the configured folders, at any depth, used
where it is (never copied, moved or deleted).

Each file is described once (models/file_kinds.py) and the description cached by path, size
and modification time in data/model_scan.json, so a rescan of an unchanged folder reads no
headers. Then files become models: the parts of a split GGUF (`-00001-of-00003`) one model
(a missing part makes it broken); a projector (mmproj) paired with the chat model of its
folder whose width it fits, preferring the closest name, which makes that model a vision model
too; a projector is never a chat model. One bad file is a broken entry with its reason; the
scan itself never fails because of one file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from catalog.file_kinds import SPLIT, describe_file

log = logging.getLogger(__name__)
SUFFIXES = (".gguf", ".safetensors")
MAX_FILES = 100_000


@dataclass
class CatalogModel:
    id: str
    name: str
    path: Path
    roles: list[str]
    status: str  # "ok" | "broken"
    reason: str | None = None
    files: list[Path] = field(default_factory=list)
    projector: Path | None = None
    facts: dict = field(default_factory=dict)
    file_bytes: int = 0  # all its files, as the scan found them (no stat per listing)
    projector_bytes: int = 0

    def public(self) -> dict:
        facts = {k: v for k, v in self.facts.items() if k not in ("kind", "shape", "split", "tensors_bytes", "n_embd",
                                                                     "projection_dim", "vision_arch", "name")}
        return {"id": self.id, "name": self.name, "path": str(self.path), "files": [str(f) for f in self.files],
                "roles": self.roles, "status": self.status, "reason": self.reason, "file_bytes": self.file_bytes,
                "projector": str(self.projector) if self.projector else None,
                "vision": "vision" in self.roles, "title": self.facts.get("name"), **facts}


def model_id(path: Path) -> str:
    """Stable while the file stays where it is (the path, not the content: hashing gigabytes is slow)."""
    return hashlib.sha1(str(path.resolve()).encode("utf-8", "surrogatepass")).hexdigest()[:12]


class ModelCatalog:
    def __init__(self, folders: list[Path], cache_file: Path) -> None:
        self.folders = folders
        self.cache_file = cache_file
        self.models: dict[str, CatalogModel] = {}
        self.state: dict[str, Any] = {"scanning": False, "done": 0, "total": 0, "seconds": None, "files": 0, "scanned": None}
        self._lock = threading.Lock()

    def scan(self, progress: Callable[[int, int], None] | None = None) -> list[CatalogModel]:
        """Walk, describe (cached), group. Blocking: run it in a worker thread."""
        with self._lock:
            started = time.perf_counter()
            self.state.update(scanning=True, done=0, total=0)
            try:
                files = self._walk()
                self.state["total"] = len(files)
                cache = self._read_cache()
                described: dict[Path, dict] = {}
                for done, path in enumerate(files, start=1):
                    described[path] = self._describe(path, cache)
                    self.state["done"] = done
                    if progress:
                        progress(done, len(files))
                self._write_cache(cache, described)
                sizes = {Path(key): entry["size"] for key, entry in cache.items()}
                models = _group(described)
                for model in models:
                    model.file_bytes = sum(sizes.get(f, 0) for f in model.files)
                    model.projector_bytes = sizes.get(model.projector, 0) if model.projector else 0
                self.models = {m.id: m for m in models}
            finally:
                self.state.update(scanning=False, seconds=round(time.perf_counter() - started, 3),
                                  files=self.state["total"], scanned=time.time())
            return models

    def _walk(self) -> list[Path]:
        seen: set[Path] = set()
        files: list[Path] = []
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for root, dirs, names in os.walk(folder, onerror=lambda exc: log.warning("model scan: %s", exc)):
                dirs.sort()
                for name in sorted(names):
                    if not name.lower().endswith(SUFFIXES):
                        continue
                    path = Path(root) / name
                    resolved = path.resolve()
                    if resolved not in seen and path.is_file():
                        seen.add(resolved)
                        files.append(path)
                    if len(files) >= MAX_FILES:
                        return files
        return files

    @staticmethod
    def _describe(path: Path, cache: dict) -> dict:
        try:
            stat = path.stat()
        except OSError as exc:
            return {"kind": "broken", "reason": f"cannot be read ({exc})"}
        key = str(path)
        cached = cache.get(key)
        if cached and cached.get("size") == stat.st_size and cached.get("mtime_ns") == stat.st_mtime_ns:
            return cached["facts"]
        try:
            facts = describe_file(path)
        except Exception as exc:  # one odd file never fails the scan
            log.exception("model scan: %s", path)
            facts = {"kind": "broken", "reason": f"{type(exc).__name__}: {exc}"}
        cache[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "facts": facts}
        return facts

    def _read_cache(self) -> dict:
        try:
            return json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _write_cache(self, cache: dict, described: dict[Path, dict]) -> None:
        kept = {key: value for key, value in cache.items() if Path(key) in described}
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_file.with_suffix(".part")
            temporary.write_text(json.dumps(kept), encoding="utf-8")
            os.replace(temporary, self.cache_file)
        except OSError as exc:
            log.warning("model scan cache not written: %s", exc)


def _group(described: dict[Path, dict]) -> list[CatalogModel]:
    models = [*_splits(described), *_singles(described)]
    projectors = [(path, facts) for path, facts in described.items() if facts.get("kind") == "projector"]
    paired = _pair(models, projectors)
    for path, facts in projectors:
        if path not in paired:
            models.append(CatalogModel(model_id(path), path.stem, path, ["projector"], "ok",
                                       "a vision projector (mmproj) with no model of its width in its folder",
                                       [path], facts=facts))
    return sorted(models, key=lambda m: (m.status != "ok", m.name.lower()))


def _singles(described: dict[Path, dict]) -> list[CatalogModel]:
    models = []
    for path, facts in described.items():
        kind = facts.get("kind")
        if facts.get("split") or kind in ("skip", "projector", "part"):
            continue
        name = path.stem  # people know their files by name; the header's general.name is the title
        if kind == "broken":
            models.append(CatalogModel(model_id(path), path.name, path, [], "broken", facts["reason"], [path]))
        elif kind == "image":
            models.append(CatalogModel(model_id(path), path.stem, path, ["image"], "ok", None, [path], facts=facts))
        elif kind == "llm":
            models.append(CatalogModel(model_id(path), name, path, ["chat"], "ok", None, [path], facts=facts))
    return models


def _splits(described: dict[Path, dict]) -> list[CatalogModel]:
    groups: dict[tuple[Path, str, int], dict[int, Path]] = {}
    for path, described_one in described.items():
        match = SPLIT.match(path.name)
        if match and described_one.get("split"):
            groups.setdefault((path.parent, match["base"], int(match["count"])), {})[int(match["part"])] = path
    models = []
    for (folder, base, count), parts in groups.items():
        first = parts.get(1, next(iter(parts.values())))
        files = [parts[n] for n in sorted(parts)]
        missing = [n for n in range(1, count + 1) if n not in parts]
        broken = [f"{p.name}: {described[p]['reason']}" for p in files if described[p].get("kind") == "broken"]
        facts = dict(described[first]) if 1 in parts else {}
        facts["parameters"] = sum(described[p].get("parameters", 0) for p in files)
        reason = (f"part{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of {count} missing"
                  if missing else "; ".join(broken) or None)
        roles = [] if reason else (["chat"] if facts.get("kind") == "llm" else ["image"])
        models.append(CatalogModel(model_id(first), base, first, roles,
                                   "broken" if reason else "ok", reason, files, facts=facts))
    return models


def _pair(models: list[CatalogModel], projectors: list[tuple[Path, dict]]) -> set[Path]:
    """Each chat model takes the projector of its folder that fits its width, the closest name first."""
    used: set[Path] = set()
    for model in sorted(models, key=lambda m: str(m.path)):
        if model.status != "ok" or "chat" not in model.roles:
            continue
        width = model.facts.get("n_embd")
        fitting = [(path, facts) for path, facts in projectors if path.parent == model.path.parent and path not in used
                   and facts.get("projection_dim") in (None, width)]
        if not fitting:
            if model.facts.get("vision_arch"):
                model.reason = "a vision model without its projector (mmproj) in the folder: it answers text only"
            continue
        stem = model.path.stem.lower()
        path, _ = max(fitting, key=lambda item: SequenceMatcher(None, stem, item[0].stem.lower()).ratio())
        model.projector = path
        model.roles = ["chat", "vision"]
        used.add(path)
    return used
