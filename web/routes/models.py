"""The model library: every model file found, its settings, and which one serves each role."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from core.errors import InvalidInput
from web.json_body import read_json
from web.services import Models

router = APIRouter(prefix="/api/models")


class ActiveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    role: Literal["chat", "vision", "image"]
    model_id: str = Field(min_length=1, max_length=64)


class SettingsRequest(BaseModel):
    """Any of the model's settings (the library names the allowed ones); null returns one to its default."""
    model_config = ConfigDict(extra="allow")


@router.get("")
async def list_models(models: Models) -> dict:
    return models.overview()


@router.post("/rescan", status_code=202)
async def rescan(models: Models) -> JSONResponse:
    """Starts a scan in the background; GET /api/models shows its progress (`scan`)."""
    return JSONResponse({"scan": models.rescan_in_background()}, status_code=202)


@router.put("/active")
async def set_active(request: Request, models: Models) -> dict:
    body = await read_json(request, ActiveRequest)
    return {"model": await models.set_active(body.role, body.model_id), "active": models.active()}


@router.get("/{model_id}")
async def get_model(model_id: str, models: Models) -> dict:
    return models.describe(models.get(model_id))


@router.put("/{model_id}/settings")
async def change_settings(model_id: str, request: Request, models: Models) -> dict:
    body = await read_json(request, SettingsRequest)
    changes = dict(body.model_extra or {})
    if not changes:
        raise InvalidInput("send at least one setting, e.g. {\"n_ctx\": 4096}", code="invalid_settings", status=422)
    return await models.update_settings(model_id, changes)
