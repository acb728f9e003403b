"""Full-text search of messages that finds Korean words with their particles attached.

SQLite FTS5's trigram tokenizer cannot match a two-syllable query ("서울" is two characters,
its minimum is three), and most Korean nouns are two syllables. So the index holds derived
tokens in a plain unicode61 FTS5 table, made by the document search's tokenizer
(core.tokens.tokenize): every Hangul run as its overlapping syllable bigrams ("서울에서" →
서울 울에 에서), every other word lower-cased. A query becomes the same tokens
as one phrase (consecutive, in order): "서울" matches "서울에서", "서울에서" matches only that
sequence. A one-syllable Hangul query has no bigram; it is matched by LIKE instead.
"""
from __future__ import annotations

from core.tokens import HANGUL, tokenize

CANDIDATES = 1000  # matches ranked by relevance when no filter narrows the search


def index_tokens(text: str) -> str:
    """The text as the space-separated tokens the FTS table stores: the document search's own
    tokenizer (core.tokens.tokenize: Hangul bigrams, other words whole)."""
    return " ".join(tokenize(text))


async def index_turn(db, turn_id: int, text: str) -> None:
    """Put a turn's text in the search index (or replace what it had); the caller commits."""
    await db.execute("INSERT OR REPLACE INTO turn_search (rowid, tokens) VALUES (?, ?)", (turn_id, index_tokens(text)))


def match_query(query: str) -> str | None:
    """An FTS5 MATCH expression for the query (each word a phrase, all required), or None
    when a word is a single Hangul syllable (the caller falls back to LIKE)."""
    phrases = []
    for word in query.split():
        tokens = tokenize(word)
        if not tokens:
            continue
        if len(tokens) == 1 and len(tokens[0]) == 1 and HANGUL.match(tokens[0]):
            return None
        phrases.append('"' + " ".join(tokens) + '"')  # tokens hold no quotes: letters and digits only
    return " AND ".join(phrases) if phrases else None


def highlights(text: str, query: str) -> list[tuple[int, int]]:
    """Where the query's words occur in the text (case-insensitive), as (start, end) offsets."""
    spans = []
    lowered = text.lower()
    for word in {w.lower() for w in query.split() if w}:
        start = lowered.find(word)
        while start >= 0:
            spans.append((start, start + len(word)))
            start = lowered.find(word, start + len(word))
    return sorted(spans)


def snippet(text: str, query: str, width: int = 160) -> dict:
    """A window of the text around the first match, with the matches' offsets in it."""
    spans = highlights(text, query)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - width // 3, len(text) - width))
    end = min(len(text), start + width)
    window = text[start:end]
    inside = [(a - start, b - start) for a, b in spans if a >= start and b <= end]
    return {"text": ("…" if start else "") + window + ("…" if end < len(text) else ""),
            "highlights": [[a + (1 if start else 0), b + (1 if start else 0)] for a, b in inside]}


async def search(db, query: str, session_id: str | None = None, start: str | None = None, end: str | None = None,
                 emotion: str | None = None, intent: str | None = None, limit: int = 30) -> list[dict]:
    """Turns whose text (or whose session's title) has the query, best first (FTS5's bm25;
    title hits after text hits), each with its session title and a highlighted snippet."""
    where, params = ["1 = 1"], {"q": query, "limit": limit, "like": f"%{_escape_like(query.strip())}%"}
    for clause, key, value in (("t.session_id = :session_id", "session_id", session_id),
                               ("date(t.created) >= :start", "start", start), ("date(t.created) <= :end", "end", end),
                               ("l.emotion = :emotion", "emotion", emotion), ("l.intent = :intent", "intent", intent)):
        if value:
            where.append(clause)
            params[key] = value
    expression = match_query(query)
    if expression is not None:
        params["match"] = expression
        # Relevance among the most recent matches: scoring every match of a common word (a third
        # of 100,000 turns) costs ~100 ms; the newest CANDIDATES cost a few (bench/search.py).
        cap = "" if len(where) > 1 else f"ORDER BY rowid DESC LIMIT {CANDIDATES}"
        found = f"""SELECT rowid AS id, bm25(turn_search) AS rank FROM turn_search WHERE turn_search MATCH :match {cap}"""
    else:  # a single Hangul syllable: no bigram to look up
        found = "SELECT id, 0.0 AS rank FROM turns WHERE text LIKE :like ESCAPE '\\'"
    sql = f"""WITH found AS ({found})
              SELECT t.id AS id, t.session_id, t.role, t.text, t.created, s.title, f.rank AS rank, 0 AS by_title
              FROM found f JOIN turns t ON t.id = f.id JOIN sessions s ON s.id = t.session_id
              LEFT JOIN turn_labels l ON l.turn_id = t.id
              WHERE {" AND ".join(where)}
              UNION ALL
              SELECT t.id, t.session_id, t.role, t.text, t.created, s.title, 0.0, 1 FROM sessions s
              JOIN turns t ON t.id = (SELECT MIN(id) FROM turns WHERE session_id = s.id)
              LEFT JOIN turn_labels l ON l.turn_id = t.id
              WHERE s.title LIKE :like ESCAPE '\\' AND {" AND ".join(where)}
              ORDER BY by_title, rank, id DESC LIMIT :limit"""
    results, seen = [], set()
    async with db.execute(sql, params) as cur:
        async for row in cur:
            if row["id"] in seen:
                continue  # a turn found by its text and its session's title: once
            seen.add(row["id"])
            results.append({"turn_id": row["id"], "session_id": row["session_id"], "session_title": row["title"],
                            "role": row["role"], "created": row["created"], "matched": "title" if row["by_title"]
                            else "text", "snippet": snippet(row["text"], query)})
    return results


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
