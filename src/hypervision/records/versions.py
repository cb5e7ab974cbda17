"""The one write shape of a protected record: one call per state change writes the version
row, the outbox event and the audit record, all in the caller's transaction (the row itself
is already in the session). And the versions a reader may see."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.db import new_id, utcnow
from hypervision.events import outbox
from hypervision.identity.principal import Principal
from hypervision.policy.labels import Label
from hypervision.policy.rules import Subject, can_see
from hypervision.records.models import RecordVersion, Versioned


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def snapshot(row: Versioned) -> dict[str, Any]:
    """The fields a versioned, labelled row's model declares in ``SNAPSHOT_FIELDS``."""
    return {name: _plain(getattr(row, name)) for name in row.SNAPSHOT_FIELDS}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{field: {"from": old, "to": new}}`` for every field that changed."""
    return {
        key: {"from": before.get(key), "to": value}
        for key, value in after.items()
        if before.get(key) != value
    }


# Built once. SQLite: a Core INSERT of the version (no ORM object to build, track and flush
# for a row nobody reads back in the writing transaction), then the audit record and the
# outbox event, each one statement. PostgreSQL: the three rows in one statement (two
# data-modifying CTEs run by the outbox's statement): one round trip.
_VERSIONS = cast(Table, RecordVersion.__table__)
_INSERT = insert(_VERSIONS)
_VERSION_COLUMNS = tuple(column.name for column in _VERSIONS.c)
_WRITE_ALL = outbox.postgres_statements(
    insert(_VERSIONS)
    .values(
        {name: bindparam(f"v_{name}", type_=_VERSIONS.c[name].type) for name in _VERSION_COLUMNS}
    )
    .cte("hv_version"),
    audit.append_cte(),
)


async def record_change(
    *,
    session: AsyncSession,
    actor: Principal,
    resource_type: str,
    row: Any,  # a Versioned and Labelled row: Entry, Situation, Zone, Layer, Synthesis
    action: str,
    before: dict[str, Any] | None,
    summary: dict[str, Any] | None = None,
) -> None:
    """Write version ``row.version`` (the caller bumps it), its outbox event and audit record,
    in the caller's transaction, without ORM objects: one statement on PostgreSQL."""
    await session.flush()  # the row first: its id and defaults, as the version reads them
    after = snapshot(row)
    changes = diff(before or {}, after) if before is not None else {}
    label: Label = row.label
    version = {
        "id": new_id(),
        "resource_type": resource_type,
        "resource_id": row.id,
        "version": row.version,
        "at": utcnow(),
        "actor_id": actor.user_id,
        "action": action,
        "changes": changes,
        "snapshot": after,
        "label_level": label.level,
        "need_to_know": sorted(label.need_to_know),
        "audience": sorted(label.audience),
        "organisation_id": row.organisation_id,
    }
    record = audit.record_values(
        actor=actor,
        action=f"{resource_type}.{action}",
        resource_type=resource_type,
        resource_ids=[row.id],
        labels=[label.level],
        detail={"version": row.version, "changed": sorted(changes)},
    )
    event = outbox.event_params(
        type=f"{resource_type}.{action}",
        resource_type=resource_type,
        resource_id=row.id,
        label=label.as_dict(),
        payload={
            "id": str(row.id),
            "version": row.version,
            "action": action,
            "changed": sorted(changes),
            **(summary or {}),
        },
    )
    if session.get_bind().dialect.name != "postgresql":
        await session.execute(_INSERT, version)
        await audit.append(session, record)
        await outbox.write(session, event)
        return
    params = {f"v_{name}": value for name, value in version.items()}
    params.update(audit.append_params(record), **event)
    try:
        written = (await session.execute(outbox.statement_for(_WRITE_ALL), params)).one()
    except DBAPIError as exc:
        audit.refused(exc)
    audit.queued(session)
    outbox.remember(session, outbox.Emitted(written[0], written[1]))


async def visible_versions(
    *, session: AsyncSession, subject: Subject, resource_id: uuid.UUID
) -> list[RecordVersion]:
    """The versions whose own label (the one they had) lets ``subject`` see them."""
    return [
        v
        for v in await versions_of(session=session, resource_id=resource_id)
        if can_see(
            subject,
            Label(
                level=v.label_level,
                need_to_know=frozenset(v.need_to_know),
                audience=frozenset(v.audience),
                owner=str(v.organisation_id),
            ),
        )
    ]


async def versions_of(*, session: AsyncSession, resource_id: uuid.UUID) -> list[RecordVersion]:
    rows = await session.scalars(
        select(RecordVersion)
        .where(RecordVersion.resource_id == resource_id)
        .order_by(RecordVersion.version)
    )
    return list(rows)
