"""Audit queries for security officers (SECURITY.md 19): who used which record, when, how.

The records hold ids and labels, never content. Reading them needs the audit right (security
officer role and the ``audit`` scope); on PostgreSQL the trail's row-level security lets only
such a context read it. Every query is itself recorded.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import String, cast, select

from hypervision.audit import sequencer
from hypervision.audit import service as audit
from hypervision.audit.models import AuditRecord
from hypervision.core.deps import DbSession
from hypervision.core.openapi import CREDENTIALS, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal
from hypervision.policy.rules import Action, authorize

router = APIRouter(
    prefix="/api/v1/audit", tags=["audit"], dependencies=CREDENTIALS, responses=SIGNED_IN
)


class AuditRecordRead(BaseModel):
    seq: int
    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    actor_name: str
    actor_organisation_id: uuid.UUID | None
    actor_clearance: str | None
    action: str
    surface: str
    decision: str
    resource_type: str | None
    resource_ids: list[str]
    labels: list[str]
    detail: dict[str, Any]
    request_id: str | None
    client_address: str | None
    row_hash: str


class AuditPage(BaseModel):
    items: list[AuditRecordRead]
    next_after: int | None = Field(
        description="Pass as ``after`` for the next page; null on the last page."
    )


@router.get("/records", response_model=AuditPage)
async def list_records(
    session: DbSession,
    actor: CurrentPrincipal,
    after: Annotated[int, Query(ge=0, le=2**62, description="Records after this seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    actor_name: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    action: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Exact action, e.g. entry.read.")
    ] = None,
    decision: Annotated[str | None, Query(pattern="^(allowed|denied|not_found)$")] = None,
    resource_id: Annotated[uuid.UUID | None, Query(description="Records naming this id.")] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="At or after (ISO 8601, zoned).")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before (ISO 8601, zoned).")] = None,
) -> AuditPage:
    """The trail in sequence order, filtered; for security officers only."""
    authorize(actor, Action.AUDIT)
    await sequencer.drain(session)  # the officer sees everything committed so far
    query = select(AuditRecord).where(AuditRecord.seq > after)
    if actor_name:
        query = query.where(AuditRecord.actor_name == actor_name)
    if action:
        query = query.where(AuditRecord.action == action)
    if decision:
        query = query.where(AuditRecord.decision == decision)
    if resource_id:
        # resource_ids is a JSON array of strings: match the quoted id in its text.
        query = query.where(cast(AuditRecord.resource_ids, String).contains(f'"{resource_id}"'))
    if since:
        query = query.where(AuditRecord.at >= since)
    if until:
        query = query.where(AuditRecord.at < until)
    rows = list(await session.scalars(query.order_by(AuditRecord.seq).limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    await audit.record(
        session=session,
        actor=actor,
        action="audit.read",
        resource_type="audit_record",
        detail={
            "count": len(page),
            "first": page[0].seq if page else None,
            "last": page[-1].seq if page else None,
        },
    )
    return AuditPage(
        items=[AuditRecordRead.model_validate(r, from_attributes=True) for r in page],
        next_after=page[-1].seq if more and page else None,
    )
