"""Small input helpers the routers share: a title made safe, a date query parameter."""
from __future__ import annotations

import re
from datetime import date

from core.errors import BadRequest, InvalidInput


def clean_title(title: str, limit: int) -> str:
    """One line, no control characters, at most `limit` characters (else an error)."""
    title = " ".join("".join(ch if ch.isprintable() else " " for ch in title).split())
    if len(title) > limit:
        raise InvalidInput(f"title is too long: {len(title)} characters, at most {limit}", code="title_too_long")
    return title


def require_text(text: str, field: str, limit: int, code: str) -> str:
    """A text field that must have something in it and fit its limit (422 `empty_<code>` or
    `<code>_too_long`, naming the field); returned as it came."""
    if not text.strip():
        raise InvalidInput(f"{field} must not be empty", code=f"empty_{code}")
    if len(text) > limit:
        raise InvalidInput(f"{field} is too long: {len(text)} characters, at most {limit}", code=f"{code}_too_long")
    return text


def parse_day(value: str | None, name: str) -> str | None:
    """A YYYY-MM-DD query parameter (None when absent); a clear 400 for anything else."""
    if value is None or value == "":
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise BadRequest(f"{name} must be a date like 2026-11-29 (got {value[:40]!r})", code="invalid_date")
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{name} is not a real date: {value}", code="invalid_date") from exc
    return value
