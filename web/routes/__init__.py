"""One APIRouter per feature; chat.py mounts them all (none imports another)."""
from __future__ import annotations

from web.routes import (
           analysis,
           bench,
           chat,
           documents,
           export,
           images,
           memories,
           models,
           openai,
           personas,
           sandbox,
           sessions,
           system,
)

ROUTERS = (chat.router, images.router, sessions.router, documents.router, system.router, openai.router,
           analysis.router, sessions.turns_router, export.router, sandbox.router, models.router, bench.router,
           memories.router, memories.sessions_router, personas.router)
