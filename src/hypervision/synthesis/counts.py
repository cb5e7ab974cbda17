"""What awaits someone among the syntheses, as counts for the page frame and the homes: the
syntheses sent to an authority that they have not acknowledged yet, and those a watch officer
may validate. Counts of what the policy lets them see (like the follows' badge): no content
is delivered, so nothing is audited here; opening the list is."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.identity.principal import Principal
from hypervision.policy.roles import Role
from hypervision.policy.rules import Action, allowed
from hypervision.synthesis.access import visible_syntheses
from hypervision.synthesis.models import Synthesis, SynthesisRecipient, SynthesisStatus

CAP = 99  # the badge shows "99+"


async def unread(*, session: AsyncSession, settings: Settings, actor: Principal) -> int:
    """Syntheses delivered to ``actor``, visible to them and not acknowledged yet. Syntheses
    are sent to authorities: nobody else pays for the query."""
    if actor.user_id is None or Role.AUTHORITY not in actor.roles:
        return 0
    if not allowed(actor, Action.READ):
        return 0
    pending = select(SynthesisRecipient.synthesis_id).where(
        SynthesisRecipient.user_id == actor.user_id,
        SynthesisRecipient.acknowledged_at.is_(None),
    )
    query = visible_syntheses(session, settings, actor).where(Synthesis.id.in_(pending))
    inner = query.with_only_columns(Synthesis.id).limit(CAP + 1).subquery()
    return int(await session.scalar(select(func.count()).select_from(inner)) or 0)


async def awaiting_validation(
    *, session: AsyncSession, settings: Settings, actor: Principal
) -> int:
    """Submitted syntheses a watch officer sees and did not write (four eyes: the author
    cannot validate their own)."""
    if actor.user_id is None or not allowed(actor, Action.TRIAGE):
        return 0
    query = visible_syntheses(session, settings, actor).where(
        Synthesis.status == SynthesisStatus.SUBMITTED.value,
        Synthesis.author_id != actor.user_id,
        (Synthesis.submitted_by.is_(None)) | (Synthesis.submitted_by != actor.user_id),
    )
    inner = query.with_only_columns(Synthesis.id).limit(CAP + 1).subquery()
    return int(await session.scalar(select(func.count()).select_from(inner)) or 0)


async def recipients(*, session: AsyncSession, synthesis_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """The accounts a synthesis was sent to (who, besides watch officers, may read it)."""
    query = select(SynthesisRecipient.user_id).where(
        SynthesisRecipient.synthesis_id == synthesis_id
    )
    return frozenset(await session.scalars(query))
