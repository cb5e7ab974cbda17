"""Turning a label typed by a person (codes) into a stored label (ids), and back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.errors import Invalid
from hypervision.identity import names
from hypervision.identity.models import NeedToKnowGroup, Organisation
from hypervision.identity.principal import Principal
from hypervision.policy.labels import Label, check_level
from hypervision.records.schemas import LabelIn, LabelRead


class Directory:
    """Organisation codes, usernames and display names for presenting records, loaded once
    per request."""

    def __init__(
        self,
        orgs: dict[uuid.UUID, str],
        users: dict[uuid.UUID, str],
        full_names: dict[uuid.UUID, str] | None = None,
    ) -> None:
        self.orgs = orgs
        self.users = users
        self.full_names = full_names or {}
        # Ids of linked records (situation, duplicate, follow-up) this reader may see; the
        # others are presented as no link at all (SECURITY.md item 32). Empty until loaded:
        # fails closed.
        self.references: frozenset[uuid.UUID] = frozenset()

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        user_ids: Iterable[uuid.UUID | None],
        org_ids: Iterable[uuid.UUID] | None = None,
    ) -> Directory:
        """Names for ``user_ids``, and every organisation's code (``org_ids``: those that
        must be known, when the caller can say; ``identity.names`` then reads nothing that it
        already holds)."""
        found = await names.lookup(session, user_ids, org_ids)
        return cls(found.orgs, found.users, found.full_names)

    def org(self, org_id: uuid.UUID | str) -> str:
        key = org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(org_id)
        return self.orgs.get(key, "?")

    def user(self, user_id: uuid.UUID | None) -> str | None:
        return self.users.get(user_id) if user_id else None

    def full_name(self, user_id: uuid.UUID | None) -> str | None:
        """The person's display name (their login when they have none)."""
        if not user_id:
            return None
        return self.full_names.get(user_id) or self.users.get(user_id)

    def ref(self, target: uuid.UUID | str | None) -> uuid.UUID | None:
        """``target`` when the reader may see that record, else None (no trace of it)."""
        if target is None:
            return None
        key = target if isinstance(target, uuid.UUID) else uuid.UUID(str(target))
        return key if key in self.references else None

    def label(self, label: Label) -> LabelRead:
        return LabelRead(
            level=label.level,
            need_to_know=sorted(label.need_to_know),
            audience=sorted(self.org(o) for o in label.audience),
        )


def default_label(settings: Settings, actor: Principal) -> Label:
    """The safe default: lowest level, released to the author's organisation only."""
    org = str(actor.organisation_id)
    return Label(level=settings.label_levels[0], audience=frozenset({org}), owner=org)


async def resolve_label(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    data: LabelIn | None,
    owner: uuid.UUID | None = None,
) -> Label:
    """Validate a label: known level under the ceiling, within the author's own clearance and
    groups (nobody labels what they could not read), existing groups and organisations."""
    owner_id = str(owner or actor.organisation_id)
    if data is None:
        return default_label(settings, actor)
    check_level(settings, data.level)
    if actor.clearance is None or settings.level_rank(data.level) > settings.level_rank(
        actor.clearance
    ):
        raise Invalid(
            f"Vous ne pouvez pas marquer une information {data.level} : votre habilitation est "
            f"{actor.clearance}.",
            f"You cannot mark information {data.level}: your clearance is {actor.clearance}.",
            code="label_refused",
            extra={"fields": [{"field": "label.level", "message": "above your clearance"}]},
        )
    groups = set(data.need_to_know)
    known: set[str] = set()
    if groups:  # an empty set needs no query
        known = set(
            await session.scalars(
                select(NeedToKnowGroup.code).where(NeedToKnowGroup.code.in_(groups))
            )
        )
    if groups - known:
        raise _field_error(
            "label.need_to_know", f"unknown group(s): {', '.join(sorted(groups - known))}"
        )
    if not groups <= actor.groups:
        raise _field_error("label.need_to_know", "you can only use groups you belong to")
    codes = set(data.audience)
    orgs: dict[str, uuid.UUID] = {}
    if codes:
        query = select(Organisation.code, Organisation.id).where(Organisation.code.in_(codes))
        orgs = {code: org_id for code, org_id in (await session.execute(query)).all()}
    if codes - orgs.keys():
        raise _field_error(
            "label.audience", f"unknown organisation(s): {', '.join(sorted(codes - orgs.keys()))}"
        )
    return Label(
        level=data.level,
        need_to_know=frozenset(groups),
        audience=frozenset(str(i) for i in orgs.values()),
        owner=owner_id,
    )


def _field_error(field: str, message: str) -> Invalid:
    return Invalid(
        f"Marquage invalide ({field}) : {message}.",
        f"Invalid label ({field}): {message}.",
        code="label_refused",
        extra={"fields": [{"field": field, "message": message}]},
    )
