"""Writing outbox events, and waking the live streams once the transaction has committed.

Every state change calls ``emit`` inside its own transaction; on PostgreSQL the row carries the
transaction's id, which orders delivery (``live.hub``). On PostgreSQL the same
transaction runs ``pg_notify('hv_outbox', <id>)``, which PostgreSQL delivers only at commit, to
every replica listening; in every case the session remembers the highest id written, and an
``after_commit`` hook wakes this process's hub. A NOTIFY carries the id, never a payload.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    CTE,
    BigInteger,
    Executable,
    Table,
    Text,
    bindparam,
    event,
    func,
    insert,
    select,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from hypervision.db import utcnow
from hypervision.events.models import OutboxEvent

CHANNEL = "hv_outbox"
_PENDING = "hv_outbox_max"

# Called with the highest outbox id of a committed transaction (set by the running hub, and
# by a NATS bus, which publishes that id after commit).
_wakers: list[Callable[[int], None]] = []
# Whether PostgreSQL transactions run pg_notify: not while this process's bus is NATS (its
# commits then take no notification lock; live.nats_bus publishes after commit instead).
_notify = True


_TABLE = cast(Table, OutboxEvent.__table__)
_COLUMNS = ("created_at", "type", "resource_type", "resource_id", "label", "payload")


class Emitted(NamedTuple):
    """What a writer learns of the event it wrote: its id and transaction id (delivery order
    is ``(tx, id)``; ``tx`` is 0 on SQLite)."""

    id: int
    tx: int


def postgres_statements(*along: CTE) -> dict[bool, Executable]:
    """One statement (by whether it notifies), built once: the event's id (``nextval``) and
    its transaction's id are drawn in a CTE, the event is inserted from it by a
    data-modifying CTE, and the id and ``tx`` are read back from the first CTE, not by
    ``INSERT … RETURNING``: under row-level security a RETURNING row must be readable by its
    writer, and some events (revocations) are read by the hub alone. With ``notify``, the
    same statement runs ``pg_notify`` (which PostgreSQL sends only at commit). ``along``:
    other data-modifying CTEs run by the same statement (a version row and its audit record,
    ``records.versions``): one round trip for all."""
    ids = select(
        func.nextval(func.pg_get_serial_sequence("outbox", "id")).label("id"),
        sa_cast(sa_cast(func.pg_current_xact_id(), Text), BigInteger).label("tx"),
    ).cte("hv_ids")
    values = [bindparam(f"e_{name}", type_=_TABLE.c[name].type) for name in _COLUMNS]
    written = (
        insert(_TABLE)
        .from_select(
            ["id", "tx", *_COLUMNS],
            select(ids.c.id, ids.c.tx, *values),
        )
        .cte("hv_written")
    )
    statements: dict[bool, Executable] = {}
    for notify in (True, False):
        columns: list[Any] = [ids.c.id, ids.c.tx]
        if notify:
            columns.append(func.pg_notify(CHANNEL, sa_cast(ids.c.id, Text)))
        statements[notify] = select(*columns).add_cte(*along, written)
    return statements


_PG_EMIT = postgres_statements()
# SQLite: the id is the row id the driver reports (no RETURNING, no second statement).
_SQLITE_EMIT = insert(_TABLE)


def event_params(
    *,
    type: str,
    resource_type: str,
    resource_id: uuid.UUID,
    label: dict[str, Any],
    payload: dict[str, Any],
) -> dict[str, Any]:
    """The parameters of a ``postgres_statements`` statement for one event."""
    return {
        "e_created_at": utcnow(),
        "e_type": type,
        "e_resource_type": resource_type,
        "e_resource_id": resource_id,
        "e_label": label,
        "e_payload": payload,
    }


def statement_for(statements: dict[bool, Executable]) -> Executable:
    """The variant to run now: with ``pg_notify`` unless this process's bus announces
    commits itself."""
    return statements[_notify]


def remember(session: AsyncSession, emitted: Emitted) -> Emitted:
    """The transaction wrote ``emitted``: its commit wakes the hub up to that id."""
    info = session.sync_session.info
    info[_PENDING] = max(info.get(_PENDING, 0), emitted.id)
    return emitted


async def emit(
    session: AsyncSession,
    *,
    type: str,
    resource_type: str,
    resource_id: uuid.UUID,
    label: dict[str, Any],
    payload: dict[str, Any],
) -> Emitted:
    """Write one outbox event in the caller's transaction, in one statement (Core, no ORM
    object, no flush); its commit wakes this process's hub (and, through NOTIFY or the NATS
    bus, the other replicas'). The hub delivers in (tx, id) order, and only once no older
    transaction can still commit (live.hub, docs/adr/0018)."""
    params = event_params(
        type=type,
        resource_type=resource_type,
        resource_id=resource_id,
        label=label,
        payload=payload,
    )
    return await write(session, params)


async def write(session: AsyncSession, params: dict[str, Any]) -> Emitted:
    """Write the event ``event_params`` made, in one statement."""
    if session.get_bind().dialect.name == "postgresql":
        row = (await session.execute(statement_for(_PG_EMIT), params)).one()
        return remember(session, Emitted(row[0], row[1]))
    result = await session.execute(
        _SQLITE_EMIT, {"tx": 0, **{name[2:]: value for name, value in params.items()}}
    )
    key = cast(CursorResult[Any], result).inserted_primary_key
    assert key is not None
    return remember(session, Emitted(int(key[0]), 0))


def add_waker(waker: Callable[[int], None]) -> None:
    _wakers.append(waker)


def remove_waker(waker: Callable[[int], None]) -> None:
    if waker in _wakers:
        _wakers.remove(waker)


def notify_in_transaction(enabled: bool) -> None:
    """Set by the bus that starts: True for PostgreSQL's NOTIFY, False for NATS."""
    global _notify
    _notify = enabled


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    last = session.info.pop(_PENDING, None)
    if last is not None:
        for waker in list(_wakers):
            waker(last)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
