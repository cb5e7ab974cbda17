"""Liveness and readiness probes for Kubernetes."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependency checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "database unreachable"}})
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers within two seconds."""
    try:
        async with asyncio.timeout(2), request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means not ready
        return JSONResponse(
            {
                "status": "unavailable",
                "error": {
                    "code": "database_unavailable",
                    "message": "Base de données injoignable.",
                },
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok"})
