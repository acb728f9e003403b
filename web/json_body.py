"""The one door for JSON request bodies (every page route and /v1): 415 not application/json,
413 over the route's byte limit, then core/json_input.py's reading (400 unreadable, too deep,
too long a number; 422 a bad text), then 422 for a field the route's model refuses. All of it
before a route stores or streams anything.
"""
from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from core.errors import AppError, UnsupportedMediaType
from core.json_input import parse_json

MAX_JSON_BYTES = 1024 * 1024
M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, model: type[M], max_bytes: int = MAX_JSON_BYTES) -> M:
    """Parse a JSON body into `model` (see the module's table for the statuses)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType(f"send the body as application/json (got {content_type or 'no content type'})")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:  # refuse before reading it all
        raise _too_large(int(declared), max_bytes)
    body = await request.body()
    if len(body) > max_bytes:
        raise _too_large(len(body), max_bytes)
    return validated(parse_json(body), model)


def validated(data: Any, model: type[M]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AppError(describe_invalid(exc), code="invalid_request", status=422) from exc


def _too_large(size: int, limit: int) -> AppError:
    return AppError(f"request body is too large: {size} bytes, at most {limit}", code="body_too_large", status=413)


def describe_invalid(exc: ValidationError | RequestValidationError) -> str:
    """The first problem of a validation error, as `field: message`."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return f"{where}: {first.get('msg', 'invalid value')}"
