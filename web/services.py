"""What a route may ask for, one dependency each (FastAPI `Depends`, as llama-cpp-python's
server hands out its settings and model): a route names the few things it uses, never a
container of everything. chat.py puts them on `app.state` at start. They are `async def` on
purpose: FastAPI runs a plain `def` dependency in its thread pool, a hop per dependency per
request (it reordered concurrent arrivals and added TTFT in bench/swap.py and bench/openai_api.py)."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from analytics.labeller import TurnAnalyzer
from catalog.library import ModelLibrary
from core.errors import AppError
from documents.library import DocumentLibrary
from mark.runner import MarkRunner
from memories.book import MemoryBook
from models.embedder import SharedEmbedder
from sandbox.runs import Sandbox
from settings import Settings, env_name
from store import Stores as StoresType
from store.image_files import ImageStore
from store.labels import LabelStore
from store.personas import PersonaStore
from store.runs import RunStore
from store.sessions import SessionStore
from turns.chat_tools import Confirmations
from turns.context_memory import ConversationWindows
from turns.memory_proposals import Proposer
from vram_guard import ModelSlot


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _slot(request: Request) -> ModelSlot:
    return request.app.state.slot


async def _embedder(request: Request) -> SharedEmbedder:
    return request.app.state.embedder


async def _images(request: Request) -> ImageStore:
    return request.app.state.images


async def _sessions(request: Request) -> SessionStore:
    return request.app.state.stores.sessions


async def _labels(request: Request) -> LabelStore:
    return request.app.state.stores.labels


async def _runs(request: Request) -> RunStore:
    return request.app.state.stores.runs


async def _library(request: Request) -> DocumentLibrary:
    return request.app.state.library


async def _models(request: Request) -> ModelLibrary:
    models = request.app.state.models
    if models is None:  # only before the start has finished
        raise AppError("the model library is not ready yet", code="models_unavailable", status=503)
    return models


async def _confirmations(request: Request) -> Confirmations:
    return request.app.state.confirmations


async def _sandbox_or_none(request: Request) -> Sandbox | None:
    return request.app.state.sandbox


async def _marks(request: Request) -> MarkRunner:
    marks = request.app.state.marks
    if marks is None:
        raise AppError("the benchmark is not ready yet", code="bench_unavailable", status=503)
    return marks


def _started(name: str, what: str, code: str = "not_ready"):
    """A dependency on what the app sets on `app.state.<name>` as it starts: 503 before that."""
    async def dependency(request: Request):
        made = getattr(request.app.state, name)
        if made is None:  # only before the start has finished
            raise AppError(f"{what} not ready yet", code=code, status=503)
        return made
    return dependency


async def _personas(request: Request) -> PersonaStore:
    return request.app.state.stores.personas


async def _stores(request: Request) -> Stores:
    return request.app.state.stores


async def _models_or_none(request: Request) -> ModelLibrary | None:
    return request.app.state.models


async def _analyzer(request: Request) -> TurnAnalyzer:
    """The turn labeller; 503 when analysis is off."""
    analyzer = request.app.state.analyzer
    if analyzer is None:
        raise AppError(f"turn analysis is off: set {env_name('analysis', 'enabled')}=true and restart", code="analysis_off",
                       status=503)
    return analyzer


async def _analyzer_or_none(request: Request) -> TurnAnalyzer | None:
    return request.app.state.analyzer


AppSettings = Annotated[Settings, Depends(_settings)]
Slot = Annotated[ModelSlot, Depends(_slot)]
Embedder = Annotated[SharedEmbedder, Depends(_embedder)]
Images = Annotated[ImageStore, Depends(_images)]
Sessions = Annotated[SessionStore, Depends(_sessions)]
Labels = Annotated[LabelStore, Depends(_labels)]
Runs = Annotated[RunStore, Depends(_runs)]
Library = Annotated[DocumentLibrary, Depends(_library)]
Models = Annotated[ModelLibrary, Depends(_models)]
MaybeModels = Annotated[ModelLibrary | None, Depends(_models_or_none)]
ToolConfirmations = Annotated[Confirmations, Depends(_confirmations)]
Marks = Annotated[MarkRunner, Depends(_marks)]
Stores = Annotated[StoresType, Depends(_stores)]
MaybeSandbox = Annotated[Sandbox | None, Depends(_sandbox_or_none)]
SandboxDep = Annotated[Sandbox, Depends(_started("sandbox", "the sandbox is", "sandbox_unavailable"))]
Analyzer = Annotated[TurnAnalyzer, Depends(_analyzer)]
MaybeAnalyzer = Annotated[TurnAnalyzer | None, Depends(_analyzer_or_none)]
Windows = Annotated[ConversationWindows, Depends(_started("windows", "the conversations are"))]
Personas = Annotated[PersonaStore, Depends(_personas)]
Memories = Annotated[MemoryBook, Depends(_started("memories", "memories are"))]
MemoryProposer = Annotated[Proposer, Depends(_started("proposer", "memories are"))]
