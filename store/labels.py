"""Turn labels (emotion, intent, keywords) in SQLite, and the aggregates the dashboard draws.

Its tables are migration m005 (below); the database is shared with the other stores. A turn
is "unlabelled" until a row exists for it; a row is "stale" when its emotion or intent came from
another classifier than the current one (re-labelled on request)."""
from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import aiosqlite

from store.db import STREAMING, Database, now_iso
from store.jsonl import JsonlLog


async def m005_turn_labels(db: aiosqlite.Connection) -> None:
    # Emotion, intent and keywords of each turn (store/labels.py), each with what produced it.
    await db.execute(
        """CREATE TABLE turn_labels (
             turn_id INTEGER PRIMARY KEY REFERENCES turns(id) ON DELETE CASCADE,
             emotion TEXT,                  -- NULL: nothing to label (an empty turn)
             emotion_score REAL,
             emotion_scores TEXT,           -- JSON: every class's probability
             emotion_model TEXT,
             intent TEXT,                   -- user turns only
             intent_score REAL,
             intent_model TEXT,
             keywords TEXT NOT NULL DEFAULT '[]',  -- JSON: [{"term", "score"}], best first
             keyword_model TEXT,
             created TEXT NOT NULL)"""
    )
    await db.execute("CREATE INDEX turn_labels_by_emotion ON turn_labels(emotion)")
    # In how many labelled turns each term occurs: the IDF of the keywords' TF-IDF.
    await db.execute("CREATE TABLE term_frequency (term TEXT PRIMARY KEY, turns INTEGER NOT NULL)")
    await db.execute("CREATE INDEX turns_by_created ON turns(created)")


async def m008_turn_terms(db: aiosqlite.Connection) -> None:
    # The keywords' document frequencies, kept exact: each labelled turn's distinct terms, deleted
    # with the turn (a deleted session lowers them). It replaces m005's running counts, which only
    # grew; a turn labelled before keeps its top keywords as its terms.
    await db.execute("""CREATE TABLE turn_terms (
                          term TEXT NOT NULL,
                          turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
                          PRIMARY KEY (term, turn_id)) WITHOUT ROWID""")
    await db.execute("CREATE INDEX turn_terms_by_turn ON turn_terms(turn_id)")  # the cascade's lookup
    await db.execute("""INSERT OR IGNORE INTO turn_terms (term, turn_id)
                        SELECT json_extract(k.value, '$.term'), l.turn_id
                        FROM turn_labels l, json_each(l.keywords) k""")
    await db.execute("DROP TABLE term_frequency")


MIGRATIONS = [m005_turn_labels, m008_turn_terms]

PENDING_SQL = f"""
SELECT t.id, t.session_id, t.role, t.text, t.kind,
       EXISTS (SELECT 1 FROM images i WHERE i.turn_id = t.id) AS has_images,
       EXISTS (SELECT 1 FROM turns a WHERE a.parent_id = t.id AND a.sources IS NOT NULL) AS used_documents
FROM turns t LEFT JOIN turn_labels l ON l.turn_id = t.id
WHERE t.finish_reason IS NOT '{STREAMING}' AND {{condition}}
ORDER BY t.id LIMIT ?"""


class LabelStore:
    def __init__(self, db: Database, log: JsonlLog) -> None:
        self._db, self.log = db, log

    # ---- what is left to label ------------------------------------------------------------
    async def unlabelled(self, after: int, limit: int) -> list[dict]:
        """Turns without labels past turn `after` (the labeller's cursor: each batch reads only
        its own rows, where a scan from the start cost ~16 ms at 100,000 turns)."""
        return await self._pending("t.id > ? AND l.turn_id IS NULL", (after, limit))

    async def stale(self, emotion_model: str, intent_model: str, limit: int) -> list[dict]:
        condition = ("l.turn_id IS NOT NULL AND ((l.emotion_model IS NOT ? AND l.emotion IS NOT NULL) OR "
                     "(t.role = 'user' AND l.intent_model IS NOT ?))")
        return await self._pending(condition, (emotion_model, intent_model, limit))

    async def _pending(self, condition: str, params: tuple) -> list[dict]:
        async with self._db.execute(PENDING_SQL.format(condition=condition), params) as cur:
            return [dict(row) async for row in cur]

    async def counts(self, emotion_model: str, intent_model: str) -> dict:
        sql = f"""SELECT COUNT(*) AS turns, COUNT(l.turn_id) AS labelled,
                    SUM(l.turn_id IS NOT NULL AND ((l.emotion_model IS NOT :e AND l.emotion IS NOT NULL)
                        OR (t.role = 'user' AND l.intent_model IS NOT :i))) AS stale
                  FROM turns t LEFT JOIN turn_labels l ON l.turn_id = t.id
                  WHERE t.finish_reason IS NOT '{STREAMING}'"""
        async with self._db.execute(sql, {"e": emotion_model, "i": intent_model}) as cur:
            row = await cur.fetchone()
        return {"turns": row["turns"], "labelled": row["labelled"], "stale": row["stale"] or 0,
                "unlabelled": row["turns"] - row["labelled"]}

    # ---- TF-IDF's document frequencies -----------------------------------------------------
    async def document_frequency(self, terms: Iterable[str]) -> tuple[dict[str, int], int]:
        """(turns containing each term, labelled turns in all)."""
        terms = list(dict.fromkeys(terms))
        frequency: dict[str, int] = {}
        for start in range(0, len(terms), 500):
            part = terms[start:start + 500]
            sql = f"SELECT term, COUNT(*) AS turns FROM turn_terms WHERE term IN ({','.join('?' * len(part))}) GROUP BY term"
            async with self._db.execute(sql, part) as cur:
                frequency.update({row["term"]: row["turns"] async for row in cur})
        async with self._db.execute("SELECT COUNT(*) FROM turn_labels") as cur:
            total = (await cur.fetchone())[0]
        return frequency, total

    # ---- saving ----------------------------------------------------------------------------
    async def save(self, rows: list[dict], terms: dict[int, list[str]]) -> None:
        """Insert or update labels, committed and logged (see `write_labels`)."""
        async with self._db.writing() as db:
            await write_labels(db, rows, terms)
        for row in rows:
            self.log.write("labels", row)

    async def of_turns(self, turn_ids: list[int]) -> dict[int, dict]:
        """The labels these turns have so far, by turn id (a turn not yet labelled is absent)."""
        if not turn_ids:
            return {}
        rows = await self._db.rows(f"SELECT * FROM turn_labels WHERE turn_id IN ({','.join('?' * len(turn_ids))})",
                                   turn_ids)
        return {row["turn_id"]: label_json(row) for row in rows}

    # ---- what the dashboard draws ----------------------------------------------------------
    async def stats(self, start: str | None, end: str | None, session_id: str | None, bucket: str) -> dict:
        where, params = _filters(start, end, session_id)
        period = "date(t.created)" if bucket == "day" else "date(t.created, 'weekday 0', '-6 days')"
        emotions = await self._rows(
            f"""SELECT t.role, l.emotion AS label, COUNT(*) AS n FROM turns t JOIN turn_labels l ON l.turn_id = t.id
                WHERE {where} AND l.emotion IS NOT NULL GROUP BY t.role, l.emotion""", params)
        over_time = await self._rows(
            f"""SELECT {period} AS period, l.emotion AS label, COUNT(*) AS n FROM turns t
                JOIN turn_labels l ON l.turn_id = t.id
                WHERE {where} AND l.emotion IS NOT NULL AND t.role = 'user' GROUP BY period, l.emotion
                ORDER BY period""", params)
        intents = await self._rows(
            f"""SELECT l.intent AS label, COUNT(*) AS n FROM turns t JOIN turn_labels l ON l.turn_id = t.id
                WHERE {where} AND l.intent IS NOT NULL GROUP BY l.intent ORDER BY n DESC""", params)
        activity = await self._rows(
            f"""SELECT date(t.created) AS day, COUNT(*) AS n FROM turns t WHERE {where} AND t.role = 'user'
                GROUP BY day ORDER BY day""", params)
        figures = await self._rows(
            f"""SELECT {period} AS period, t.model, ROUND(AVG(t.tokens_per_s), 2) AS tokens_per_s,
                  ROUND(AVG(t.ttft_ms), 1) AS ttft_ms, SUM(t.completion_tokens) AS completion_tokens,
                  SUM(t.prompt_tokens) AS prompt_tokens, COUNT(*) AS answers
                FROM turns t WHERE {where} AND t.role = 'assistant' AND t.tokens_per_s IS NOT NULL
                GROUP BY period, t.model ORDER BY period""", params)
        models = await self._rows(
            f"""SELECT l.emotion_model, l.intent_model, l.keyword_model, COUNT(*) AS n FROM turns t
                JOIN turn_labels l ON l.turn_id = t.id WHERE {where}
                GROUP BY l.emotion_model, l.intent_model, l.keyword_model""", params)
        result = {
            "bucket": bucket,
            "emotion_share": _nested(emotions, "role"),
            "emotion_over_time": _nested(over_time, "period"),
            "intent_share": {row["label"]: row["n"] for row in intents},
            "top_keywords": await self._top_keywords(where, params),
            "activity": {row["day"]: row["n"] for row in activity},
            "model_figures": figures,
            "classifiers": models,
        }
        if session_id:
            result["timeline"] = await self._timeline(session_id)
        return result

    async def _top_keywords(self, where: str, params: dict, top: int = 30) -> list[dict]:
        """The period's terms by TF-IDF now: turns of the period that have the term, times its
        rarity in the whole history (a turn's stored scores were ranked against the history of
        its own day, which is small at first)."""
        turns: Counter[str] = Counter()
        sql = f"SELECT l.keywords FROM turns t JOIN turn_labels l ON l.turn_id = t.id WHERE {where}"
        async with self._db.execute(sql, params) as cur:
            async for row in cur:
                turns.update({item["term"] for item in json.loads(row["keywords"])})
        frequency, total = await self.document_frequency(turns)
        scored: list[dict[str, Any]] = [
            {"term": term, "score": round(count * _idf(frequency.get(term, 0), total), 3), "turns": count}
            for term, count in turns.items()]
        scored.sort(key=lambda item: (-item["score"], item["term"]))
        return scored[:top]

    async def _timeline(self, session_id: str) -> list[dict]:
        return await self._rows(
            """SELECT t.id, t.role, t.created, substr(t.text, 1, 80) AS snippet, l.emotion, l.emotion_score,
                 l.intent FROM turns t LEFT JOIN turn_labels l ON l.turn_id = t.id
               WHERE t.session_id = :session ORDER BY t.id""", {"session": session_id})

    async def sessions_for(self, start: str | None, end: str | None, emotion: str | None, intent: str | None,
                           keyword: str | None, day: str | None, limit: int = 50) -> list[dict]:
        """The sessions behind a chart's bar or slice (click-through), busiest first."""
        where, params = _filters(start, end, None)
        if emotion:
            where += " AND l.emotion = :emotion AND t.role = 'user'"
        if intent:
            where += " AND l.intent = :intent"
        if keyword:
            where += " AND EXISTS (SELECT 1 FROM json_each(l.keywords) k WHERE json_extract(k.value, '$.term') = :keyword)"
        if day:
            where += " AND date(t.created) = :day"
        sql = f"""SELECT s.id, s.title, s.updated, COUNT(*) AS turns FROM turns t
                  JOIN sessions s ON s.id = t.session_id LEFT JOIN turn_labels l ON l.turn_id = t.id
                  WHERE {where} GROUP BY s.id ORDER BY turns DESC, s.updated DESC LIMIT :limit"""
        return await self._rows(sql, params | {"emotion": emotion, "intent": intent, "keyword": keyword,
                                               "day": day, "limit": limit})

    async def _rows(self, sql: str, params: dict) -> list[dict]:
        async with self._db.execute(sql, params) as cur:
            return [dict(row) async for row in cur]


def _idf(frequency: int, total: int) -> float:
    return math.log((1 + total) / (1 + frequency)) + 1.0


async def write_labels(db: aiosqlite.Connection, rows: list[dict], terms: dict[int, list[str]]) -> None:
    """Insert or update label rows (the caller commits); `terms`: each newly labelled turn's
    distinct terms, counted once per turn in the keyword frequencies (a re-label keeps its
    keywords, so it passes none)."""
    for row in rows:
        await db.execute(
            """INSERT INTO turn_labels (turn_id, emotion, emotion_score, emotion_scores, emotion_model,
                 intent, intent_score, intent_model, keywords, keyword_model, created)
               VALUES (:turn_id, :emotion, :emotion_score, :emotion_scores, :emotion_model, :intent,
                 :intent_score, :intent_model, :keywords, :keyword_model, :created)
               ON CONFLICT(turn_id) DO UPDATE SET emotion = :emotion, emotion_score = :emotion_score,
                 emotion_scores = :emotion_scores, emotion_model = :emotion_model, intent = :intent,
                 intent_score = :intent_score, intent_model = :intent_model, created = :created""", _record(row))
    for turn_id, turn_terms in terms.items():
        await db.executemany("INSERT OR IGNORE INTO turn_terms (term, turn_id) VALUES (?, ?)",
                             [(term, turn_id) for term in turn_terms])


def _filters(start: str | None, end: str | None, session_id: str | None) -> tuple[str, dict]:
    where = [f"t.finish_reason IS NOT '{STREAMING}'"]
    if start:
        where.append("date(t.created) >= :start")
    if end:
        where.append("date(t.created) <= :end")
    if session_id:
        where.append("t.session_id = :session_id")
    return " AND ".join(where), {"start": start, "end": end, "session_id": session_id}


def _nested(rows: list[dict], key: str) -> dict[str, dict[str, int]]:
    nested: dict[str, dict[str, int]] = {}
    for row in rows:
        nested.setdefault(row[key], {})[row["label"]] = row["n"]
    return nested


def _record(row: dict) -> dict:
    return {
        "turn_id": row["turn_id"], "emotion": row.get("emotion"), "emotion_score": row.get("emotion_score"),
        "emotion_scores": json.dumps(row["emotion_scores"], ensure_ascii=False) if row.get("emotion_scores") else None,
        "emotion_model": row.get("emotion_model"), "intent": row.get("intent"),
        "intent_score": row.get("intent_score"), "intent_model": row.get("intent_model"),
        "keywords": json.dumps(row.get("keywords") or [], ensure_ascii=False),
        "keyword_model": row.get("keyword_model"), "created": row.get("created") or now_iso(),
    }


def label_json(row: dict) -> dict:
    """A turn_labels row as the page reads it (JSON columns parsed, no turn id)."""
    label = {key: value for key, value in row.items() if key != "turn_id"}
    label["emotion_scores"] = json.loads(label["emotion_scores"]) if label["emotion_scores"] else None
    label["keywords"] = json.loads(label["keywords"])
    return label
