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


def _may(roles: set[str], action: Action | None) -> bool:
    """One of ``roles`` grants ``action``."""
    granted = (actions for role, actions in ROLE_ACTIONS.items() if role.value in roles)
    return action is not None and any(action in actions for actions in granted)


async def count_readers(
    *,
    session: AsyncSession,
    settings: Settings,
    label: Label,
    only: frozenset[uuid.UUID] | None = None,
    unless: Action | None = None,
) -> int:
    """Active accounts with a reading role that the policy lets see a record of ``label``;
    when ``only`` is given, among those accounts only, except for roles allowed ``unless``
    (a synthesis: those it was sent to, and every watch officer)."""
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
        held = set(roles or ())
        if not READING_ROLES & held:
            continue
        if only is not None and user_id not in only and not _may(held, unless):
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
