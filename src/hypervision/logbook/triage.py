"""Watch officers' actions on entries, label changes (four eyes to lower), and history reads."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Conflict, Forbidden, Invalid, NotFound
from hypervision.db import utcnow
from hypervision.identity.principal import Principal
from hypervision.logbook.entries import (
    find_visible,
    linked_entry,
    linked_situation,
    may_edit,
    save_version,
)
from hypervision.logbook.models import Entry, LabelChangeRequest, LabelRequestStatus, Severity
from hypervision.policy.labels import Label, is_lowering
from hypervision.policy.rules import Action, authorize, visible_filter
from hypervision.records import versions
from hypervision.records.access import dialect_of, subject_of
from hypervision.records.etags import check_if_match
from hypervision.records.labelling import resolve_label
from hypervision.records.models import RecordVersion
from hypervision.records.schemas import LabelIn


async def _for_triage(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
    if_match: str | None,
) -> tuple[Entry, dict[str, object]]:
    entry = await find_visible(session=session, settings=settings, actor=actor, entry_id=entry_id)
    authorize(actor, Action.TRIAGE)
    check_if_match(entry, if_match, required=False)
    return entry, versions.snapshot(entry)


async def validate(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
    if_match: str | None = None,
) -> Entry:
    entry, before = await _for_triage(session, settings, actor, entry_id, if_match)
    if entry.validated_at is not None:
        raise Conflict("Entrée déjà validée.", "Entry already validated.")
    entry.validated_at, entry.validated_by = utcnow(), actor.user_id
    return await save_version(
        session=session, actor=actor, entry=entry, action="validate", before=before
    )


async def set_severity(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
    severity: Severity,
    if_match: str | None = None,
) -> Entry:
    entry, before = await _for_triage(session, settings, actor, entry_id, if_match)
    entry.severity = severity.value
    return await save_version(
        session=session, actor=actor, entry=entry, action="severity", before=before
    )


async def mark_duplicate(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
    duplicate_of: uuid.UUID,
    if_match: str | None = None,
) -> Entry:
    entry, before = await _for_triage(session, settings, actor, entry_id, if_match)
    if duplicate_of == entry.id:
        raise Invalid(
            "Une entrée ne peut pas être son propre doublon.",
            "An entry cannot duplicate itself.",
            extra={"fields": [{"field": "duplicate_of", "message": "same entry"}]},
        )
    original = await linked_entry(session, settings, actor, duplicate_of, "duplicate_of")
    if original.duplicate_of_id == entry.id:
        raise Invalid(
            "Cette entrée est déjà marquée comme doublon de celle-ci.",
            "That entry is already marked as a duplicate of this one.",
            extra={"fields": [{"field": "duplicate_of", "message": "cycle"}]},
        )
    entry.duplicate_of_id = original.id
    return await save_version(
        session=session, actor=actor, entry=entry, action="duplicate", before=before
    )


async def link_situation(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
    situation_id: uuid.UUID | None,
    if_match: str | None = None,
) -> Entry:
    entry, before = await _for_triage(session, settings, actor, entry_id, if_match)
    if situation_id is not None:
        await linked_situation(session, settings, actor, situation_id)
    entry.situation_id = situation_id
    return await save_version(
        session=session, actor=actor, entry=entry, action="situation", before=before
    )


# --- label changes ---------------------------------------------------------------------------


async def change_label(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
    data: LabelIn,
    reason: str,
    if_match: str | None = None,
) -> Entry | LabelChangeRequest:
    """Raising a label applies at once; lowering it waits for a second person's approval."""
    entry = await find_visible(session=session, settings=settings, actor=actor, entry_id=entry_id)
    if not may_edit(actor, entry):
        raise Forbidden(
            "Seuls l'organisation auteure et les chefs de salle changent le marquage.",
            "Only the owner organisation and watch officers change the label.",
        )
    check_if_match(entry, if_match, required=False)
    new = await resolve_label(
        session=session, settings=settings, actor=actor, data=data, owner=entry.organisation_id
    )
    if new == entry.label:
        raise Conflict("Le marquage est déjà celui-ci.", "The label is already this one.")
    if is_lowering(settings, entry.label, new):
        request = LabelChangeRequest(
            resource_type="entry",
            resource_id=entry.id,
            requested_by=actor.user_id,
            label=new.as_dict(),
            reason=reason,
        )
        session.add(request)
        await session.flush()
        await audit.record(
            session=session,
            actor=actor,
            action="entry.label_request",
            resource_type="entry",
            resource_ids=[entry.id],
            labels=[entry.label_level, new.level],
            detail={"request_id": str(request.id)},
        )
        return request
    return await _apply_label(session, actor, entry, new)


async def _apply_label(
    session: AsyncSession, actor: Principal, entry: Entry, label: Label
) -> Entry:
    before = versions.snapshot(entry)
    entry.set_label(label)
    return await save_version(
        session=session, actor=actor, entry=entry, action="label", before=before
    )


async def pending_label_requests(
    *, session: AsyncSession, settings: Settings, actor: Principal
) -> list[LabelChangeRequest]:
    """Pending requests on entries the actor can see, for approvers."""
    authorize(actor, Action.APPROVE_LABEL)
    rows = await session.scalars(
        select(LabelChangeRequest)
        .join(Entry, Entry.id == LabelChangeRequest.resource_id)
        .where(LabelChangeRequest.status == LabelRequestStatus.PENDING.value)
        .where(_visible_entries_clause(session, settings, actor))
        .order_by(LabelChangeRequest.requested_at)
    )
    requests = list(rows)
    await audit.record(
        session=session,
        actor=actor,
        action="label_request.list",
        resource_type="label_request",
        resource_ids=[r.id for r in requests],
    )
    return requests


def _visible_entries_clause(
    session: AsyncSession, settings: Settings, actor: Principal
) -> ColumnElement[bool]:
    return visible_filter(subject_of(settings, actor), Entry, dialect_of(session))


async def decide_label_request(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    request_id: uuid.UUID,
    approve: bool,
) -> LabelChangeRequest:
    authorize(actor, Action.APPROVE_LABEL)
    request = await session.get(LabelChangeRequest, request_id)
    if request is None or request.status != LabelRequestStatus.PENDING.value:
        raise NotFound("Demande introuvable ou déjà traitée.", "Request not found or decided.")
    entry = await find_visible(
        session=session, settings=settings, actor=actor, entry_id=request.resource_id
    )
    if request.requested_by == actor.user_id:
        raise Forbidden(
            "Une seconde personne doit approuver l'abaissement d'un marquage.",
            "A second person must approve lowering a label.",
            code="four_eyes",
        )
    request.status = (LabelRequestStatus.APPROVED if approve else LabelRequestStatus.REJECTED).value
    request.decided_by, request.decided_at = actor.user_id, utcnow()
    await audit.record(
        session=session,
        actor=actor,
        action="entry.label_approve" if approve else "entry.label_reject",
        resource_type="entry",
        resource_ids=[entry.id],
        labels=[entry.label_level, request.label["level"]],
        detail={"request_id": str(request.id)},
    )
    if approve:
        label = Label(
            level=request.label["level"],
            need_to_know=frozenset(request.label["need_to_know"]),
            audience=frozenset(request.label["audience"]),
            owner=str(entry.organisation_id),
        )
        await _apply_label(session, actor, entry, label)
    return request


# --- history ---------------------------------------------------------------------------------


async def entry_versions(
    *, session: AsyncSession, settings: Settings, actor: Principal, entry_id: uuid.UUID
) -> list[RecordVersion]:
    """Every version of a visible entry that the actor is cleared for (each version carries
    the label it had)."""
    entry = await find_visible(session=session, settings=settings, actor=actor, entry_id=entry_id)
    seen = await versions.visible_versions(
        session=session, subject=subject_of(settings, actor), resource_id=entry.id
    )
    await audit.record(
        session=session,
        actor=actor,
        action="entry.versions",
        resource_type="entry",
        resource_ids=[entry.id],
        labels=sorted({v.label_level for v in seen}),
        detail={"versions": [v.version for v in seen]},
    )
    return seen
