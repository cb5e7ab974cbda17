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
from typing import Any

from sqlalchemy import BigInteger, Text, cast, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from hypervision.events.models import OutboxEvent

CHANNEL = "hv_outbox"
_PENDING = "hv_outbox_max"

# Called with the highest outbox id of a committed transaction (set by the running hub, and
# by a NATS bus, which publishes that id after commit).
_wakers: list[Callable[[int], None]] = []
# Whether PostgreSQL transactions run pg_notify: not while this process's bus is NATS (its
# commits then take no notification lock; live.nats_bus publishes after commit instead).
_notify = True


_IDS = select(
    func.nextval(func.pg_get_serial_sequence("outbox", "id")).label("id"),
    cast(cast(func.pg_current_xact_id(), Text), BigInteger).label("tx"),
).subquery()
_NEXT = select(_IDS.c.id, _IDS.c.tx)
_NEXT_NOTIFY = select(_IDS.c.id, _IDS.c.tx, func.pg_notify(CHANNEL, cast(_IDS.c.id, Text)))


async def emit(
    session: AsyncSession,
    *,
    type: str,
    resource_type: str,
    resource_id: uuid.UUID,
    label: dict[str, Any],
    payload: dict[str, Any],
) -> OutboxEvent:
    row = OutboxEvent(
        type=type,
        resource_type=resource_type,
        resource_id=resource_id,
        label=label,
        payload=payload,
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # The id first, so the INSERT needs no RETURNING: under row-level security a RETURNING
        # row must be readable by the writer, and some events (revocations) are read by the
        # hub alone. With it, the transaction's id: the hub delivers in (tx, id) order, and
        # only once no older transaction can still commit (live.hub, docs/adr/0018).
        # The NOTIFY goes in the same statement (PostgreSQL sends it only at commit).
        row.id, row.tx = (await session.execute(_NEXT_NOTIFY if _notify else _NEXT)).one()[:2]
    session.add(row)
    await session.flush()
    info = session.sync_session.info
    info[_PENDING] = max(info.get(_PENDING, 0), row.id)
    return row


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
