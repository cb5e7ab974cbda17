"""Writing, verifying and exporting the audit trail (SECURITY.md items 19-22).

``row_hash = SHA-256(prev_hash || canonical(row))``; the chain is sequenced by locking the
single ``audit_head`` row in the writer's transaction, so a record and the change it records
commit or fail together ("no audit, no data").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit.models import GENESIS_HASH, AuditHead, AuditRecord
from hypervision.core.errors import Unavailable
from hypervision.db import new_id, utcnow
from hypervision.identity.principal import Principal

HASHED_FIELDS = (
    "seq",
    "id",
    "at",
    "actor_id",
    "actor_name",
    "actor_organisation_id",
    "actor_clearance",
    "action",
    "surface",
    "decision",
    "resource_type",
    "resource_ids",
    "labels",
    "detail",
    "request_id",
    "client_address",
)


AUDIT_LOCKED = "hv_audit_locked"


class AuditUnavailable(Unavailable):
    """No audit, no data: the request fails and its transaction is rolled back."""

    code = "audit_unavailable"
    fr = "Journal d'audit indisponible : la requête est refusée."
    en = "Audit trail unavailable: the request is refused."


def canonical(record: AuditRecord | Any) -> bytes:
    """Deterministic JSON of the hashed fields: sorted keys, no spaces, UTF-8, ISO times."""
    values: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = getattr(record, name)
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat(timespec="microseconds")
        values[name] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, record: AuditRecord | Any) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(record)).hexdigest()


async def record(
    *,
    session: AsyncSession,
    actor: Principal | None,
    action: str,
    surface: str = "api",
    decision: str = "allowed",
    resource_type: str | None = None,
    resource_ids: Iterable[uuid.UUID | str] = (),
    labels: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
    actor_name: str | None = None,
    request_id: str | None = None,
    client_address: str | None = None,
) -> AuditRecord:
    """Append one record in the caller's transaction. Never pass content, only ids and labels."""
    head = (
        await session.execute(
            update(AuditHead)
            .where(AuditHead.id == 1)
            .values(seq=AuditHead.seq + 1)
            .returning(AuditHead.seq, AuditHead.last_hash)
        )
    ).one_or_none()
    if head is None:
        raise AuditUnavailable()
    seq, prev_hash = head
    row = AuditRecord(
        seq=seq,
        id=new_id(),
        at=utcnow(),
        actor_id=actor.user_id if actor else None,
        actor_name=actor_name or (actor.username if actor else "system"),
        actor_organisation_id=actor.organisation_id if actor else None,
        actor_clearance=actor.clearance if actor else None,
        action=action,
        surface=actor.surface if actor and surface == "api" else surface,
        decision=decision,
        resource_type=resource_type,
        resource_ids=[str(rid) for rid in resource_ids],
        labels=list(labels),
        detail=detail or {},
        request_id=actor.request_id if actor else request_id,
        client_address=actor.client_address if actor else client_address,
        prev_hash=prev_hash,
    )
    row.row_hash = chain_hash(prev_hash, row)
    # From here this transaction holds the trail's lock until it ends: outbox ids written
    # after this point are committed in id order (live.outbox.emit relies on it).
    session.sync_session.info[AUDIT_LOCKED] = True
    session.add(row)
    await session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=row.row_hash))
    await session.flush()
    return row


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    problem: str | None = None
    seq: int | None = None


async def verify(*, session: AsyncSession, batch: int = 5000) -> VerifyResult:
    """Walk the chain in order; name the first record altered, removed or reordered."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    async for row in _iter_records(session, batch):
        if row.seq != expected_seq:
            return VerifyResult(False, checked, f"record {expected_seq} is missing", expected_seq)
        if row.prev_hash != prev_hash:
            return VerifyResult(
                False, checked, f"record {row.seq} does not follow record {row.seq - 1}", row.seq
            )
        if chain_hash(prev_hash, row) != row.row_hash:
            return VerifyResult(False, checked, f"record {row.seq} was altered", row.seq)
        prev_hash, expected_seq, checked = row.row_hash, expected_seq + 1, checked + 1
    head = await session.get(AuditHead, 1)
    if head is None:
        return VerifyResult(False, checked, "audit head is missing")
    if head.seq != checked or head.last_hash != prev_hash:
        return VerifyResult(
            False, checked, f"trail ends at record {checked} but head says {head.seq}", checked + 1
        )
    return VerifyResult(True, checked)


async def _iter_records(session: AsyncSession, batch: int) -> AsyncIterator[Any]:
    """Plain rows (not ORM objects: verification reads millions), in sequence order."""
    table = AuditRecord.__table__
    last = 0
    while True:
        rows = (
            await session.execute(
                select(table).where(table.c.seq > last).order_by(table.c.seq).limit(batch)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].seq


def to_json_line(row: AuditRecord) -> str:
    data = json.loads(canonical(row))
    data["prev_hash"], data["row_hash"] = row.prev_hash, row.row_hash
    return json.dumps(data, sort_keys=True, ensure_ascii=True)


async def export(*, session: AsyncSession, since_seq: int = 0) -> AsyncIterator[str]:
    async for row in _iter_records(session, 5000):
        if row.seq > since_seq:
            yield to_json_line(row)
