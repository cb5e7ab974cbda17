"""Refusals audited: a 403 or a protected id not delivered (``HiddenOrMissing``) leaves a
record, written apart from the request's transaction (rolled back with the error). The error
handlers of ``core.errors`` call it through ``app.state.audit_refusal`` (set by the app)."""

from __future__ import annotations

import logging

from fastapi import Request
from sqlalchemy import select

from hypervision.audit import service as audit
from hypervision.core.errors import AppError, HiddenOrMissing

log = logging.getLogger("hypervision.errors")


async def audit_refusal(request: Request, exc: AppError) -> None:
    """Refusals are audited too, in their own transaction (the request's is rolled back with
    the error): a 403 as ``denied``; a protected id that was not delivered as ``denied`` when
    it exists and ``not_found`` when it does not. Nothing of this reaches the response."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return
    route = request.scope.get("route")
    detail = {"method": request.method, "route": getattr(route, "path", request.url.path)}
    try:
        # The system context: whether the id exists is for the trail, whatever the reader sees.
        async with request.app.state.system_sessions() as session, session.begin():
            decision, kind, asked = "denied", None, []
            if isinstance(exc, HiddenOrMissing):
                model = exc.model
                found = await session.scalar(select(model.id).where(model.id == exc.resource_id))
                decision = "denied" if found is not None else "not_found"
                kind, asked = exc.resource_type, [exc.resource_id]
            await audit.record(
                session=session,
                actor=principal,
                action=f"refused:{exc.code}",
                decision=decision,
                resource_type=kind,
                resource_ids=asked,
                detail=detail,
            )
    except Exception:  # noqa: BLE001 - the refusal is answered even if it cannot be recorded
        log.warning("could not audit a refusal (request %s)", principal.request_id)
