"""Reading protected records: the only way to select them for a reader (the policy's SQL
filter always applied), find one by id (hidden and missing look alike, and a hidden one is
audited as a probe), and the audit record of what a read delivered."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import HiddenOrMissing
from hypervision.identity.principal import Principal
from hypervision.policy.rules import Action, Subject, authorize, visible_filter
from hypervision.records.registry import Kind

R = TypeVar("R")


class Delivered(Protocol):
    """A labelled row as an audit record names it."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def label_level(self) -> str: ...


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def subject_of(settings: Settings, actor: Principal) -> Subject:
    return Subject.of(settings, actor)


def visible(
    session: AsyncSession, settings: Settings, actor: Principal, model: type[R]
) -> Select[R]:
    """The only way to select a labelled model's rows for a reader: the policy filter is
    always applied (and the actor must hold the right to read)."""
    authorize(actor, Action.READ)
    return select(model).where(
        visible_filter(subject_of(settings, actor), model, dialect_of(session))
    )


async def find_in(session: AsyncSession, query: Select[R], kind: Kind, record_id: uuid.UUID) -> R:
    """The row ``record_id`` of ``query`` (a query of visible rows of ``kind``), or 404
    exactly as if it did not exist when the actor may not see it (``HiddenOrMissing``:
    audited as a probe when the row exists)."""
    model = kind.model
    row = await session.scalar(query.where(model.id == record_id))
    if row is None:
        fr, en = kind.missing
        raise HiddenOrMissing(fr, en, resource_type=kind.name, resource_id=record_id, model=model)
    return row


async def find(
    session: AsyncSession, settings: Settings, actor: Principal, kind: Kind, record_id: uuid.UUID
) -> Any:
    """A visible record of ``kind`` by id (see ``find_in``)."""
    return await find_in(session, visible(session, settings, actor, kind.model), kind, record_id)


async def delivered(
    session: AsyncSession,
    actor: Principal,
    *,
    action: str,
    kind: str,
    rows: Sequence[Delivered],
    detail: dict[str, Any] | None = None,
) -> None:
    """The audit record of a read: the ids delivered and their levels."""
    await audit.record(
        session=session,
        actor=actor,
        action=action,
        resource_type=kind,
        resource_ids=[r.id for r in rows],
        labels=sorted({r.label_level for r in rows}),
        detail=detail,
    )
