"""The document library: upload, list (with a re-embedding's progress), delete, attach to a
conversation, and search."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from core.errors import AppError, BadRequest, UnsupportedMediaType
from web.json_body import read_json
from web.services import Library

router = APIRouter(prefix="/api")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(5, ge=1, le=50)


class AttachRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str


@router.post("/documents", status_code=201)
async def upload_document(request: Request, library: Library) -> JSONResponse:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > library.max_bytes + 64 * 1024:
        raise AppError(f"upload too large: {declared} bytes, at most {library.max_bytes}",
                       code="file_too_large", status=413)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the file as multipart/form-data in the field 'file'")
    try:
        form = await request.form(max_files=1, max_fields=4)
    except Exception as exc:  # malformed multipart bodies
        raise BadRequest(f"malformed upload: {exc}", code="malformed_upload") from exc
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise BadRequest("no file: send it in the multipart field 'file'", code="missing_file")
    data = await upload.read(library.max_bytes + 1)
    session_id = form.get("session_id") or None
    if session_id is not None and not isinstance(session_id, str):
        raise BadRequest("session_id: a text field, not a file", code="invalid_session_id")
    document, created = await library.upload(upload.filename or "", data, session_id)
    return JSONResponse(document | {"duplicate": not created}, status_code=201 if created else 200)


@router.get("/documents")
async def list_documents(request: Request, library: Library) -> dict:
    return {"documents": await library.list(), "reindex": library.reindex_state(), "ocr": library.ocr_status()}


@router.delete("/documents/{document_id}")
async def delete_document(document_id: str, request: Request, library: Library) -> dict:
    await library.delete(document_id)
    return {"deleted": document_id}


@router.post("/documents/{document_id}/attach")
async def attach_document(document_id: str, request: Request, library: Library) -> dict:
    body = await read_json(request, AttachRequest)
    await library.attach(document_id, body.session_id)
    return await library.get(document_id)


@router.post("/rag/search")
async def rag_search(request: Request, library: Library) -> dict:
    body = await read_json(request, SearchRequest)
    if not body.query.strip():
        raise AppError("query must not be empty", code="empty_query", status=422)
    hits = await library.search(body.query.strip(), body.k)
    return {"hits": [{"document_id": h.document_id, "name": h.name, "page": h.page, "text": h.text,
                      "score": h.score, "similarity": h.similarity, "keyword_score": h.keyword_score,
                      "chunk_id": h.chunk_id, "ocr": h.ocr} for h in hits]}
