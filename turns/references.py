"""Document passages for a question: retrieved from the library (all documents, or those
attached to the session) and written into the message the model sees, numbered as the
answer cites them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from documents.library import DocumentLibrary
from rag_engine import Hit

REFERENCES_INTRO = ("Answer using the numbered references below where they are relevant, and cite them "
                    "like [1]. If they do not answer the question, say so.")


def with_references(message: str, hits: list[Hit], budget_chars: int) -> tuple[str, list[dict[str, Any]]]:
    """The message as the model sees it, with numbered references within the budget, and the
    sources actually used (what the page shows and the turn records)."""
    parts, used = [REFERENCES_INTRO], 0
    sources: list[dict[str, Any]] = []
    for hit in hits:
        text = hit.text[: budget_chars - used]
        if not text:
            break
        used += len(text)
        n = len(sources) + 1
        where = ", ".join(([f"p. {hit.page}"] if hit.page else []) + (["OCR"] if hit.ocr else []))
        where = f" ({where})" if where else ""
        parts.append(f"[{n}] {hit.name}{where}:\n{text}")
        sources.append({"n": n, "document_id": hit.document_id, "name": hit.name, "page": hit.page, "ocr": hit.ocr,
                        "chunk_id": hit.chunk_id, "snippet": hit.text[:400], "score": hit.score})
    parts.append(f"Question: {message}")
    return "\n\n".join(parts), sources


@dataclass(frozen=True)
class References:
    """Where a turn's references come from: the library, within `scope` ("all", "session", "none"),
    or only `documents` (a persona's knowledge) when it names some."""

    library: DocumentLibrary
    scope: str = "all"
    budget_chars: int = 3000
    documents: frozenset[str] = frozenset()

    async def find(self, session_id: str | None, message: str) -> list[Hit] | None:
        """Passages for the message, or None when no document could take part (none ready,
        scope off, none attached to the session)."""
        library = self.library
        if self.scope == "none" or not await library.has_documents():
            return None
        if self.documents:
            return await library.search(message, None, set(self.documents))
        allowed = await library.session_documents(session_id) if self.scope == "session" and session_id else None
        if self.scope == "session" and not allowed:
            return None
        return await library.search(message, None, allowed)
