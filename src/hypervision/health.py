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


_probes: set[asyncio.Task[bool]] = set()  # time-boxed probes still cleaning up


async def _probe(request: Request) -> bool:
    async with request.app.state.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        return await rls.context_works(conn, request.app.state.settings)


def _unavailable(code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"status": "unavailable", "error": {"code": code, "message": message}}, status_code=503
    )


@router.get(
    "/readyz",
    responses={503: {"description": "database unreachable, its RLS key stale, or starting"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers within ``readiness_timeout_seconds`` and, on
    PostgreSQL, accepts the identities this server signs (else every protected table would
    look empty), and the live hub runs. Answers in time even when the database is frozen: the
    probe is abandoned, not awaited (its connection is cleaned up in the background)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.app.state.settings.readiness_timeout_seconds
    probe = asyncio.ensure_future(_probe(request))
    _probes.add(probe)
    probe.add_done_callback(_forget)
    await asyncio.wait({probe}, timeout=deadline - loop.time())
    if not probe.done() or probe.cancelled() or probe.exception() is not None:
        probe.cancel()
        return _unavailable("database_unavailable", "Base de données injoignable.")
    if not probe.result():
        log.error("PostgreSQL refuses this server's identities: run `hypervision migrate`")
        return _unavailable(
            "rls_key_mismatch",
            "La base ne reconnaît pas la clé de ce serveur : lancez "
            "« hypervision migrate » avec la même HYPERVISION_SECRET_KEY.",
        )
    hub = request.app.state.hub
    if not hub.started:  # the database is back: start the hub now, within the time left
        starter = hub.start_in_background()
        hub.retry_start()
        if starter is not None:
            await asyncio.wait({starter}, timeout=max(0.0, deadline - loop.time()))
        if not hub.started:
            return _unavailable("starting", "Démarrage en cours (flux en direct).")
    body: dict[str, object] = {"status": "ok"}
    exporters = getattr(request.app.state, "soc_exporters", ())
    if exporters:  # the SOC export's state: failing does not make the server unready
        body["soc"] = {e.state.sink: e.state.as_dict() for e in exporters}
    return JSONResponse(body)


def _forget(task: asyncio.Task[bool]) -> None:
    _probes.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned probe's failure is not "never retrieved"
