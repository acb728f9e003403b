"""The second sink: every store's records appended to data/logs/turns-YYYY-MM-DD.jsonl, so a
turn survives even a damaged database and exports can be rebuilt from them."""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from store.db import now_iso

log = logging.getLogger(__name__)


class JsonlLog:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, event: str, record: dict) -> None:
        """A failure here (a full disk) is logged, not raised: SQLite has the record."""
        path = self.folder / f"turns-{datetime.now(UTC):%Y-%m-%d}.jsonl"
        line = json.dumps({"event": event, "at": now_iso(), **record}, ensure_ascii=False)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            log.warning("JSONL log not written (%s): %s", path.name, exc)
