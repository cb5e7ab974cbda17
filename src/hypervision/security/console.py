"""The security console's queries (issue 21, docs/adr/0039): the trail filtered, who saw a
record, a person's activity. For security officers only (the audit right); every query is
itself recorded. What they show is what the trail holds (ids, labels, never content); a
record's title only when the officer could read the record anyway (``title_of``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import sequencer
from hypervision.audit import service as audit
from hypervision.audit.models import AuditRecord, AuditResource
from hypervision.config import Settings
from hypervision.identity.principal import Principal
from hypervision.kinds import KINDS
from hypervision.live.audit_feed import AuditFilter
from hypervision.policy.rules import Action, allowed, authorize
from hypervision.records import access

# Kinds whose records someone may ask "who saw this" about (the type in the URL).
READABLE_TYPES = ("entry", "comment", "situation", "synthesis", "zone", "layer", "product")
# A read done once for a space's push (docs/adr/0052): "who saw it" lists the readers it was
# pushed to, whose ``space.push`` records name its id.
PUSHED_READ = "push"
# What a title is called on each kind that has one (the others show their id only).
TITLE_FIELDS = {
    "entry": "title",
    "situation": "title",
    "synthesis": "title",
    "zone": "name",
    "layer": "name",
    "product": "name",
}
HIDDEN_TITLE = "—"


@dataclass
class Page:
    items: list[AuditRecord]
    next_before: int | None  # pass as ``before`` for the next (older) page
    head: int = 0  # the last seq when the page was read: where its live stream starts


def _page(rows: list[AuditRecord], limit: int) -> Page:
    page, more = rows[:limit], len(rows) > limit
    return Page(page, int(page[-1].seq or 0) if more and page else None)


async def _recorded(
    session: AsyncSession, actor: Principal, what: str, page: Page, **detail: Any
) -> None:
    await audit.record(
        session=session,
        actor=actor,
        action=f"audit.{what}",
        resource_type="audit_record",
        detail={
            "count": len(page.items),
            "first": page.items[0].seq if page.items else None,
            "last": page.items[-1].seq if page.items else None,
            **{k: str(v) for k, v in detail.items() if v is not None},
        },
    )


async def recent(
    *,
    session: AsyncSession,
    actor: Principal,
    wanted: AuditFilter,
    before: int | None = None,
    limit: int = 50,
) -> Page:
    """The trail, newest first, as the live console filters it; audited."""
    authorize(actor, Action.AUDIT)
    await sequencer.drain(session)
    # Read first: a record chained by another replica meanwhile is after the head, and comes
    # live (nothing falls between this page and its stream).
    head = int(await session.scalar(select(func.max(AuditRecord.seq))) or 0)
    query = select(AuditRecord).where(AuditRecord.seq <= head, *wanted.where())
    if wanted.record is not None:  # through the index by record, not a scan
        named = select(AuditResource.seq).where(AuditResource.resource_id == wanted.record)
        query = query.where(AuditRecord.seq.in_(named))
    if before is not None:
        query = query.where(AuditRecord.seq < before)
    rows: list[AuditRecord] = []
    last = before
    # The label filter reads the JSON list in Python: read on until the page is full.
    for _ in range(20):
        step = query if last is None else query.where(AuditRecord.seq < last)
        batch = list(await session.scalars(step.order_by(AuditRecord.seq.desc()).limit(500)))
        rows.extend(r for r in batch if wanted.accepts(r))
        if len(rows) > limit or len(batch) < 500:
            break
        last = int(batch[-1].seq or 0)
    page = _page(rows, limit)
    page.head = head
    await _recorded(session, actor, "console", page, person=wanted.person, record=wanted.record)
    return page


async def _drain_if_queued(
    session: AsyncSession, *, resource_id: str, actor_id: uuid.UUID | None = None
) -> None:
    """Chain the queue first only when it holds a record the page would show (one naming
    ``resource_id``, or by ``actor_id``): otherwise every record the page may show is
    already chained, and the page is exact without the drain's lease, head lock and chaining
    (most of a call's time, bench/who_saw.py). A record being chained by another replica's
    pass right now is still queued in this transaction's snapshot, so it is seen here and
    waited for. On PostgreSQL: the queue's rows are the ``seq`` index's null entries and the
    ids are tested by JSONB containment; SQLite drains as before (one writer, cheap)."""
    if session.get_bind().dialect.name != "postgresql":
        await sequencer.drain(session)
        return
    named = cast(AuditRecord.resource_ids, JSONB).contains([resource_id])
    wanted = named if actor_id is None else or_(named, AuditRecord.actor_id == actor_id)
    queued = await session.scalar(
        select(literal(1)).where(AuditRecord.seq.is_(None), wanted).limit(1)
    )
    if queued is not None:
        await sequencer.drain(session)


async def readers(
    *,
    session: AsyncSession,
    actor: Principal,
    resource_id: uuid.UUID,
    before: int | None = None,
    limit: int = 50,
) -> Page:
    """Every allowed use of a record (reads, exports, live deliveries, writes), newest first,
    with who, when, on which surface and under which labels: an index range of
    ``audit_resources`` joined to the trail, however long the trail is."""
    authorize(actor, Action.AUDIT)
    await _drain_if_queued(session, resource_id=str(resource_id))
    named = select(AuditResource.seq).where(AuditResource.resource_id == str(resource_id))
    if before is not None:
        named = named.where(AuditResource.seq < before)
    seqs = list(await session.scalars(named.order_by(AuditResource.seq.desc()).limit(limit + 1)))
    rows = (
        list(
            await session.scalars(
                select(AuditRecord)
                .where(AuditRecord.seq.in_(seqs), AuditRecord.decision == "allowed")
                .order_by(AuditRecord.seq.desc())
            )
        )
        if seqs
        else []
    )
    page = Page(rows[:limit], int(seqs[limit - 1]) if len(seqs) > limit else None)
    await _recorded(session, actor, "readers", page, record=resource_id)
    return page


async def activity(
    *,
    session: AsyncSession,
    actor: Principal,
    person_id: uuid.UUID,
    before: int | None = None,
    limit: int = 50,
) -> Page:
    """What a person did and what was done to their account, newest first: sign-ins (whose
    records name the account: no actor yet), reads, writes, exports, refusals, sessions and
    tokens, with addresses. Two index ranges (by actor, by record named), merged."""
    authorize(actor, Action.AUDIT)
    await _drain_if_queued(session, resource_id=str(person_id), actor_id=person_id)
    own = select(AuditRecord.seq).where(AuditRecord.actor_id == person_id)
    named = select(AuditResource.seq).where(AuditResource.resource_id == str(person_id))
    if before is not None:
        own = own.where(AuditRecord.seq < before)
        named = named.where(AuditResource.seq < before)
    seqs: set[int] = set()
    for query, column in ((own, AuditRecord.seq), (named, AuditResource.seq)):
        found = await session.scalars(query.order_by(column.desc()).limit(limit + 1))
        seqs.update(int(seq) for seq in found if seq is not None)
    wanted = sorted(seqs, reverse=True)[: limit + 1]
    rows = (
        list(
            await session.scalars(
                select(AuditRecord)
                .where(AuditRecord.seq.in_(wanted))
                .order_by(AuditRecord.seq.desc())
            )
        )
        if wanted
        else []
    )
    page = _page(rows, limit)
    await _recorded(session, actor, "activity", page, person=person_id)
    return page


def kind_of(record: AuditRecord) -> str:
    """What a record of a person's activity is, for the timeline."""
    action = record.action
    if action.startswith(("auth.sign_in", "mfa", "oidc")):
        return "sign_in"
    if record.decision != "allowed" or action.startswith("refused"):
        return "refusal"
    if action.startswith(("auth.", "session", "credentials.", "user.disable", "user.enable")):
        return "session"
    if action.startswith("api_token"):
        return "token"
    if "export" in action or action.endswith((".pdf", ".csv")):
        return "export"
    if action.endswith((".read", ".list", ".search", ".open", ".resume", ".title")):
        return "read"
    if action.startswith(("stream", "live", "audit", "search")) or ".read" in action:
        return "read"
    return "write"


async def title_of(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    resource_type: str,
    resource_id: uuid.UUID,
) -> str | None:
    """The record's title, only when the officer may read it under the one policy (a reading
    role and a clearance that sees its label now); else None (shown as "—"). A title shown is
    a read of the record: audited as one."""
    field = TITLE_FIELDS.get(resource_type)
    if field is None or resource_type not in KINDS or not allowed(actor, Action.READ):
        return None
    kind = KINDS[resource_type]
    row = await session.scalar(
        access.visible(session, settings, actor, kind.model).where(kind.model.id == resource_id)
    )
    if row is None:
        return None
    await audit.record(
        session=session,
        actor=actor,
        action=f"{resource_type}.title",
        resource_type=resource_type,
        resource_ids=[resource_id],
        labels=[row.label_level],
    )
    return str(getattr(row, field))
