"""Typed errors raised by engines, stores and routes.

chat.py turns every AppError into {"error": {"code", "message"}} with its status, or into
an error frame once an SSE stream has started. Messages say what to do next.

One status per kind of input failure, on every route (README, "Errors"):
    400  the body cannot be read as what the route takes (not JSON, not UTF-8, a bad query format)
    413  the body (bytes) is over the route's size limit
    415  a media type the route does not take (an upload, an image format)
    422  it was read, and a field breaks a rule: empty, too long, out of range, unknown value
    404  what it names does not exist; 409 a conflict with what is stored
(/v1 answers 422 as 400, as OpenAI does.)
"""
from __future__ import annotations

from typing import Any

from settings import env_name


class AppError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds; sent as a Retry-After header
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class InvalidInput(AppError):
    """A field that was read but breaks a rule (empty, too long, out of range)."""

    status = 422
    code = "invalid_request"


class NotFound(AppError):
    status = 404
    code = "not_found"


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"


class ModelMissing(AppError):
    """The configured model file is absent or not a model of the expected format."""

    status = 503
    code = "model_missing"


class ModelLoadError(AppError):
    """The file exists but the library refused to load it. `oom`: probably out of memory."""

    status = 503
    code = "model_load_failed"

    def __init__(self, message: str, *, oom: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.oom = oom


class SlotBusy(AppError):
    """Too many requests already wait for this model."""

    status = 429
    code = "queue_full"


class ModelCoolingDown(AppError):
    """The model failed to load recently; it is not tried again until the cooldown ends."""

    status = 503
    code = "model_cooling_down"


class ModelTooLarge(AppError):
    """The model's VRAM estimate exceeds the whole budget: it can never be loaded as set."""

    status = 507
    code = "model_too_large"


class ContextOverflow(AppError):
    """Even the system prompt and the new message alone do not fit the context window."""

    status = 413
    code = "context_overflow"


class BadUpload(AppError):
    """A document upload that cannot be used (type, encoding, damage, size, name)."""

    status = 400
    code = "bad_upload"


class BadImage(AppError):
    """An image that cannot be used (not an image, damaged, too large)."""

    status = 400
    code = "invalid_image"


class StorageFull(AppError):
    """The disk (or the database's own size limit) is full: nothing more can be saved."""

    status = 507
    code = "storage_full"


class StorageError(AppError):
    """The data folder could not be written for another reason (permissions, I/O)."""

    status = 507
    code = "storage_error"


def storage_error(exc: BaseException) -> AppError | None:
    """The typed error for a failed write to the data folder (SQLite, files), or None."""
    import errno
    import sqlite3

    advice = (f"Free some disk space where the data folder is ({env_name('paths', 'data')}); what was saved before is "
              "kept, and the server carries on once there is room")
    if isinstance(exc, sqlite3.Error) and "full" in str(exc).lower():
        return StorageFull(f"the database could not save: {exc}. {advice}")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"no space left to save ({exc.strerror}). {advice}")
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
        return AppError(f"the database is busy ({exc}); try again", code="storage_busy", status=503, retry_after=1)
    if isinstance(exc, (sqlite3.DatabaseError, PermissionError)):
        return StorageError(f"the data folder could not be written: {type(exc).__name__}: {exc}. Check the disk "
                            f"and the folder's permissions ({env_name('paths', 'data')})")
    return None
