"""The model library as the app uses it: the scanned models, each one's own settings over the
env defaults, which model serves each role, and the engines behind them.

A model becomes an engine in the slot only when it is first chosen or asked for (by the page's
"사용", or by `model` in a /v1 request); it loads only when a request leases it, so the slot
swaps as usual. The model a role's env setting names is the role's own engine ("chat",
"vision", "image"), so choosing it again returns the role to it. Settings are applied on every
load path because they live in the engine's config: sampling and prompts at the next answer,
whatever sizes memory at the next load.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ValidationError

from catalog.fit import image_fit, llm_fit
from catalog.scan import CatalogModel, ModelCatalog, model_id
from core.contracts import Engine, Reconfigurable
from core.errors import AppError, InvalidInput, NotFound
from core.threads import run_blocking
from image_engine import ImageEngine
from llm_engine import LlmEngine
from models.kv_store import KvStore
from models.registry import EngineName, LibraryId, Role, library_engine_name
from settings import ChatModel, ImageModel, Settings, VisionModel, env_name
from store.model_choices import ModelChoiceStore
from vlm_engine import VlmEngine
from vram_guard import ModelSlot

log = logging.getLogger(__name__)
ROLES: tuple[Role, ...] = ("chat", "vision", "image")
CHAT_FIELDS = {"n_ctx", "n_gpu_layers", "n_threads", "n_batch", "cache_type", "flash_attn", "temperature", "top_p",
               "top_k", "repeat_penalty", "max_tokens", "seed", "system_prompt"}
FIELDS = {"chat": CHAT_FIELDS, "vision": CHAT_FIELDS | {"mmproj_on_gpu", "history_turns", "max_image_side"},
          "image": {"family", "n_threads", "weight_type", "keep_clip_on_cpu", "keep_vae_on_cpu", "vae_tiling",
                    "offload_params_to_cpu", "flash_attn"}}
MEMORY_FIELDS = {"n_ctx", "n_gpu_layers", "n_threads", "n_batch", "cache_type", "flash_attn", "mmproj_on_gpu",
                 "weight_type", "keep_clip_on_cpu", "keep_vae_on_cpu", "vae_tiling", "offload_params_to_cpu"}
CONFIGS: dict[str, type[BaseModel]] = {"chat": ChatModel, "vision": VisionModel, "image": ImageModel}


def default_folders(settings: Settings) -> list[Path]:
    """data/models and the folders of every configured model file."""
    if settings.models.dirs is not None:
        return list(settings.models.dirs)
    paths = [settings.chat.model_path, settings.vision.model_path, settings.image.model_path,
             settings.image.diffusion_model_path, *(m.model_path for m in settings.extra_chat_models.values())]
    folders = [settings.paths.data / "models"]
    for path in paths:
        if path is not None and path.parent not in folders:
            folders.append(path.parent)
    return folders


class ModelLibrary:
    def __init__(self, settings: Settings, slot: ModelSlot, store: ModelChoiceStore,
                 read_image: Callable[[str], bytes], kv_store: KvStore | None = None) -> None:
        self.settings, self.slot, self.store = settings, slot, store
        self.catalog = ModelCatalog(default_folders(settings), settings.paths.data / "model_scan.json")
        self._read_image = read_image
        self._kv_store = kv_store or KvStore(settings.slot.kv_keep_sessions, settings.slot.kv_keep_mb << 20)
        self._headroom = settings.slot.compute_headroom_mb << 20
        self._overrides: dict[str, dict] = {}
        self._scan_task: asyncio.Task | None = None
        # the files the env settings name, by the catalog's id (a resolved path): compared, never re-resolved
        own = {"chat": settings.chat.model_path, "vision": settings.vision.model_path, "image": settings.image.model_path}
        self._own_ids = {role: model_id(path) if path is not None else None for role, path in own.items()}

    # ---- scanning -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Scan once, then put back the roles chosen before the restart (models still there)."""
        try:
            await self.rescan()
            await self._restore()
        except Exception:  # the library is a convenience: the configured models work without it
            log.exception("model library: the first scan failed")

    async def _restore(self) -> None:
        for role, choice in (await self.store.active()).items():
            model = self.catalog.models.get(choice["model_id"])
            if model is None or model.status != "ok" or role not in _served_roles(model):
                log.warning("model library: the %s model chosen before (%s) is gone; using the default", role,
                            choice["path"])
                continue
            await self._activate(role, model)

    async def rescan(self) -> None:
        await run_blocking(self.catalog.scan)
        self._overrides = await self.store.all_settings()  # one query, not one per model

    def rescan_in_background(self) -> dict:
        if self._scan_task is None or self._scan_task.done():
            self._scan_task = asyncio.create_task(self.rescan())
        return self.catalog.state

    # ---- reading ----------------------------------------------------------------------------------
    def get(self, model_id: str) -> CatalogModel:
        model = self.catalog.models.get(model_id)
        if model is None:
            raise NotFound(f"model not found: {model_id[:64]}; GET /api/models lists them", code="model_not_found")
        return model

    def active(self) -> dict[str, str | None]:
        """Role -> the id of the model serving it (None when no library model matches)."""
        chosen: dict[str, str | None] = {}
        for role in ROLES:
            engine = self.slot.registry.resolve(role)
            chosen[role] = next((m.id for m in self.catalog.models.values() if role in m.roles
                                 and self._engine_name(m, role) == engine), None) if self.slot.registry.has(engine) else None
        return chosen

    def overview(self) -> dict:
        active = self.active()
        budget, measured = self.slot.budget(), self.slot.state()["gpu_measured"]
        basis = ("measured free VRAM (NVML) plus what our models hold" if measured else
                 f"no GPU measured here: the setting {env_name('slot', 'vram_budget_mb')}="
                 f"{self.settings.slot.vram_budget_mb} MiB")
        return {"models": [self.describe(m, active) for m in self.catalog.models.values()], "active": active,
                "scan": self.catalog.state, "folders": [str(f) for f in self.catalog.folders],
                "budget": {"mb": budget >> 20, "measured": measured, "basis": basis}}

    def describe(self, model: CatalogModel, active: dict | None = None) -> dict:
        active = active if active is not None else self.active()
        out = model.public() | {"active_for": [role for role, chosen in active.items() if chosen == model.id]}
        role = self._main_role(model)
        if role is None or model.status != "ok":
            return out
        cfg = self.config(model, role)
        out["settings"] = {name: getattr(cfg, name) for name in sorted(FIELDS[role])}
        out["changed"] = sorted(self._overrides.get(model.id, {}))
        out["fit"] = self._fit(model, role, cfg)
        engine_name = self._engine_name(model, role)
        if self.slot.registry.has(engine_name):
            out["loaded_context"] = getattr(self.slot.registry.engine(engine_name), "loaded_context", None)
        return out

    def _fit(self, model: CatalogModel, role: str, cfg) -> dict:
        budget = self.slot.budget()
        if role == "image":
            return image_fit(model.file_bytes, budget, self._headroom)
        projector = model.projector_bytes if role == "vision" and cfg.mmproj_on_gpu else 0
        return llm_fit(model.facts, model.file_bytes, projector, cfg.n_ctx, cfg.n_gpu_layers, cfg.cache_type, budget,
                       self._headroom)

    @staticmethod
    def _main_role(model: CatalogModel) -> Role | None:
        role: Role
        for role in ("vision", "chat", "image"):
            if role in model.roles:
                return role
        return None

    # ---- settings ---------------------------------------------------------------------------------
    def config(self, model: CatalogModel, role: str, overrides: dict | None = None):
        """The role's env settings, this model's files and its own settings (or `overrides`), validated."""
        base = {"chat": self.settings.chat, "vision": self.settings.vision, "image": self.settings.image}[role]
        files: dict = {"model_path": model.path, "base_url": None}
        if role == "vision":
            files["mmproj_path"] = model.projector
        if role == "image":
            files["diffusion_model_path"] = None
        own = self._overrides.get(model.id, {}) if overrides is None else overrides
        values = base.model_dump() | files | own
        try:
            return CONFIGS[role].model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            raise InvalidInput(f"settings.{field}: {error['msg']}", code="invalid_settings", status=422) from exc

    async def update_settings(self, model_id: str, changes: dict) -> dict:
        model = self._usable(model_id)
        role = self._main_role(model)
        assert role is not None  # a usable model serves a role
        unknown = sorted(set(changes) - FIELDS[role])
        if unknown:
            raise InvalidInput(f"settings.{unknown[0]}: not a setting of a {role} model (these are: "
                               f"{', '.join(sorted(FIELDS[role]))})", code="invalid_settings", status=422)
        merged = {k: v for k, v in (self._overrides.get(model.id, {}) | changes).items() if v is not None}  # null: default
        self.config(model, role, merged)  # 422 naming the field before anything is kept
        await self.store.save_settings(model.id, str(model.path), merged)
        self._overrides[model.id] = merged
        for each in _served_roles(model):  # an engine already made for it takes the new config
            name = self._engine_name(model, each)
            engine = self.slot.registry.engine(name) if each in FIELDS and self.slot.registry.has(name) else None
            if isinstance(engine, Reconfigurable):
                engine.reconfigure(self.config(model, each))
                self.slot.forget_estimate(name)
        loaded = any(self.slot.registry.has(self._engine_name(model, r)) and self.slot.registry.engine(
            self._engine_name(model, r)).loaded for r in _served_roles(model))
        applied = {field: ("next_load" if field in MEMORY_FIELDS and loaded else "now") for field in changes}
        return {"model": self.describe(model), "applied": applied}

    # ---- choosing -----------------------------------------------------------------------------------
    async def set_active(self, role: str, model_id: str) -> dict:
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role", status=422)
        model = self._usable(model_id)
        if role not in model.roles:
            raise AppError(f"{model.name} is not a {role} model (it is: {', '.join(model.roles) or 'nothing usable'})",
                           code="wrong_role", status=422)
        await self._activate(role, model)
        await self.store.set_active(role, model.id, str(model.path))
        return self.describe(model)

    async def _activate(self, role: Role, model: CatalogModel) -> None:
        self.slot.registry.route(role, self.ensure_engine(model, role))

    def ensure_engine(self, model: CatalogModel, role: Role) -> EngineName:
        """The slot's engine for this model in this role, made on first use."""
        name = self._engine_name(model, role)
        if not self.slot.registry.has(name):
            cfg = self.config(model, role)
            engine: Engine
            if role == "chat":
                engine = LlmEngine(cfg, name=name, kv_store=self._kv_store, headroom_bytes=self._headroom)
            elif role == "vision":
                engine = VlmEngine(cfg, read_image=self._read_image, name=name, headroom_bytes=self._headroom)
            else:
                engine = ImageEngine(cfg, name=name, headroom_bytes=self._headroom)
            self.slot.registry.add(name, engine)
        return name

    def engine_for_request(self, name: str) -> str:
        """/v1's `model`: an engine or role name as it is, or a library id (its engine made if needed)."""
        if self.slot.registry.has(self.slot.registry.resolve(name)) or name not in self.catalog.models:
            return name
        model = self._usable(name)
        role = "chat" if "chat" in model.roles else self._main_role(model)
        assert role is not None  # a usable model serves a role
        return self.ensure_engine(model, role)

    def _engine_name(self, model: CatalogModel, role: Role) -> EngineName:
        """The role's own engine when the model is the file its env setting names, else the model's."""
        same_projector = role != "vision" or self.settings.vision.mmproj_path == model.projector
        local = isinstance(self.slot.registry.own(role), Reconfigurable)  # the role's own engine, local (not remote)
        if local and self._own_ids[role] == model.id and same_projector:
            return EngineName(role)
        return library_engine_name(LibraryId(model.id), role)

    def _usable(self, model_id: str) -> CatalogModel:
        model = self.get(model_id)
        if model.status != "ok" or not (set(model.roles) & set(ROLES)):
            raise AppError(f"{model.name} cannot be used: {model.reason or 'it is not a model to run'}",
                           code="model_unusable", status=422)
        return model


def _served_roles(model: CatalogModel) -> list[Role]:
    """The roles of the slot this model can serve (the catalog also lists embedders, projectors)."""
    return [role for role in ROLES if role in model.roles]
