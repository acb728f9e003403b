"""Reading a JSON request body with a clear 4xx for each way it can be wrong."""
from __future__ import annotations

import json
from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from core.errors import AppError, BadRequest, UnsupportedMediaType

MAX_JSON_BYTES = 1024 * 1024
M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, model: type[M], max_bytes: int = MAX_JSON_BYTES) -> M:
    """Parse a JSON body into `model`: 415 wrong type, 413 too large, 400 malformed, 422 invalid."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType(f"send the body as application/json (got {content_type or 'no content type'})")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:  # refuse before reading it all
        raise AppError(f"request body is too large: {declared} bytes, at most {max_bytes}",
                       code="body_too_large", status=413)
    body = await request.body()
    if len(body) > max_bytes:
        raise AppError(f"request body is too large: {len(body)} bytes, at most {max_bytes}",
                       code="body_too_large", status=413)
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}", code="malformed_json") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AppError(describe_invalid(exc), code="invalid_request", status=422) from exc


def describe_invalid(exc: ValidationError | RequestValidationError) -> str:
    """The first problem of a validation error, as `field: message`."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return f"{where}: {first.get('msg', 'invalid value')}"
