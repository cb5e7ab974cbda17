"""Syntheses: drafting from a scope, editing, the four-eyes workflow, sending to cleared
recipients only, superseding, the inbox. Every step is a version + outbox + audit record."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Conflict, Forbidden, Invalid, NotFound
from hypervision.core.shapes import Area
from hypervision.db import utcnow
from hypervision.geo.zones import zone_area
from hypervision.identity.auth import Client, build_principals
from hypervision.identity.models import Organisation, User
from hypervision.identity.principal import Principal
from hypervision.logbook.entries import visible
from hypervision.logbook.models import Entry, Severity
from hypervision.logbook.query import EntryQuery
from hypervision.policy.labels import Label
from hypervision.policy.rules import Action, allowed, authorize, can_see, visible_filter
from hypervision.records import access, versions
from hypervision.records.access import dialect_of, subject_of
from hypervision.records.etags import check_if_match
from hypervision.records.labelling import resolve_label
from hypervision.synthesis import derived, key_figures
from hypervision.synthesis.access import visible_syntheses
from hypervision.synthesis.derived import ReaderView
from hypervision.synthesis.labels import at_least, combined
from hypervision.synthesis.models import (
    SYNTHESIS_KIND,
    Synthesis,
    SynthesisRecipient,
    SynthesisStatus,
)
from hypervision.synthesis.schemas import MAX_ENTRIES, Recipients, SynthesisDraft, SynthesisUpdate

SEVERITY_RANK = {s.value: n for n, s in enumerate(Severity)}
EDITABLE = (SynthesisStatus.DRAFT.value,)


class WrongStep(Conflict):
    code = "workflow"


# --- reading -----------------------------------------------------------------------------------


async def find(
    *, session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID
) -> Synthesis:
    query = visible_syntheses(session, settings, actor)
    return await access.find_in(session, query, SYNTHESIS_KIND, synthesis_id)


async def read(
    *, session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID
) -> tuple[Synthesis, ReaderView]:
    """The synthesis as ``actor`` may see it now: only the entries they may still see, the
    figures over those (ADR 0012); audited with the ids delivered."""
    synthesis = await find(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id
    )
    seen = await derived.view(session, settings, actor, synthesis)
    await audit.record(
        session=session,
        actor=actor,
        action="synthesis.read",
        resource_type="synthesis",
        resource_ids=[synthesis.id, *seen.entry_ids],
        labels=sorted({synthesis.label_level, *(e.label_level for e in seen.entries)}),
    )
    return synthesis, seen


async def list_syntheses(
    *, session: AsyncSession, settings: Settings, actor: Principal, limit: int = 100
) -> list[Synthesis]:
    rows = list(
        await session.scalars(
            visible_syntheses(session, settings, actor)
            .order_by(Synthesis.updated_at.desc(), Synthesis.id)
            .limit(limit)
        )
    )
    await access.delivered(session, actor, action="synthesis.list", kind="synthesis", rows=rows)
    return rows


# --- drafting ----------------------------------------------------------------------------------


def scope_query(scope: dict[str, Any], now: datetime, area: Area | None) -> EntryQuery:
    """A synthesis' scope as the one query specification for entries: its time window, its
    situations (those the reader sees), categories and zone, the severities from its floor up,
    duplicates left out."""
    since, until = key_figures.window(scope, now)
    floor = SEVERITY_RANK.get(scope.get("min_severity") or "info", 0)
    return EntryQuery(
        since=since,
        until=until,
        situations=tuple(uuid.UUID(s) for s in scope.get("situations") or ()),
        categories=tuple(scope.get("categories") or ()),
        severities=tuple(s for s, rank in SEVERITY_RANK.items() if rank >= floor),
        area=area,
        originals_only=True,
    )


async def in_scope(
    session: AsyncSession, settings: Settings, actor: Principal, scope: dict[str, Any]
) -> list[Entry]:
    area = None
    if scope.get("zone"):
        area = await zone_area(
            session=session, settings=settings, actor=actor, zone_id=uuid.UUID(scope["zone"])
        )
    query = scope_query(scope, utcnow(), area)
    selected = query.apply(
        visible(session, settings, actor),
        subject=subject_of(settings, actor),
        dialect=dialect_of(session),
    )
    rows = list(
        await session.scalars(selected.order_by(Entry.recorded_at.desc()).limit(5 * MAX_ENTRIES))
    )
    rows = [e for e in rows if query.residual(e)]
    rows.sort(key=lambda e: (-SEVERITY_RANK.get(e.severity, 0), -e.recorded_at.timestamp()))
    return rows[:MAX_ENTRIES]


def _apply_content(
    settings: Settings, synthesis: Synthesis, entries: list[Entry], raise_to: Label | None
) -> None:
    """Entries, figures and label together: the label follows what is inside, upwards only."""
    since, _ = key_figures.window(synthesis.scope, synthesis.created_at)
    synthesis.entry_ids = [str(e.id) for e in entries]
    synthesis.figures = key_figures.of(entries, since)
    owner = str(synthesis.organisation_id)
    floor = combined(settings, [e.label for e in entries], owner)
    current = synthesis.label if synthesis.label_level else floor
    candidates = [floor]
    if raise_to is not None:
        candidates.append(raise_to)
    if synthesis.label_level:  # never lowered: what it was stays the floor of what it becomes
        candidates.append(current)
    label = combined(settings, candidates, owner)
    # the invariant this function exists for (see labels.combined)
    assert at_least(settings, label, floor) and at_least(settings, label, current)
    synthesis.set_label(label)


DEFAULT_NARRATIVE = (
    "## Situation générale\n\n…\n\n## Points d'attention\n\n- …\n\n## Prochain point\n\n…\n"
)


async def draft(
    *, session: AsyncSession, settings: Settings, actor: Principal, data: SynthesisDraft,
    schedule_id: uuid.UUID | None = None,
) -> Synthesis:  # fmt: skip
    """A new draft from a scope: the entries in scope (gravest and newest first), their key
    figures, the label they require, a narrative skeleton."""
    authorize(actor, Action.TRIAGE)
    assert actor.user_id is not None and actor.organisation_id is not None
    scope = data.scope.model_dump(mode="json", exclude_none=True)
    now = utcnow()
    synthesis = Synthesis(
        title=data.title,
        status=SynthesisStatus.DRAFT.value,
        scope=scope,
        narrative=data.narrative if data.narrative is not None else DEFAULT_NARRATIVE,
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        created_at=now,
        updated_at=now,
        schedule_id=schedule_id,
        version=1,
        label_level="",
    )
    _apply_content(settings, synthesis, await in_scope(session, settings, actor, scope), None)
    session.add(synthesis)
    await versions.record_change(
        session=session, actor=actor, resource_type="synthesis", row=synthesis,
        action="create", before=None, summary={"status": synthesis.status},
    )  # fmt: skip
    return synthesis


async def _step(
    session: AsyncSession, actor: Principal, synthesis: Synthesis, action: str,
    before: dict[str, Any],
) -> None:  # fmt: skip
    synthesis.version += 1
    synthesis.updated_at = utcnow()
    await versions.record_change(
        session=session, actor=actor, resource_type="synthesis", row=synthesis,
        action=action, before=before, summary={"status": synthesis.status},
    )  # fmt: skip


async def _for_change(
    session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID,
    if_match: str | None,
) -> tuple[Synthesis, dict[str, Any]]:  # fmt: skip
    authorize(actor, Action.TRIAGE)
    synthesis = await find(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id
    )
    check_if_match(synthesis, if_match, required=False)
    return synthesis, versions.snapshot(synthesis)


async def update(
    *, session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID,
    data: SynthesisUpdate, if_match: str | None = None,
) -> Synthesis:  # fmt: skip
    synthesis, before = await _for_change(session, settings, actor, synthesis_id, if_match)
    if synthesis.status not in EDITABLE:
        raise WrongStep(
            "Seul un brouillon se modifie (une synthèse envoyée se rectifie par une nouvelle).",
            "Only a draft can be edited (a sent synthesis is corrected by a new one).",
        )
    if data.title is not None:
        synthesis.title = data.title
    if data.narrative is not None:
        synthesis.narrative = data.narrative
    chosen = [uuid.UUID(i) for i in synthesis.entry_ids]
    if data.entry_ids is not None:
        chosen = list(dict.fromkeys(data.entry_ids))
    rows = {
        e.id: e
        for e in await session.scalars(
            visible(session, settings, actor).where(Entry.id.in_(chosen))
        )
    }
    if data.entry_ids is not None and len(rows) != len(chosen):
        raise Invalid(
            "Une entrée choisie est introuvable.",
            "A chosen entry was not found.",
            extra={"fields": [{"field": "entry_ids", "message": "not found"}]},
        )
    raise_to = None
    if data.label is not None:
        raise_to = await resolve_label(
            session=session, settings=settings, actor=actor, data=data.label,
            owner=synthesis.organisation_id,
        )  # fmt: skip
    _apply_content(settings, synthesis, [rows[i] for i in chosen if i in rows], raise_to)
    if versions.snapshot(synthesis) != before:
        await _step(session, actor, synthesis, "update", before)
    return synthesis


async def submit(
    *, session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID,
    if_match: str | None = None,
) -> Synthesis:  # fmt: skip
    synthesis, before = await _for_change(session, settings, actor, synthesis_id, if_match)
    if synthesis.status != SynthesisStatus.DRAFT.value:
        raise WrongStep("Seul un brouillon se soumet.", "Only a draft can be submitted.")
    if not synthesis.entry_ids and not synthesis.narrative.strip():
        raise Invalid("La synthèse est vide.", "The synthesis is empty.")
    synthesis.status = SynthesisStatus.SUBMITTED.value
    synthesis.submitted_by, synthesis.submitted_at = actor.user_id, utcnow()
    await _step(session, actor, synthesis, "submit", before)
    return synthesis


async def return_to_draft(
    *, session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID,
    if_match: str | None = None,
) -> Synthesis:  # fmt: skip
    synthesis, before = await _for_change(session, settings, actor, synthesis_id, if_match)
    if synthesis.status not in (SynthesisStatus.SUBMITTED.value, SynthesisStatus.VALIDATED.value):
        raise WrongStep("Rien à reprendre.", "Nothing to take back.")
    synthesis.status = SynthesisStatus.DRAFT.value
    synthesis.validated_by = synthesis.validated_at = None
    await _step(session, actor, synthesis, "return", before)
    return synthesis


async def _require_whole(
    session: AsyncSession, settings: Settings, actor: Principal, synthesis: Synthesis
) -> None:
    """Who validates or sends a synthesis answers for all of it (narrative included, which no
    redaction can touch): they must see every entry it was made from (ADR 0012)."""
    if (await derived.view(session, settings, actor, synthesis)).redacted:
        raise Forbidden(
            "Une partie de cette synthèse vous est masquée : un chef de salle habilité pour "
            "tout son contenu la valide et l'envoie.",
            "Part of this synthesis is hidden from you: a watch officer cleared for all of it "
            "validates and sends it.",
            code="content_not_cleared",
        )


async def validate(
    *, session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID,
    if_match: str | None = None,
) -> Synthesis:  # fmt: skip
    """Four eyes: another watch officer than the author and the one who submitted it."""
    synthesis, before = await _for_change(session, settings, actor, synthesis_id, if_match)
    if synthesis.status != SynthesisStatus.SUBMITTED.value:
        raise WrongStep(
            "Seule une synthèse soumise se valide.", "Only a submitted synthesis is validated."
        )
    if actor.user_id in (synthesis.author_id, synthesis.submitted_by):
        raise Forbidden(
            "Validation par un autre chef de salle que l'auteur (principe des quatre yeux).",
            "Another watch officer than the author must validate it (four eyes).",
            code="four_eyes",
        )
    await _require_whole(session, settings, actor, synthesis)
    synthesis.status = SynthesisStatus.VALIDATED.value
    synthesis.validated_by, synthesis.validated_at = actor.user_id, utcnow()
    await _step(session, actor, synthesis, "validate", before)
    return synthesis


# --- sending -----------------------------------------------------------------------------------


async def recipient_users(
    session: AsyncSession, chosen: Recipients
) -> list[tuple[User, uuid.UUID | None]]:
    """The users ``chosen`` names (usernames; an organisation's active human members, with
    the organisation they came through): unknown names are a 422. Also used by reports."""
    users: dict[uuid.UUID, tuple[User, uuid.UUID | None]] = {}
    if chosen.users:
        names = [u.strip().lower() for u in chosen.users]
        found = {
            u.username: u
            for u in await session.scalars(select(User).where(User.username.in_(names)))
        }
        missing = [n for n in names if n not in found]
        if missing:
            raise Invalid(
                f"Destinataire(s) inconnu(s) : {', '.join(missing[:5])}.",
                f"Unknown recipient(s): {', '.join(missing[:5])}.",
                extra={"fields": [{"field": "users", "message": "unknown"}]},
            )
        for user in found.values():
            users[user.id] = (user, None)
    for code in chosen.organisations:
        org = await session.scalar(select(Organisation).where(Organisation.code == code.strip()))
        if org is None:
            raise Invalid(
                f"Organisation inconnue : {code[:32]}.",
                f"Unknown organisation: {code[:32]}.",
                extra={"fields": [{"field": "organisations", "message": "unknown"}]},
            )
        members = await session.scalars(
            select(User).where(
                User.organisation_id == org.id, User.is_active.is_(True), User.is_machine.is_(False)
            )
        )
        for user in members:
            users.setdefault(user.id, (user, org.id))
    return list(users.values())


async def send(
    *, session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID,
    recipients: Recipients, if_match: str | None = None,
) -> tuple[Synthesis, list[SynthesisRecipient]]:  # fmt: skip
    """Send a validated synthesis. Every named recipient must be cleared for the synthesis and
    every entry in it, or nothing is sent; an organisation's members who are not cleared are
    left out (and an organisation with none cleared is refused)."""
    synthesis, before = await _for_change(session, settings, actor, synthesis_id, if_match)
    if synthesis.status != SynthesisStatus.VALIDATED.value:
        raise WrongStep(
            "Seule une synthèse validée s'envoie.", "Only a validated synthesis is sent."
        )
    await _require_whole(session, settings, actor, synthesis)
    wanted = [uuid.UUID(i) for i in synthesis.entry_ids]
    entries = list(await session.scalars(select(Entry).where(Entry.id.in_(wanted))))
    labels = [synthesis.label, *(e.label for e in entries)]
    candidates = await recipient_users(session, recipients)
    if not candidates:
        raise Invalid("Choisissez au moins un destinataire.", "Choose at least one recipient.")
    cleared: list[tuple[User, uuid.UUID | None]] = []
    refused: list[str] = []
    per_org: Counter[uuid.UUID] = Counter()
    principals = await build_principals(
        session=session, users=[user for user, _ in candidates], client=Client(None, None)
    )
    for user, via in candidates:
        principal = principals[user.id]
        ok = user.is_active and allowed(principal, Action.READ)
        ok = ok and all(can_see(subject_of(settings, principal), label) for label in labels)
        if ok:
            cleared.append((user, via))
            if via:
                per_org[via] += 1
        elif via is None:
            refused.append(user.full_name)
    if refused:
        raise Forbidden(
            f"Non habilité(s) pour cette synthèse ({synthesis.label_level}"
            f"{', besoin d en connaître' if synthesis.need_to_know else ''}) : "
            f"{', '.join(refused[:5])}. Retirez-les ou changez le contenu.",
            f"Not cleared for this synthesis ({synthesis.label_level}): {', '.join(refused[:5])}. "
            "Remove them or change the content.",
            code="recipient_not_cleared",
        )
    for code in recipients.organisations:
        org_id = await session.scalar(
            select(Organisation.id).where(Organisation.code == code.strip())
        )
        if org_id is not None and per_org[org_id] == 0:
            raise Forbidden(
                f"Personne n'est habilité pour cette synthèse dans l'organisation {code[:32]}.",
                f"Nobody in organisation {code[:32]} is cleared for this synthesis.",
                code="recipient_not_cleared",
            )
    now = utcnow()
    rows = []
    for user, via in cleared:
        row = SynthesisRecipient(
            synthesis_id=synthesis.id,
            user_id=user.id,
            via_organisation_id=via,
            delivered_at=now,
            email_status="pending" if settings.smtp_host and user.email else "none",
        )
        session.add(row)
        rows.append(row)
    synthesis.status = SynthesisStatus.SENT.value
    synthesis.sent_by, synthesis.sent_at = actor.user_id, now
    await _step(session, actor, synthesis, "send", before)
    await audit.record(
        session=session, actor=actor, action="synthesis.deliver", resource_type="user",
        resource_ids=[u.id for u, _ in cleared], labels=[synthesis.label_level],
        detail={"synthesis_id": str(synthesis.id)},
    )  # fmt: skip
    if synthesis.supersedes_id:
        old = await session.get(Synthesis, synthesis.supersedes_id)
        if old is not None and old.status == SynthesisStatus.SENT.value:
            old_before = versions.snapshot(old)
            old.status = SynthesisStatus.SUPERSEDED.value
            await _step(session, actor, old, "supersede", old_before)
    return synthesis, rows


async def supersede(
    *, session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID
) -> Synthesis:
    """A correction of a sent synthesis: a new draft with the same content that, once sent,
    marks the first one superseded (the first one never changes)."""
    authorize(actor, Action.TRIAGE)
    original, seen = await read(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id
    )
    if original.status != SynthesisStatus.SENT.value:
        raise WrongStep(
            "Seule une synthèse envoyée se rectifie.", "Only a sent synthesis is corrected."
        )
    assert actor.user_id is not None and actor.organisation_id is not None
    now = utcnow()
    copy = Synthesis(
        title=f"Rectificatif — {original.title}"[:200],
        status=SynthesisStatus.DRAFT.value,
        scope=original.scope,
        narrative=original.narrative,
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        created_at=now,
        updated_at=now,
        supersedes_id=original.id,
        version=1,
        label_level="",
    )
    _apply_content(settings, copy, seen.entries, original.label)
    session.add(copy)
    await versions.record_change(
        session=session, actor=actor, resource_type="synthesis", row=copy,
        action="create", before=None,
        summary={"status": copy.status, "supersedes": str(original.id)},
    )  # fmt: skip
    return copy


# --- inbox -------------------------------------------------------------------------------------


async def inbox(
    *, session: AsyncSession, settings: Settings, actor: Principal
) -> list[tuple[Synthesis, SynthesisRecipient]]:
    authorize(actor, Action.READ)
    result = await session.execute(
        select(Synthesis, SynthesisRecipient)
        .join(SynthesisRecipient, SynthesisRecipient.synthesis_id == Synthesis.id)
        .where(
            SynthesisRecipient.user_id == actor.user_id,
            visible_filter(subject_of(settings, actor), Synthesis, dialect_of(session)),
        )
        .order_by(SynthesisRecipient.delivered_at.desc())
        .limit(200)
    )
    rows = [(synthesis, recipient) for synthesis, recipient in result.all()]
    await audit.record(
        session=session, actor=actor, action="synthesis.inbox", resource_type="synthesis",
        resource_ids=[s.id for s, _ in rows], labels=sorted({s.label_level for s, _ in rows}),
    )  # fmt: skip
    return rows


async def delivery(
    *, session: AsyncSession, synthesis: Synthesis, actor: Principal
) -> SynthesisRecipient | None:
    """The actor's own delivery of a synthesis they have read (None when not sent to them)."""
    return await session.scalar(
        select(SynthesisRecipient).where(
            SynthesisRecipient.synthesis_id == synthesis.id,
            SynthesisRecipient.user_id == actor.user_id,
        )
    )


async def acknowledge(
    *, session: AsyncSession, settings: Settings, actor: Principal, synthesis_id: uuid.UUID
) -> SynthesisRecipient:
    synthesis = await find(
        session=session, settings=settings, actor=actor, synthesis_id=synthesis_id
    )
    row = await delivery(session=session, synthesis=synthesis, actor=actor)
    if row is None:
        raise NotFound("Synthèse introuvable.", "Synthesis not found.")
    if row.acknowledged_at is None:
        row.acknowledged_at = utcnow()
        await audit.record(
            session=session, actor=actor, action="synthesis.acknowledge",
            resource_type="synthesis", resource_ids=[synthesis.id],
            labels=[synthesis.label_level],
        )  # fmt: skip
    return row
