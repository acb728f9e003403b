"""What the app keeps on disk: one SQLite database (each store brings its own tables as
migrations) and the JSONL log every store writes beside it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from store import documents, labels, mark_runs, memories, model_choices, personas, runs, sessions, summaries
from store.db import Database
from store.documents import DocumentStore
from store.jsonl import JsonlLog
from store.labels import LabelStore
from store.mark_runs import MarkRunStore
from store.memories import MemoryStore
from store.model_choices import ModelChoiceStore
from store.personas import PersonaStore
from store.runs import RunStore
from store.sessions import SessionStore
from store.summaries import SummaryStore

# Every store's migrations, in the order they were written (their names are recorded as applied).
MIGRATIONS = sorted([*sessions.MIGRATIONS, *documents.MIGRATIONS, *labels.MIGRATIONS, *runs.MIGRATIONS,
                     *model_choices.MIGRATIONS, *mark_runs.MIGRATIONS, *summaries.MIGRATIONS,
                     *memories.MIGRATIONS, *personas.MIGRATIONS],
                    key=lambda migration: migration.__name__)


@dataclass(frozen=True)
class Stores:
    db: Database
    log: JsonlLog
    sessions: SessionStore
    documents: DocumentStore
    labels: LabelStore
    runs: RunStore
    models: ModelChoiceStore
    marks: MarkRunStore
    summaries: SummaryStore
    memories: MemoryStore
    personas: PersonaStore

    async def close(self) -> None:
        await self.db.close()


async def open_stores(db_path: Path, logs_dir: Path) -> Stores:
    """Open the database (migrated to this version) and the stores that share it."""
    db = await Database.open(db_path)
    await db.migrate(MIGRATIONS)
    log = JsonlLog(logs_dir)
    stores = Stores(db, log, SessionStore(db, log), DocumentStore(db, log), LabelStore(db, log), RunStore(db, log),
                    ModelChoiceStore(db, log), MarkRunStore(db, log), SummaryStore(db, log),
                    MemoryStore(db, log), PersonaStore(db, log))
    await stores.sessions.close_interrupted()
    await stores.marks.interrupted()
    return stores
