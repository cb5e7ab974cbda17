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
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit.models import AuditHead, AuditRecord
from hypervision.core.errors import Unavailable
from hypervision.db import new_id, utcnow
from hypervision.identity.principal import Principal

if TYPE_CHECKING:
    from hypervision.audit.checkpoints import Witness

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
    checkpoint: str | None = None  # the witness file involved in the problem, if any
    checkpoints: int = 0  # signed checkpoints verified
    checkpointed: int = 0  # last record covered by a verified checkpoint


async def verify(
    *,
    session: AsyncSession,
    batch: int = 5000,
    witness: Witness | None = None,
    workers: int | None = None,
) -> VerifyResult:
    """Walk the chain in order; name the first record altered, removed or reordered. With a
    ``witness``, also check its signed checkpoints (``audit.verification``). Hashes are
    checked on ``workers`` processes (default: every core, for a long trail; 1: in this
    process), ``batch`` records at a time (``audit.parallel``)."""
    from hypervision.audit.verification import verify_trail

    return await verify_trail(session=session, witness=witness, batch=batch, workers=workers)


async def _iter_records(
    session: AsyncSession, batch: int, after: int = 0, until: int | None = None
) -> AsyncIterator[Any]:
    """Plain rows (not ORM objects: verification reads millions), in sequence order, with
    ``after < seq <= until``; ``batch`` rows per query, so memory stays bounded."""
    table = AuditRecord.__table__
    last = after
    while True:
        query = select(table).where(table.c.seq > last)
        if until is not None:
            query = query.where(table.c.seq <= until)
        rows = (await session.execute(query.order_by(table.c.seq).limit(batch))).all()
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
