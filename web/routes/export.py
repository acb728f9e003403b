"""Export conversations (a download in one of formats.FORMATS) and import a JSON export."""
from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from urllib.parse import quote

from fastapi import APIRouter, Query, UploadFile
from fastapi.responses import Response, StreamingResponse

from conversations import formats
from conversations.archive import (
    archive,
    export_sessions,
    import_archive,
    parse_archive,
)
from conversations.bundle import Bundle, read_bundle
from core.errors import AppError, BadRequest, InvalidInput
from core.threads import run_blocking
from store.image_files import ImageStore
from web.params import parse_day
from web.services import AppSettings, Images, Memories, Runs, Sessions

router = APIRouter(prefix="/api")
MAX_IMPORT_BYTES = 200 * 1024 * 1024
MEDIA = {"json": "application/json", "markdown": "text/markdown; charset=utf-8", "openai": "application/jsonl",
         "sharegpt": "application/jsonl", "dpo": "application/jsonl", "openai-dpo": "application/jsonl"}


def _download(body, name: str, media: str) -> Response:
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store"}
    if isinstance(body, (bytes, str)):
        return Response(body, media_type=media, headers=headers)
    return StreamingResponse(body, media_type=media, headers=headers)


@router.get("/export")
async def export(store: Sessions, runs: Runs, settings: AppSettings, images: Images, memory: Memories,
                 format: str = Query("json"), session_id: str | None = None,
                 from_: str | None = Query(None, alias="from"), to: str | None = None,
                 min_rating: int | None = Query(None, ge=-1, le=1), all_branches: bool = False,
                 include_context: bool = False, include_images: bool = False) -> Response:
    if format not in formats.FORMATS:
        raise InvalidInput(f"unknown format {format[:40]!r}: use one of {', '.join(formats.FORMATS)}",
                         code="unknown_format")
    sessions = await export_sessions(store, session_id, parse_day(from_, "from"), parse_day(to, "to"), runs)
    system_prompt = settings.chat.system_prompt if include_context else None
    stamp = formats.EXPORT_FORMAT + ("-" + session_id[:8] if session_id else "")
    if format == "json":
        if min_rating is not None:
            sessions = [s for s in sessions if any((t["feedback"] or {}).get("rating", 0) >= min_rating
                                                   for t in s["turns"] if t["role"] == "assistant")]
        memories = await memory.store.all() if session_id is None else None  # a whole export carries them
        record = json.dumps(archive(sessions, memories), ensure_ascii=False, indent=1)
        if include_images:
            return _download(_zip({"export.json": record.encode()} | _image_files(images, sessions)),
                             f"{stamp}.zip", "application/zip")
        return _download(record, f"{stamp}.json", MEDIA[format])
    if format == "markdown":
        if session_id:
            return _download(formats.markdown(sessions[0]) if sessions else "", formats.markdown_name(sessions[0])
                             if sessions else f"{stamp}.md", MEDIA[format])
        return _download(_zip({formats.markdown_name(s): formats.markdown(s).encode() for s in sessions}),
                         f"{stamp}-markdown.zip", "application/zip")

    def lines() -> Iterator[str]:
        for session in sessions:
            if format in ("openai", "sharegpt"):
                records = formats.sft_records(session, format, all_branches, min_rating, system_prompt,
                                                include_context)
            else:
                records = formats.dpo_records(session, format, min_rating, system_prompt, include_context)
            for record in records:
                yield formats.line(record)

    return _download(lines(), f"{stamp}-{format}.jsonl", MEDIA[format])


def _image_files(images: ImageStore, sessions: list[dict]) -> dict[str, bytes]:
    files = {}
    for session in sessions:
        for item in [*session["turns"], *session.get("runs", [])]:  # turns' pictures and code runs' figures
            for image_id in item["images"]:
                path = images.path(image_id)
                if path.is_file():
                    files[f"images/{image_id}.png"] = path.read_bytes()
    return files


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive_file:
        for name, data in files.items():
            archive_file.writestr(name, data)
    return buffer.getvalue()


@router.post("/import")
async def import_export(sessions: Sessions, images: Images, settings: AppSettings, memory: Memories,
                        file: UploadFile | None = None) -> dict:
    """An export back in, JSON or the zip with its pictures: all of it or nothing; what is
    already here is skipped."""
    if file is None:
        raise BadRequest("send the export as the multipart field 'file'", code="missing_file")
    raw = await file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise AppError(f"import file is too large: at most {MAX_IMPORT_BYTES // (1024 * 1024)} MiB",
                       code="import_too_large", status=413)
    bundle = await run_blocking(read_bundle, raw) if raw[:2] == b"PK" else Bundle(raw, {})
    server = settings.server
    parsed = parse_archive(bundle.record, server.max_message_chars, server.max_title_chars)
    result = await import_archive(sessions, parsed, images, bundle.pictures)
    added = await memory.store.import_memories([item.model_dump() for item in parsed.memories])
    if added:
        await memory.reindex()  # the imported ones are encoded and found from now
    return result | {"memories_imported": added}
