"""An export with its pictures (`GET /api/export?format=json&include_images=true`): a zip of
`export.json` and `images/<id>.png`, read back safely. Only those entries, where the format
puts them: no `..`, no absolute paths, no links, nothing else; the total unpacked size and each
entry's compression ratio are capped (a zip bomb stops at the cap, whatever its header says).
The pictures' bytes are untrusted here: the image store re-decodes each before it is kept.
"""
from __future__ import annotations

import io
import re
import stat
import zipfile
from dataclasses import dataclass

from core.errors import AppError, BadRequest, InvalidInput

RECORD = "export.json"
PICTURE = re.compile(r"images/([0-9a-f]{32})\.png")
MAX_ENTRIES = 50_000
MAX_UNPACKED_BYTES = 2 * 1024 ** 3  # the whole export, unpacked
MAX_RATIO = 200  # unpacked / packed past RATIO_FREE_BYTES (PNGs barely compress; a bomb inflates 1000x)
RATIO_FREE_BYTES = 16 * 1024 ** 2  # an entry this small is no bomb, however well it compresses
CHUNK = 1 << 20


@dataclass(frozen=True)
class Bundle:
    record: bytes  # export.json
    pictures: dict[str, bytes]  # image id -> the entry's bytes, not yet decoded


def read_bundle(raw: bytes, max_unpacked: int = MAX_UNPACKED_BYTES) -> Bundle:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadRequest(f"not a readable zip: {exc}", code="invalid_import") from exc
    if len(entries) > MAX_ENTRIES:
        raise _bomb(f"{len(entries)} entries in the zip, at most {MAX_ENTRIES}")
    record, pictures, budget = None, {}, max_unpacked
    with archive:
        for entry in entries:
            if entry.is_dir():
                if entry.filename != "images/":
                    raise InvalidInput(f"unexpected folder {entry.filename[:80]!r} in the zip", code="unsafe_archive")
                continue
            kind = _check_entry(entry)
            data = _read(archive, entry, budget)
            budget -= len(data)
            if kind == RECORD:
                record = data
            else:
                pictures[kind] = data
    if record is None:
        raise InvalidInput(f"the zip has no {RECORD}: use the file 내보내기 → JSON with pictures made",
                           code="invalid_import")
    return Bundle(record, pictures)


def _check_entry(entry: zipfile.ZipInfo) -> str:
    """RECORD, or the picture's id; refused: any other name or a link."""
    _check_name(entry.filename)
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise InvalidInput(f"the zip entry {entry.filename[:80]!r} is a link: refused", code="unsafe_archive")
    if entry.filename == RECORD:
        return RECORD
    match = PICTURE.fullmatch(entry.filename)
    if match is None:
        raise InvalidInput(f"unexpected zip entry {entry.filename[:80]!r}: an export holds {RECORD} and "
                           "images/<id>.png only", code="unsafe_archive")
    return match.group(1)


def _check_name(name: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts or "\x00" in name:
        raise InvalidInput(f"the zip entry {name[:80]!r} points outside the export: refused", code="unsafe_archive")


def _read(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, budget: int) -> bytes:
    """The entry's bytes, stopping as soon as it passes the budget or its ratio cap (the header's
    sizes are not trusted)."""
    limit = min(budget, max(RATIO_FREE_BYTES, entry.compress_size * MAX_RATIO))
    if entry.file_size > limit:
        raise _bomb(f"{entry.filename[:80]!r} unpacks to {entry.file_size} bytes")
    parts, size = [], 0
    try:
        with archive.open(entry) as stream:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise _bomb(f"{entry.filename[:80]!r} unpacks past {limit} bytes")
                parts.append(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise BadRequest(f"the zip entry {entry.filename[:80]!r} cannot be read: {exc}",
                         code="invalid_import") from exc
    return b"".join(parts)


def _bomb(message: str) -> AppError:
    return AppError(f"refused as a zip bomb: {message}", code="zip_bomb", status=413)
