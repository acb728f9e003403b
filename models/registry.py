"""Which models exist and which one serves a role: the model registry. The slot (vram_guard.py)
schedules what the registry names; only a lease runs a model.

Three kinds of name, three types:

- `Role`: what a request asks for ("chat", "vision", "image"); the settings give each one a model;
- `EngineName`: a key of the registry: a role's own engine ("chat") or a library model's
  engine for a role ("chat-<library id>");
- `LibraryId`: a model in the model library (catalog/), which may serve several roles.

A role resolves to the engine chosen for it in the model library, else to its own engine;
`explain(role)` says which, and why.
"""
from __future__ import annotations

from typing import Literal, NewType

from core.contracts import Engine
from models.remote import RemoteModel
from settings import RemoteRole

Role = Literal["chat", "vision", "image"]
ROLES: tuple[Role, ...] = ("chat", "vision", "image")
EngineName = NewType("EngineName", str)
LibraryId = NewType("LibraryId", str)


def library_engine_name(library_id: LibraryId, role: Role) -> EngineName:
    """The engine a library model gets for a role (one model may serve chat and vision)."""
    return EngineName(f"{role}-{library_id}")


class ModelRegistry:
    """The engines by name, local (on this GPU, swapped by the slot) or remote (another machine),
    and the role routes the model library sets."""

    def __init__(self, local: dict[str, Engine], remote: dict[str, RemoteModel] | None = None) -> None:
        self.local = local  # shared with the slot's swapper, which loads and unloads them
        self.remote = remote or {}
        self._routes: dict[str, EngineName] = {}  # role -> the library's engine chosen for it

    def add(self, name: EngineName, engine: Engine) -> None:
        """A model of the library: leased like any other, loaded only when asked for."""
        if self.has(name):
            raise ValueError(f"an engine named {name!r} is already registered")
        self.local[name] = engine

    def has(self, name: str) -> bool:
        return name in self.local or name in self.remote

    def route(self, role: Role, name: EngineName | None) -> None:
        """Requests for `role` go to engine `name`; None (or the role itself): the role's own."""
        if name is None or name == role:
            self._routes.pop(role, None)
        elif name not in self.local:
            raise ValueError(f"no engine {name!r} registered")
        else:
            self._routes[role] = name

    def resolve(self, name: str) -> EngineName:
        """The engine a request for `name` goes to: a role follows the library's choice."""
        return self._routes.get(name, EngineName(name))

    def explain(self, name: str) -> str:
        """Why a request for `name` goes where it goes, in one line (for logs and a newcomer)."""
        engine = self.resolve(name)
        if engine != name:
            return f"{name} -> {engine}: chosen for the {name} role in the model library"
        if name in self.remote:
            return f"{name}: served by {self.remote[name].base_url} (settings: {name}.base_url)"
        if name in self.local:
            return f"{name}: the engine registered under this name ({self.local[name].model_label})"
        return f"{name}: no such engine"

    def engine(self, name: str) -> Engine:
        """The engine behind a name or role, to read or change its settings (to run it: lease it)."""
        return self.named(self.resolve(name))

    def named(self, name: str) -> Engine:
        """The engine registered under exactly this name (a lease's, resolved when it was taken)."""
        return self.local[name] if name in self.local else self.remote[name]

    def own(self, name: str) -> Engine | None:
        """The local engine registered under exactly this name (a role's own, not its route)."""
        return self.local.get(name)

    def config(self, name: str) -> RemoteRole:
        """The settings of the engine behind a name or role (ChatModel, VisionModel, ImageModel)."""
        return self.engine(name).cfg

    def label(self, name: str) -> str:
        return self.engine(name).model_label

    def check_files(self, name: str) -> None:
        """The engine's files are there and of the right kind (raises ModelMissing); loads nothing."""
        self.engine(name).check_files()

    @property
    def names(self) -> list[str]:
        """Every name a request may use: engines, remote roles, and routed roles."""
        return [*self.local, *self.remote, *(role for role in self._routes if role not in self.local)]
