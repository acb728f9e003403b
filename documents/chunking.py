"""Split document text into chunks that follow its structure: headings, paragraphs, sentences.

A chunk packs whole paragraphs up to `size` characters; a paragraph too long for one chunk is
split at sentence ends (Korean endings such as "-다." "-요." "-까?" end with the same marks),
and only a sentence longer than a chunk is cut mid-way. Neighbouring chunks share about
`overlap` characters; each chunk starts with its section heading, so it reads on its own.
"""
from __future__ import annotations

import re

from core.contracts import Chunk
from documents.parsing import Section

HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S")
SENTENCE_END = re.compile(r"(?<=[.!?。？！…])\s+|\n")


def _pieces(paragraph: str, size: int) -> list[str]:
    if len(paragraph) <= size:
        return [paragraph]
    pieces: list[str] = []
    for sentence in (s.strip() for s in SENTENCE_END.split(paragraph)):
        while len(sentence) > size:  # one sentence longer than a chunk: cut it
            pieces.append(sentence[:size])
            sentence = sentence[size:]
        if sentence:
            pieces.append(sentence)
    return pieces


def _tail(text: str, overlap: int) -> str:
    """The last ~overlap characters, starting at a sentence or word boundary when there is one."""
    if overlap <= 0 or len(text) <= overlap:
        return text if overlap > 0 else ""
    tail = text[-overlap:]
    for boundary in (SENTENCE_END, re.compile(r"\s+")):
        match = boundary.search(tail)
        if match and match.end() < len(tail):
            return tail[match.end():]
    return tail


def chunk_sections(sections: list[Section], size: int = 1000, overlap: int = 100) -> list[Chunk]:
    overlap = min(overlap, size // 2)
    chunks: list[Chunk] = []
    for section in sections:
        heading = ""
        current = ""
        for paragraph in re.split(r"\n\s*\n", section.text):
            paragraph = paragraph.strip()
            if not paragraph:
                continue
            first_line = paragraph.splitlines()[0]
            if HEADING.match(first_line):
                if current.strip() and current.strip() != heading:
                    chunks.append(Chunk(len(chunks), current.strip(), section.page, section.by_ocr))
                heading = first_line.strip()
                current = heading + "\n"
                paragraph = paragraph[len(first_line):].strip()
                if not paragraph:
                    continue
            for piece in _pieces(paragraph, size):
                if len(current) + len(piece) + 1 > size and current.strip() and current.strip() != heading:
                    chunks.append(Chunk(len(chunks), current.strip(), section.page, section.by_ocr))
                    carried = _tail(current, overlap)
                    current = (heading + "\n" if heading and not carried.startswith(heading) else "") + carried
                current = f"{current.rstrip()}\n{piece}" if current.strip() else piece
        if current.strip() and current.strip() != heading:
            chunks.append(Chunk(len(chunks), current.strip(), section.page, section.by_ocr))
    return chunks
