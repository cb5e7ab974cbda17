"""The one write shape of a protected record: one call per state change writes the version
row, the outbox event and the audit record, all in the caller's transaction (the row itself
is already in the session). And the versions a reader may see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import CTE, Executable, Table, bindparam, insert, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

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


@dataclass(frozen=True)
class Along:
    """More rows written by one of a change's statements on PostgreSQL, e.g. a new entry's
    map signature and cells (``logbook.cells``): ``name`` keys the statement (built once per
    name), ``cte`` is its data-modifying CTE, ``params`` its bound values (their names must
    not clash)."""

    name: str
    cte: CTE
    params: dict[str, Any]


# Built once. SQLite: a Core INSERT of the version (no ORM object to build, track and flush
# for a row nobody reads back in the writing transaction), then the audit record and the
# outbox event, each one statement. PostgreSQL: the three rows in one statement (two
# data-modifying CTEs run by the outbox's statement): one round trip.
_VERSIONS = cast(Table, RecordVersion.__table__)
_INSERT = insert(_VERSIONS)
_VERSION_COLUMNS = tuple(column.name for column in _VERSIONS.c)
_VERSION_CTE = (
    insert(_VERSIONS)
    .values(
        {name: bindparam(f"v_{name}", type_=_VERSIONS.c[name].type) for name in _VERSION_COLUMNS}
    )
    .cte("hv_version")
)
_AUDIT_CTE = audit.append_cte()
_WRITE_ALL = outbox.postgres_statements(_VERSION_CTE, _AUDIT_CTE)
_WRITE_WITH: dict[str, dict[bool, Executable]] = {}  # the same with an Along, by its name
# A created row's INSERT (Core, every column bound as r_<name>), with its Along if any: by
# (table, Along's name). Not a CTE of the statement above: the versions' row-level security
# policy looks for the row in the statement's snapshot, which a CTE's insert is not in.
_CREATES: dict[tuple[str, str | None], Executable] = {}


def _create_statement(table: Table, along: Along | None) -> Executable:
    key = (table.name, along.name if along else None)
    built = _CREATES.get(key)
    if built is None:
        values = {c.name: bindparam(f"r_{c.name}", type_=c.type) for c in table.c}
        statement = insert(table).values(values)
        built = _CREATES[key] = statement.add_cte(along.cte) if along else statement
    return built


def _write_statements(along: Along | None) -> dict[bool, Executable]:
    if along is None:
        return _WRITE_ALL
    built = _WRITE_WITH.get(along.name)
    if built is None:
        built = _WRITE_WITH[along.name] = outbox.postgres_statements(
            _VERSION_CTE, _AUDIT_CTE, along.cte
        )
    return built


def _row_params(row: Any, table: Table) -> dict[str, Any]:
    """A new row's columns as ``r_<name>`` parameters, the model's Python-side defaults
    applied (and set on the object) as a flush would."""
    mapper = sa_inspect(type(row))
    params: dict[str, Any] = {}
    for column in table.c:
        key = mapper.get_property_by_column(column).key
        value = getattr(row, key)
        default = column.default
        if value is None and default is not None and default.is_scalar:
            value = default.arg  # type: ignore[attr-defined]
        elif value is None and default is not None and default.is_callable:
            value = default.arg(None)  # type: ignore[attr-defined]
        setattr(row, key, value)  # every column loaded: none left to expire
        params[f"r_{column.name}"] = value
    return params


async def record_change(
    *,
    session: AsyncSession,
    actor: Principal,
    resource_type: str,
    row: Any,  # a Versioned and Labelled row: Entry, Situation, Zone, Layer, Synthesis
    action: str,
    before: dict[str, Any] | None,
    summary: dict[str, Any] | None = None,
    create: bool = False,
    with_row: Along | None = None,
    with_change: Along | None = None,
) -> None:
    """Write version ``row.version`` (the caller bumps it), its outbox event and audit record,
    in the caller's transaction, without ORM objects: one statement on PostgreSQL.
    ``create``: ``row`` is new and not yet in the session; on PostgreSQL one Core INSERT
    writes it (and ``with_row``), then the object joins the session as stored; elsewhere it
    is added and flushed. ``with_change``: more rows for the version's statement
    (PostgreSQL; ignored elsewhere, where the caller writes them)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if create and postgres:
        # One Core INSERT: no unit of work to build for a row whose values are all known.
        table = cast(Table, type(row).__table__)
        params = _row_params(row, table) | (with_row.params if with_row else {})
        await session.execute(_create_statement(table, with_row), params)
        make_transient_to_detached(row)  # then tracked as stored: nothing left to flush
        session.add(row)
    else:
        if create:
            session.add(row)
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
    if not postgres:
        await session.execute(_INSERT, version)
        await audit.append(session, record)
        await outbox.write(session, event)
        return
    params = {f"v_{name}": value for name, value in version.items()}
    params.update(audit.append_params(record), **event)
    if with_change is not None:
        params.update(with_change.params)
    statement = outbox.statement_for(_write_statements(with_change))
    try:
        written = (await session.execute(statement, params)).one()
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
