"""Writing, verifying and exporting the audit trail (SECURITY.md items 19-22).

A record is queued in the writer's own transaction, so it and the change it records commit or
fail together ("no audit, no data"); the sequencer then chains queued records in batches:
``row_hash = SHA-256(prev_hash || canonical(row))`` (docs/adr/0018).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit.chain import canonical, iter_records
from hypervision.audit.models import AuditRecord
from hypervision.audit.sequencer import AUDIT_QUEUED, HeadMissing, drain
from hypervision.audit.verification import VerifyResult as VerifyResult  # re-exported
from hypervision.audit.verification import verify_trail
from hypervision.core.errors import Unavailable, is_database_down
from hypervision.db import new_id, utcnow

if TYPE_CHECKING:
    from hypervision.audit.checkpoints import Witness


class Actor(Protocol):
    """Who acts, as the trail records it (``identity.principal.Principal`` is one); the trail
    sits below identity, which audits its own actions through it."""

    @property
    def user_id(self) -> uuid.UUID | None: ...
    @property
    def username(self) -> str: ...
    @property
    def organisation_id(self) -> uuid.UUID | None: ...
    @property
    def clearance(self) -> str | None: ...
    @property
    def surface(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def client_address(self) -> str | None: ...


# Built once: a Core INSERT of the queue record. ``inline``: nothing is fetched back, so the
# queue id (an identity column) is not pre-read with its own ``nextval`` round trip, and no
# RETURNING is asked (under row-level security only auditors read the trail).
_APPEND = insert(cast(Table, AuditRecord.__table__)).inline()


class AuditUnavailable(Unavailable):
    """No audit, no data: the request fails and its transaction is rolled back."""

    code = "audit_unavailable"
    fr = "Journal d'audit indisponible : la requête est refusée."
    en = "Audit trail unavailable: the request is refused."


async def record(
    *,
    session: AsyncSession,
    actor: Actor | None,
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
) -> None:
    """Append one record to the queue in the caller's transaction: it commits or fails with
    the change it records, and takes no lock; the sequencer chains it after commit
    (``audit.sequencer``). Never pass content, only ids and labels."""
    values = {
        "id": new_id(),
        "at": utcnow(),
        "actor_id": actor.user_id if actor else None,
        "actor_name": actor_name or (actor.username if actor else "system"),
        "actor_organisation_id": actor.organisation_id if actor else None,
        "actor_clearance": actor.clearance if actor else None,
        "action": action,
        "surface": actor.surface if actor and surface == "api" else surface,
        "decision": decision,
        "resource_type": resource_type,
        "resource_ids": [str(rid) for rid in resource_ids],
        "labels": list(labels),
        "detail": detail or {},
        "request_id": actor.request_id if actor else request_id,
        "client_address": actor.client_address if actor else client_address,
    }
    try:
        await session.execute(_APPEND, values)
    except DBAPIError as exc:
        if is_database_down(exc):
            raise
        raise AuditUnavailable() from exc
    session.sync_session.info[AUDIT_QUEUED] = True


async def verify(
    *,
    session: AsyncSession,
    batch: int = 5000,
    witness: Witness | None = None,
    workers: int | None = None,
) -> VerifyResult:
    """Chain the queue, then walk the chain in order; name the first record altered, removed
    or reordered. With a ``witness``, also check its signed checkpoints
    (``audit.verification``). Hashes are checked on ``workers`` processes (default: every
    core, for a long trail; 1: in this process), ``batch`` records at a time
    (``audit.parallel``)."""
    with contextlib.suppress(HeadMissing):  # reported by the walk
        await drain(session)

    return await verify_trail(session=session, witness=witness, batch=batch, workers=workers)


def to_json_line(row: AuditRecord) -> str:
    data = json.loads(canonical(row))
    data["prev_hash"], data["row_hash"] = row.prev_hash, row.row_hash
    return json.dumps(data, sort_keys=True, ensure_ascii=True)


async def export(*, session: AsyncSession, since_seq: int = 0) -> AsyncIterator[str]:
    """The chain as JSON lines, once the queue is chained (in the caller's transaction)."""
    await drain(session)
    async for row in iter_records(session, 5000):
        if row.seq > since_seq:
            yield to_json_line(row)
