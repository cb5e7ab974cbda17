"""A derived product's label dominates every source's (ADR 0028): its level is at least
theirs, it keeps their need-to-know groups, and its audience lies within theirs — every
organisation it is released to, and its owner, may already read each source."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.identity.models import NeedToKnowGroup, Organisation
from hypervision.identity.service import organisation_ancestry
from hypervision.policy.labels import Label
from hypervision.records.schemas import LabelIn

Ancestries = Mapping[str, frozenset[str]]


async def ancestries(session: AsyncSession, orgs: set[str]) -> dict[str, frozenset[str]]:
    """Each organisation with its parents (ids as text)."""
    found: dict[str, frozenset[str]] = {}
    for org in orgs:
        chain = await organisation_ancestry(session=session, org_id=uuid.UUID(org))
        found[org] = frozenset(str(o.id) for o in chain) | {org}
    return found


def _within(org: str, audience: frozenset[str], lineage: Ancestries) -> bool:
    return bool(lineage.get(org, frozenset({org})) & audience)


def problems(
    settings: Settings, derived: Label, source: Label, lineage: Ancestries
) -> list[tuple[str, str]]:
    """What keeps ``derived`` from dominating ``source`` (French, English), empty if nothing."""
    found: list[tuple[str, str]] = []
    if settings.level_rank(derived.level) < settings.level_rank(source.level):
        found.append((f"niveau {derived.level} sous {source.level}",
                      f"level {derived.level} below {source.level}"))  # fmt: skip
    missing = sorted(source.need_to_know - derived.need_to_know)
    if missing:
        found.append((f"groupes d'en-connaître manquants : {', '.join(missing)}",
                      f"missing need-to-know groups: {', '.join(missing)}"))  # fmt: skip
    if source.audience:
        owner_ok = derived.owner == source.owner or _within(derived.owner, source.audience, lineage)
        wider = not derived.audience or any(
            not _within(org, source.audience, lineage) for org in derived.audience
        )
        if wider or not owner_ok:
            found.append(("diffusion plus large que celle de la source",
                          "audience wider than the source's"))  # fmt: skip
    return found


def least(
    settings: Settings, owner: str, sources: Sequence[Label], lineage: Ancestries
) -> Label | None:
    """The lowest label of ``owner`` that dominates every source: the highest level, every
    group, and the organisations of the sources' audiences that lie within all of them (the
    owner's own when no source restricts it); None when no audience fits."""
    level = max((s.level for s in sources), key=settings.level_rank)
    groups = frozenset().union(*(s.need_to_know for s in sources))
    restricting = [s for s in sources if s.audience]
    if not restricting:
        return Label(level=level, need_to_know=groups, audience=frozenset({owner}), owner=owner)
    candidates = {owner} | set().union(*(s.audience for s in restricting))
    audience = frozenset(
        c for c in candidates if all(_within(c, s.audience, lineage) for s in restricting)
    )
    label = Label(level=level, need_to_know=groups, audience=audience, owner=owner)
    if not audience or any(problems(settings, label, s, lineage) for s in sources):
        return None
    return label


async def as_input(session: AsyncSession, label: Label) -> LabelIn:
    """A label of ids as the API's input (codes)."""
    codes = dict(
        (
            await session.execute(
                select(Organisation.id, Organisation.code).where(
                    Organisation.id.in_([uuid.UUID(a) for a in label.audience])
                )
            )
        ).all()
    )
    known = set(
        await session.scalars(
            select(NeedToKnowGroup.code).where(NeedToKnowGroup.code.in_(label.need_to_know))
        )
    )
    return LabelIn(
        level=label.level,
        need_to_know=sorted(known),
        audience=sorted(codes[uuid.UUID(a)] for a in label.audience),
    )
