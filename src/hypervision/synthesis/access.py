"""Which syntheses a reader may know of: the one query every synthesis read starts from."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.identity.principal import Principal
from hypervision.policy.rules import Action, allowed
from hypervision.records import access
from hypervision.synthesis.models import Synthesis, SynthesisRecipient


def visible_syntheses(
    session: AsyncSession, settings: Settings, actor: Principal
) -> Select[Synthesis]:
    """Watch officers see the syntheses their clearance allows; anyone else only those sent
    to them (and allowed by the label too)."""
    query = access.visible(session, settings, actor, Synthesis)
    if not allowed(actor, Action.TRIAGE):
        mine = select(SynthesisRecipient.synthesis_id).where(
            SynthesisRecipient.user_id == actor.user_id
        )
        query = query.where(Synthesis.id.in_(mine))
    return query
