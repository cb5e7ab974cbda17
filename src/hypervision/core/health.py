"""Liveness and readiness probes for Kubernetes."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from hypervision.policy import rls

log = logging.getLogger("hypervision.health")
router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependency checked)."""
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"description": "database unreachable, or its RLS key stale"}}
)
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers within two seconds and, on PostgreSQL, accepts the
    identities this server signs (else every protected table would look empty)."""
    try:
        async with asyncio.timeout(2), request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            signs = await rls.context_works(conn, request.app.state.settings)
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
    if not signs:
        log.error("PostgreSQL refuses this server's identities: run `hypervision migrate`")
        return JSONResponse(
            {
                "status": "unavailable",
                "error": {
                    "code": "rls_key_mismatch",
                    "message": "La base ne reconnaît pas la clé de ce serveur : lancez "
                    "« hypervision migrate » avec la même HYPERVISION_SECRET_KEY.",
                },
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok"})
