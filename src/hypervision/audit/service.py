"""Writing, verifying and exporting the audit trail (SECURITY.md items 19-22).

A record is queued in the writer's own transaction, so it and the change it records commit or
fail together ("no audit, no data"); the sequencer then chains queued records in batches:
``row_hash = SHA-256(prev_hash || canonical(row))`` (docs/adr/0018).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, cast

from sqlalchemy import CTE, Table, bindparam, insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
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
_RECORDS = cast(Table, AuditRecord.__table__)
_APPEND = insert(_RECORDS).inline()
_APPENDED = tuple(
    column.name
    for column in _RECORDS.c
    if column.name not in ("qid", "seq", "prev_hash", "row_hash")
)


class AuditUnavailable(Unavailable):
    """No audit, no data: the request fails and its transaction is rolled back."""

    code = "audit_unavailable"
    fr = "Journal d'audit indisponible : la requête est refusée."
    en = "Audit trail unavailable: the request is refused."


def record_values(
    *,
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
) -> dict[str, Any]:
    """The columns of one queued record (``record`` writes them)."""
    return {
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
    values = record_values(
        actor=actor,
        action=action,
        surface=surface,
        decision=decision,
        resource_type=resource_type,
        resource_ids=resource_ids,
        labels=labels,
        detail=detail,
        actor_name=actor_name,
        request_id=request_id,
        client_address=client_address,
    )
    await append(session, values)


async def append(session: AsyncSession, values: dict[str, Any]) -> None:
    """Queue the record ``record_values`` made, in one statement."""
    try:
        await session.execute(_APPEND, values)
    except DBAPIError as exc:
        if is_database_down(exc):
            raise
        raise AuditUnavailable() from exc
    queued(session)


async def append_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Queue the records ``record_values`` made, in the given order, in one call: a read that
    leaves several records (a shared module result's, ADR 0051) appends them together, in the
    caller's transaction as ``append`` does — they commit or fail with the answer they
    record. The INSERT built once, sent for every row at once (asyncpg pipelines its
    ``executemany``: one round trip): a multi-VALUES INSERT would be compiled anew on every
    call (SQLAlchemy caches none), which cost more than the round trips it saved."""
    if len(rows) <= 1:
        for values in rows:
            await append(session, values)
        return
    try:
        await session.execute(_APPEND, [dict(v) for v in rows])
    except DBAPIError as exc:
        if is_database_down(exc):
            raise
        raise AuditUnavailable() from exc
    queued(session)


# --- appending within another statement (PostgreSQL: records.versions) -----------------------

APPEND_PREFIX = "a_"


def append_cte(name: str = "hv_audit") -> CTE:
    """The queue INSERT as a data-modifying CTE, its values bound as ``a_<column>``: a writer
    that has other rows to insert sends them and the record in one statement (one round
    trip). Nothing is returned from it (only auditors read the trail)."""
    return (
        insert(_RECORDS)
        .values(
            {
                name: bindparam(APPEND_PREFIX + name, type_=_RECORDS.c[name].type)
                for name in _APPENDED
            }
        )
        .cte(name)
    )


def append_params(values: dict[str, Any]) -> dict[str, Any]:
    """``record_values`` as the parameters of ``append_cte``."""
    return {APPEND_PREFIX + name: values[name] for name in _APPENDED}


def queued(session: AsyncSession) -> None:
    """The caller's transaction queued a record: its commit wakes the sequencer."""
    session.sync_session.info[AUDIT_QUEUED] = True


def refused(exc: DBAPIError) -> NoReturn:
    """A statement that appended a record among other rows failed: a database that is down
    stays so (503), a conflict or refused data stays what it is (the change's own rows; 409,
    422), anything else refuses the change as the trail's (no audit, no data)."""
    if is_database_down(exc) or isinstance(exc, IntegrityError | DataError):
        raise exc
    raise AuditUnavailable() from exc


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
