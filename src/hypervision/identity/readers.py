"""How many people can read a labelled record: the policy's visibility rule (``can_see``) run
over every active account whose roles read, as the page "who can see this" says it.

A count of people, not a delivery of records: the record itself was read (and audited) by
whoever asks. Three statements whatever the number of users: accounts, their groups, the
organisation tree."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.identity.models import NeedToKnowGroup, Organisation, User, UserGroup
from hypervision.policy.labels import Label
from hypervision.policy.rules import ROLE_ACTIONS, Action, Subject, can_see

READING_ROLES = frozenset(r.value for r, actions in ROLE_ACTIONS.items() if Action.READ in actions)


def _ancestry(org_id: uuid.UUID, parents: dict[uuid.UUID, uuid.UUID | None]) -> frozenset[str]:
    chain: list[str] = []
    current: uuid.UUID | None = org_id
    while current is not None and len(chain) <= len(parents):
        chain.append(str(current))
        current = parents.get(current)
    return frozenset(chain)


async def count_readers(*, session: AsyncSession, settings: Settings, label: Label) -> int:
    """Active accounts with a reading role that the policy lets see a record of ``label``."""
    users = (
        await session.execute(
            select(User.id, User.clearance, User.organisation_id, User.roles).where(
                User.is_active.is_(True)
            )
        )
    ).all()
    memberships = await session.execute(
        select(UserGroup.user_id, NeedToKnowGroup.code).join(
            NeedToKnowGroup, NeedToKnowGroup.id == UserGroup.group_id
        )
    )
    groups: dict[uuid.UUID, set[str]] = defaultdict(set)
    for user_id, code in memberships:
        groups[user_id].add(code)
    parents = dict((await session.execute(select(Organisation.id, Organisation.parent_id))).all())
    count = 0
    for user_id, clearance, org_id, roles in users:
        if not READING_ROLES & set(roles or ()):
            continue
        levels: tuple[str, ...] = ()
        if clearance in settings.label_levels:
            levels = settings.label_levels[: settings.level_rank(clearance) + 1]
        subject = Subject(
            allowed_levels=levels,
            groups=frozenset(groups.get(user_id, ())),
            organisation=str(org_id),
            ancestry=_ancestry(org_id, parents),
        )
        count += can_see(subject, label)
    return count
