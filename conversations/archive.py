"""The full record of conversations out (`export_sessions`) and back in (`import_archive`).

Import is one transaction (a bad file changes nothing), idempotent (a session already here
with the same turns is skipped) and never overwrites: a session id that is here with other
content is refused (409). Turn ids are given anew (they are numbered per database); the tree,
the branch on show, labels and feedback come back as they were, and with an export that
carries its pictures (conversations/bundle.py) the pictures too, each re-decoded first. The
texts obey the chat's own limits; the JSON is read through the same door as request bodies.
"""
from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conversations.formats import EXPORT_FORMAT, EXPORT_VERSION
from core.errors import AppError, InvalidInput
from core.json_input import parse_json
from core.threads import run_blocking
from store.db import now_iso
from store.image_files import ImageStore
from store.runs import RunStore
from store.sessions import TURN_METRICS, SessionStore

RUN_FIELDS = ("id", "turn_id", "block", "language", "code", "stdout", "stderr", "exit_code", "timed_out", "killed", "reason",
              "duration_ms", "images", "isolation", "created")

IMAGE_ID = r"^[0-9a-f]{32}$"
ANSWER_CHARS_PER_MESSAGE_CHAR = 8  # an answer may be longer than a message: 8 x the message limit

MAX_IMPORT_TURNS = 200_000


# ---- out ---------------------------------------------------------------------------------------
async def export_sessions(store: SessionStore, session_id: str | None = None, start: str | None = None,
                          end: str | None = None, runs: RunStore | None = None) -> list[dict]:
    """Sessions with their whole trees (labels, feedback, sources, image references, and with
    `runs` their code runs), oldest first; with a date range, the sessions that have a turn in it."""
    sessions = [await store.get_session(session_id)] if session_id else (await store.list_sessions())[::-1]
    exported = []
    for session in sessions:
        turns = await store.list_turns(session["id"], whole_tree=True)
        days = [turn["created"][:10] for turn in turns]
        if (start or end) and not any((not start or d >= start) and (not end or d <= end) for d in days):
            continue
        record = _session_record(session, turns, await store.generations.of_session(session["id"]))
        if runs is not None:
            record["runs"] = [{key: run[key] for key in RUN_FIELDS} for run in await runs.list(session["id"])]
        exported.append(record)
    return exported


def _session_record(session: dict, turns: list[dict], generations: list[dict]) -> dict:
    record = {key: session[key] for key in ("id", "title", "created", "updated", "active_leaf")}
    record["turns"] = []
    for turn in turns:
        item = {key: turn[key] for key in ("id", "parent_id", "role", "kind", "text", "created", "sources", "images",
                                           "labels", *TURN_METRICS)}
        item["feedback"] = {"rating": turn["rating"], "comment": turn["comment"]} if turn["rating"] is not None else None
        record["turns"].append(item)
    record["generations"] = [{k: g[k] for k in ("image_id", "prompt", "seed", "model", "params", "timings", "created")}
                             for g in generations]
    return record


def archive(sessions: list[dict], memories: list[dict] | None = None) -> dict:
    """The JSON export; `memories` (what the assistant remembers) travel with a whole export."""
    record = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported": now_iso(), "sessions": sessions}
    return record | ({"memories": memories} if memories is not None else {})


# ---- in ----------------------------------------------------------------------------------------
class ImportedKeyword(BaseModel):
    term: str = Field(min_length=1, max_length=200)
    score: float


class ImportedLabels(BaseModel):
    model_config = ConfigDict(extra="ignore")
    emotion: str | None = None
    emotion_score: float | None = None
    emotion_scores: dict[str, float] | None = None
    emotion_model: str | None = None
    intent: str | None = None
    intent_score: float | None = None
    intent_model: str | None = None
    keywords: list[ImportedKeyword] = Field(default_factory=list)
    keyword_model: str | None = None
    created: str | None = None


class ImportedFeedback(BaseModel):
    rating: Literal[1, -1, 0]
    comment: str = Field("", max_length=2000)


class ImportedTurn(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())
    id: int
    parent_id: int | None
    role: Literal["user", "assistant"]
    kind: Literal["chat", "image"] = "chat"
    text: str
    created: str = Field(min_length=10, max_length=40)
    sources: list[dict] = Field(default_factory=list)
    labels: ImportedLabels | None = None
    feedback: ImportedFeedback | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    finish_reason: str | None = None
    dropped_turns: int = 0
    images: list[str] = Field(default_factory=list, max_length=64)

    @field_validator("images")
    @classmethod
    def image_ids(cls, ids: list[str]) -> list[str]:
        if any(not re.fullmatch(IMAGE_ID, image_id) for image_id in ids):
            raise ValueError("image ids are 32 hex digits")
        return ids


class ImportedGeneration(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())
    image_id: str = Field(pattern=IMAGE_ID)
    prompt: str = Field(max_length=20_000)
    seed: int
    model: str = Field(max_length=500)
    params: dict
    timings: dict | None = None
    created: str = Field(min_length=10, max_length=40)


class ImportedRun(BaseModel):
    """A code run of the session (the sandbox's record: what ran, what it printed, its pictures)."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=IMAGE_ID)
    turn_id: int | None = None
    block: int | None = Field(None, ge=0, le=10_000)  # absent in archives made before runs knew their block
    language: Literal["python"] = "python"
    code: str = Field(max_length=200_000)
    stdout: str = Field(max_length=2_000_000)
    stderr: str = Field(max_length=2_000_000)
    exit_code: int | None = None
    timed_out: bool = False
    killed: bool = False
    reason: str | None = Field(None, max_length=40)
    duration_ms: float = Field(ge=0)
    images: list[str] = Field(default_factory=list, max_length=64)
    isolation: str = Field(max_length=40)
    created: str = Field(min_length=10, max_length=40)

    @field_validator("images")
    @classmethod
    def image_ids(cls, ids: list[str]) -> list[str]:
        return ImportedTurn.image_ids(ids)


class ImportedSession(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    title: str = Field("", max_length=500)
    created: str = Field(min_length=10, max_length=40)
    updated: str = Field(min_length=10, max_length=40)
    active_leaf: int | None = None
    turns: list[ImportedTurn]
    generations: list[ImportedGeneration] = Field(default_factory=list)
    runs: list[ImportedRun] = Field(default_factory=list)


class ImportedMemory(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1, max_length=300)
    persona_id: str | None = Field(None, max_length=64)
    enabled: bool = True
    source_session: str | None = Field(None, max_length=64)
    source_turn: int | None = None
    created: str | None = Field(None, max_length=40)
    updated: str | None = Field(None, max_length=40)
    used_count: int = Field(0, ge=0)
    last_used: str | None = Field(None, max_length=40)


class ImportedArchive(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["pkc-aione-export"]
    version: Literal[1]
    sessions: list[ImportedSession]
    memories: list[ImportedMemory] = Field(default_factory=list, max_length=100_000)


def parse_archive(raw: bytes, max_message_chars: int = 8000, max_title_chars: int = 500) -> ImportedArchive:
    """The export file read and checked: the JSON door's limits, the format, every tree, and
    the chat's limits on each text (a message at most `max_message_chars`)."""
    data = parse_json(raw.removeprefix(b"\xef\xbb\xbf"), "export file")
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise AppError("not a PKC AI-ONE export: use the file from 내보내기 → JSON (format \"pkc-aione-export\")",
                       code="invalid_import", status=400)
    try:
        parsed = ImportedArchive.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise AppError(f"invalid export file at {where}: {first.get('msg')}", code="invalid_import",
                       status=422) from exc
    if sum(len(s.turns) for s in parsed.sessions) > MAX_IMPORT_TURNS:
        raise AppError(f"too many turns in one import (at most {MAX_IMPORT_TURNS})", code="import_too_large", status=413)
    ids = [session.id for session in parsed.sessions]
    if len(set(ids)) != len(ids):  # found by the hypothesis test: two sessions of one id were a 507
        twice = next(i for i in ids if ids.count(i) > 1)
        raise AppError(f"session {twice} appears twice in the export file", code="invalid_import", status=422)
    for session in parsed.sessions:
        _check_tree(session)
        _check_texts(session, max_message_chars, max_title_chars)
    return parsed


def _check_texts(session: ImportedSession, max_message_chars: int, max_title_chars: int) -> None:
    """What the chat would not accept is not imported either."""
    if len(session.title) > max_title_chars:
        raise InvalidInput(f"session {session.id}: title is {len(session.title)} characters, at most "
                           f"{max_title_chars}", code="invalid_import")
    for turn in session.turns:
        limit = max_message_chars if turn.role == "user" else max_message_chars * ANSWER_CHARS_PER_MESSAGE_CHAR
        if len(turn.text) > limit:
            raise InvalidInput(f"session {session.id}, turn {turn.id}: {len(turn.text)} characters, at most {limit} "
                               f"for a{'' if turn.role == 'user' else 'n'} {'message' if turn.role == 'user' else 'answer'}",
                               code="invalid_import")


def _check_tree(session: ImportedSession) -> None:
    ids = [turn.id for turn in session.turns]
    if len(set(ids)) != len(ids):
        raise AppError(f"session {session.id}: a turn id appears twice", code="invalid_import", status=422)
    known = set()
    for turn in sorted(session.turns, key=lambda t: t.id):
        if turn.parent_id is not None and turn.parent_id not in known:
            raise AppError(f"session {session.id}: turn {turn.id}'s parent {turn.parent_id} is not an earlier turn "
                           "of the session", code="invalid_import", status=422)
        known.add(turn.id)
    for run in session.runs:
        if run.turn_id is not None and run.turn_id not in known:
            raise AppError(f"session {session.id}: run {run.id}'s turn {run.turn_id} is not one of its turns",
                           code="invalid_import", status=422)
    if session.active_leaf is not None and session.active_leaf not in known:
        raise AppError(f"session {session.id}: active_leaf {session.active_leaf} is not one of its turns",
                       code="invalid_import", status=422)


def fingerprint(turns: list[dict] | list[ImportedTurn]) -> str:
    """The content of a session's tree, independent of how its turn ids are numbered."""
    rows = [t if isinstance(t, dict) else t.model_dump() for t in turns]
    rows.sort(key=lambda t: t["id"])
    position = {t["id"]: i for i, t in enumerate(rows)}
    canonical = [(position.get(t["parent_id"]), t["role"], t["kind"], t["text"], t["created"]) for t in rows]
    return hashlib.sha256(json.dumps(canonical, ensure_ascii=False).encode()).hexdigest()


async def import_archive(store: SessionStore, parsed: ImportedArchive, images: ImageStore | None = None,
                         pictures: dict[str, bytes] | None = None) -> dict:
    """Restore the sessions in one transaction; {"imported": [...], "skipped": [...]}. With
    `pictures` (an export with pictures): every one is re-decoded before anything is written,
    those of the imported turns are kept, and removed again if the rows cannot be committed."""
    plans, skipped = [], []
    for session in parsed.sessions:
        try:
            existing = await store.list_turns(session.id, whole_tree=True)
        except AppError:
            plans.append(session)
            continue
        if fingerprint(existing) != fingerprint(session.turns):
            raise AppError(f"session {session.id} is already here with different content; nothing was imported",
                           code="import_conflict", status=409)
        skipped.append(session.id)
    checked = await run_blocking(_reencoded, images, pictures or {})
    records = [session.model_dump() for session in plans]
    used = {image_id for record in records for item in [*record["turns"], *record["runs"]]
            for image_id in item["images"] if image_id in checked}
    written: list[str] = []
    try:
        for image_id in sorted(used):
            assert images is not None  # _reencoded refused pictures without a store
            generated = any(g["image_id"] == image_id for record in records for g in record["generations"]) or any(
                image_id in run["images"] for record in records for run in record["runs"])
            images.write_png(image_id, checked[image_id][0], generated)
            written.append(image_id)
        await store.import_sessions(records, {image_id: checked[image_id][1:] for image_id in used})
    except BaseException as exc:
        if images is not None:
            images.delete(written)  # the rows were not committed: no picture stays without them
        if isinstance(exc, sqlite3.IntegrityError):  # a run or picture id of the file is here already
            raise AppError(f"the export holds an id that is already here ({exc}); nothing was imported",
                           code="import_conflict", status=409) from exc
        raise
    return {"imported": [session.id for session in plans], "skipped": skipped, "pictures": len(used)}


def _reencoded(images: ImageStore | None, pictures: dict[str, bytes]) -> dict[str, tuple[bytes, int, int, int]]:
    """Every picture of the archive decoded and re-encoded (png, width, height, bytes): one bad
    picture refuses the import before anything is written."""
    if pictures and images is None:
        raise AppError("pictures cannot be imported here", code="invalid_import", status=422)
    checked = {}
    for image_id, data in pictures.items():
        assert images is not None
        png, width, height = images.reencode_png(data, f"images/{image_id}.png")
        checked[image_id] = (png, width, height, len(png))
    return checked
