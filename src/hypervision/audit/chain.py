"""The hash chain of the audit trail: ``row_hash = SHA-256(prev_hash || canonical(row))``, and
reading it in sequence order."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit.models import AuditRecord

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


def canonical(record: Any) -> bytes:
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


def chain_hash(prev_hash: str, record: Any) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(record)).hexdigest()


async def iter_records(
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
