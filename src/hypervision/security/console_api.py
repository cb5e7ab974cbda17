"""The security console's API (issue 21, docs/adr/0039): the trail as the console filters
it, who saw a record, a person's activity, their sessions and tokens and revoking them. For
security officers only; the live trail is ``GET /api/v1/stream/audit`` (``live.api``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid
from hypervision.core.openapi import CREDENTIALS, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal
from hypervision.live.audit_feed import AuditFilter
from hypervision.security import console, credentials
from hypervision.security.api import AuditRecordRead

router = APIRouter(
    prefix="/api/v1/audit", tags=["audit"], dependencies=CREDENTIALS, responses=SIGNED_IN
)

ReadableType = Literal["entry", "comment", "situation", "synthesis", "zone", "layer", "product"]
Before = Annotated[
    int | None, Query(ge=1, le=2**62, description="Records before this seq (older).")
]
Limit = Annotated[int, Query(ge=1, le=200)]


class ConsolePage(BaseModel):
    items: list[AuditRecordRead]
    next_before: int | None = Field(
        description="Pass as ``before`` for the next (older) page; null on the last page."
    )


class ReadersPage(ConsolePage):
    resource_type: str
    resource_id: uuid.UUID
    title: str = Field(description="The record's title if the caller may read it, else —.")


class ActivityItem(AuditRecordRead):
    kind: str = Field(description="sign_in, read, write, export, refusal, session or token.")


class ActivityPage(BaseModel):
    items: list[ActivityItem]
    next_before: int | None


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: str
    client_address: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    revoked_at: datetime | None


class CredentialsRead(BaseModel):
    person_id: uuid.UUID
    username: str
    sessions: list[SessionRead]
    tokens: list[TokenRead]


class Revoke(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None


class Revoked(BaseModel):
    ended: int


def _items(page: console.Page) -> list[AuditRecordRead]:
    return [AuditRecordRead.model_validate(r, from_attributes=True) for r in page.items]


@router.get("/console", response_model=ConsolePage)
async def console_records(
    session: DbSession,
    actor: CurrentPrincipal,
    person: Annotated[uuid.UUID | None, Query()] = None,
    organisation: Annotated[uuid.UUID | None, Query()] = None,
    surface: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    decision: Annotated[str | None, Query(pattern="^(allowed|denied|not_found)$")] = None,
    label: Annotated[str | None, Query(min_length=1, max_length=16)] = None,
    record: Annotated[uuid.UUID | None, Query()] = None,
    before: Before = None,
    limit: Limit = 50,
) -> ConsolePage:
    """The trail newest first, with the live console's filters."""
    wanted = AuditFilter(
        person, organisation, surface, decision, label, str(record) if record else None
    )
    page = await console.recent(
        session=session, actor=actor, wanted=wanted, before=before, limit=limit
    )
    return ConsolePage(items=_items(page), next_before=page.next_before)


@router.get("/resources/{resource_type}/{resource_id}/readers", response_model=ReadersPage)
async def record_readers(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    resource_type: Annotated[ReadableType, Path()],
    resource_id: uuid.UUID,
    before: Before = None,
    limit: Limit = 50,
) -> ReadersPage:
    """Who saw this record: every allowed read, export, delivery and write naming it, newest
    first, with person, time, surface, address and labels at that time."""
    page = await console.readers(
        session=session, actor=actor, resource_id=resource_id, before=before, limit=limit
    )
    title = await console.title_of(
        session=session,
        settings=settings,
        actor=actor,
        resource_type=str(resource_type),
        resource_id=resource_id,
    )
    return ReadersPage(
        items=_items(page),
        next_before=page.next_before,
        resource_type=str(resource_type),
        resource_id=resource_id,
        title=title or console.HIDDEN_TITLE,
    )


@router.get("/people/{person_id}/activity", response_model=ActivityPage)
async def person_activity(
    session: DbSession,
    actor: CurrentPrincipal,
    person_id: uuid.UUID,
    before: Before = None,
    limit: Limit = 50,
) -> ActivityPage:
    """A person's activity, newest first: sign-ins, reads, writes, exports, refusals,
    sessions and tokens, with addresses."""
    await credentials.person(session=session, actor=actor, person_id=person_id)
    page = await console.activity(
        session=session, actor=actor, person_id=person_id, before=before, limit=limit
    )
    items = [
        ActivityItem.model_validate(
            {
                **AuditRecordRead.model_validate(r, from_attributes=True).model_dump(),
                "kind": console.kind_of(r),
            }
        )
        for r in page.items
    ]
    return ActivityPage(items=items, next_before=page.next_before)


@router.get("/people/{person_id}/credentials", response_model=CredentialsRead)
async def person_credentials(
    session: DbSession, actor: CurrentPrincipal, person_id: uuid.UUID
) -> CredentialsRead:
    """A person's sessions and API tokens (never their secrets)."""
    found = await credentials.list_credentials(session=session, actor=actor, person_id=person_id)
    return CredentialsRead(
        person_id=found.person.id,
        username=found.person.username,
        sessions=[SessionRead.model_validate(s) for s in found.sessions],
        tokens=[TokenRead.model_validate(t) for t in found.tokens],
    )


@router.post("/people/{person_id}/revoke", response_model=Revoked)
async def revoke_credentials(
    session: DbSession, actor: CurrentPrincipal, person_id: uuid.UUID, body: Revoke
) -> Revoked:
    """Revoke one session (``session_id``), one token (``token_id``) or, with neither,
    every session and token of the person: their open live streams close at once."""
    if body.session_id and body.token_id:
        raise Invalid(
            "Indiquez une session ou un jeton, pas les deux.",
            "Give a session or a token, not both.",
            extra={"fields": [{"field": "token_id", "message": "not with session_id"}]},
        )
    ended = await credentials.revoke(
        session=session,
        actor=actor,
        person_id=person_id,
        session_id=body.session_id,
        token_id=body.token_id,
    )
    return Revoked(ended=ended)
