"""Four eyes on rights (SECURITY.md 30, ADR 0013).

A user's rights are their roles, clearance, need-to-know groups and whether the account is
active. Nobody changes their own. A change that narrows someone's rights (a role removed, a
lower clearance, a group removed) applies at once: revocation is immediate (SECURITY.md 5). A
change that widens them (a role added, a higher clearance, a group added, a disabled account
enabled) is recorded as a pending request that only a second administrator — neither the
requester nor the person concerned — may approve. The server's own context (the CLI, ``demo
load``: its operator holds the secret key and the database) applies at once.

Requests mirror the label-lowering requests of the logbook (``logbook/triage.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Conflict, Forbidden, Invalid, NotFound
from hypervision.db import utcnow
from hypervision.identity.models import (
    NeedToKnowGroup,
    RightsRequest,
    RightsRequestStatus,
    User,
    UserGroup,
)
from hypervision.identity.principal import Principal
from hypervision.identity.revocation import announce_revocation
from hypervision.identity.schemas import RightsRequestRead, RightsState
from hypervision.policy.roles import Role, Scope


def require_admin(actor: Principal) -> None:
    if not actor.can(Role.ADMINISTRATOR, Scope.ADMIN):
        raise Forbidden("Réservé aux administrateurs des habilitations.", "Administrators only.")


def check_level(settings: Settings, level: str, field: str = "clearance") -> None:
    if level not in settings.label_levels:
        levels = ", ".join(settings.label_levels)
        raise Invalid(
            f"Niveau {level!r} inconnu : niveaux possibles {levels}.",
            f"Unknown level {level!r}: allowed levels are {levels}.",
            extra={"fields": [{"field": field, "message": f"one of {levels}"}]},
        )


async def groups_by_code(session: AsyncSession, codes: Sequence[str]) -> list[NeedToKnowGroup]:
    wanted = set(codes)
    found = list(
        await session.scalars(select(NeedToKnowGroup).where(NeedToKnowGroup.code.in_(wanted)))
    )
    missing = wanted - {g.code for g in found}
    if missing:
        names = ", ".join(sorted(missing))
        raise Invalid(
            f"Groupe(s) inconnu(s) : {names}.",
            f"Unknown group(s): {names}.",
            extra={"fields": [{"field": "groups", "message": f"unknown: {names}"}]},
        )
    return found


async def user_group_codes(*, session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    rows = await session.scalars(
        select(NeedToKnowGroup.code)
        .join(UserGroup, UserGroup.group_id == NeedToKnowGroup.id)
        .where(UserGroup.user_id == user_id)
        .order_by(NeedToKnowGroup.code)
    )
    return list(rows)


async def users_group_codes(
    *, session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """``user_group_codes`` for many users, in one query."""
    found: dict[uuid.UUID, list[str]] = {user_id: [] for user_id in user_ids}
    if not user_ids:
        return found
    rows = await session.execute(
        select(UserGroup.user_id, NeedToKnowGroup.code)
        .join(UserGroup, UserGroup.group_id == NeedToKnowGroup.id)
        .where(UserGroup.user_id.in_(sorted(set(user_ids))))
        .order_by(NeedToKnowGroup.code)
    )
    for user_id, code in rows:
        found[user_id].append(code)
    return found


# --- rights and their comparison --------------------------------------------------------------


@dataclass(frozen=True)
class Rights:
    roles: frozenset[str]
    clearance: str
    groups: frozenset[str]
    is_active: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "roles": sorted(self.roles),
            "clearance": self.clearance,
            "groups": sorted(self.groups),
            "is_active": self.is_active,
        }

    @classmethod
    def of(cls, stored: dict[str, Any]) -> Rights:
        return cls(
            roles=frozenset(stored["roles"]),
            clearance=stored["clearance"],
            groups=frozenset(stored["groups"]),
            is_active=bool(stored["is_active"]),
        )

    def with_(
        self,
        *,
        roles: Sequence[str] | None = None,
        clearance: str | None = None,
        groups: Sequence[str] | None = None,
    ) -> Rights:
        """These rights with the given parts replaced (``None``: unchanged)."""
        return replace(
            self,
            roles=self.roles if roles is None else frozenset(roles),
            clearance=self.clearance if clearance is None else clearance,
            groups=self.groups if groups is None else frozenset(groups),
        )


def none_yet(settings: Settings) -> Rights:
    """The rights of an account just created by a person: no role, the lowest clearance."""
    return Rights(frozenset(), settings.label_levels[0], frozenset(), True)


async def current_rights(*, session: AsyncSession, user: User) -> Rights:
    groups = await user_group_codes(session=session, user_id=user.id)
    return Rights(frozenset(user.roles), user.clearance, frozenset(groups), user.is_active)


def split(settings: Settings, before: Rights, asked: Rights) -> tuple[Rights, Rights | None]:
    """What applies now (every narrowing part of ``asked``) and, if something widens, the
    rights a request asks for (``asked`` itself, to be applied over the first)."""
    up = settings.level_rank(asked.clearance) > settings.level_rank(before.clearance)
    now = Rights(
        roles=before.roles & asked.roles,
        clearance=before.clearance if up else asked.clearance,
        groups=before.groups & asked.groups,
        is_active=before.is_active and asked.is_active,
    )
    return now, (asked if asked != now else None)


def refuse_own(actor: Principal, user: User, before: Rights, asked: Rights) -> None:
    """Nobody changes their own roles, clearance or groups, not even to narrow them."""
    if actor.user_id == user.id and (
        asked.roles != before.roles
        or asked.clearance != before.clearance
        or asked.groups != before.groups
    ):
        raise Forbidden(
            "Vous ne pouvez pas modifier vos propres droits (rôles, habilitation, groupes) : "
            "un autre administrateur doit le faire.",
            "You cannot change your own rights (roles, clearance, groups): another "
            "administrator must do it.",
            code="own_rights",
        )


async def apply(
    *, session: AsyncSession, user: User, before: Rights, after: Rights
) -> dict[str, object]:
    """Set ``after`` on the user; returns what changed. Open live streams of the user are
    closed when a right changed (they reopen with the new rights)."""
    changes: dict[str, object] = {}
    if after.roles != before.roles:
        user.roles = sorted(after.roles)
        changes["roles"] = {"from": sorted(before.roles), "to": user.roles}
    if after.clearance != before.clearance:
        user.clearance = after.clearance
        changes["clearance"] = {"from": before.clearance, "to": after.clearance}
    if after.groups != before.groups:
        groups = await groups_by_code(session, sorted(after.groups))
        await session.execute(delete(UserGroup).where(UserGroup.user_id == user.id))
        session.add_all(UserGroup(user_id=user.id, group_id=g.id) for g in groups)
        changes["groups"] = {"from": sorted(before.groups), "to": sorted(after.groups)}
    if after.is_active != before.is_active:
        user.is_active, user.disabled_at = after.is_active, None if after.is_active else utcnow()
        changes["is_active"] = after.is_active
    await session.flush()
    if changes.keys() & {"roles", "clearance", "groups"}:
        reason = "clearance" if changes.keys() == {"clearance"} else "rights"
        await announce_revocation(session=session, user_id=user.id, reason=reason)
    return changes


# --- requests ---------------------------------------------------------------------------------


async def open_request(
    *,
    session: AsyncSession,
    actor: Principal,
    user: User,
    basis: Rights,
    target: Rights,
    reason: str = "",
) -> RightsRequest:
    assert actor.user_id is not None  # the system context applies at once
    request = RightsRequest(
        user_id=user.id,
        requested_by=actor.user_id,
        basis=basis.as_dict(),
        target=target.as_dict(),
        reason=reason,
    )
    session.add(request)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="user.rights_request",
        resource_type="user",
        resource_ids=[user.id],
        detail={"request_id": str(request.id), "from": request.basis, "to": request.target},
    )
    return request


async def list_requests(
    *, session: AsyncSession, actor: Principal, status: RightsRequestStatus
) -> list[RightsRequest]:
    """The approvers' queue (``pending``), or the decided requests."""
    require_admin(actor)
    rows = await session.scalars(
        select(RightsRequest)
        .where(RightsRequest.status == status.value)
        .order_by(RightsRequest.requested_at, RightsRequest.id)
    )
    requests = list(rows)
    await audit.record(
        session=session,
        actor=actor,
        action="rights_request.list",
        resource_type="rights_request",
        resource_ids=[r.id for r in requests],
    )
    return requests


def stale(user: User) -> Conflict:
    return Conflict(
        f"Demande périmée : les droits de {user.username} ont changé depuis qu'elle a été faite. "
        "Rejetez-la et refaites une demande sur leurs droits actuels.",
        f"Stale request: {user.username}'s rights have changed since it was made. Reject it "
        "and make a new request on their current rights.",
        code="stale_request",
    )


async def decide(
    *,
    session: AsyncSession,
    actor: Principal,
    settings: Settings,
    request_id: uuid.UUID,
    approve: bool,
) -> RightsRequest | Conflict:
    """Approve (apply) or reject a pending request. A request whose basis is no longer the
    user's rights is not applied: the refusal is audited and returned (409), the request stays
    pending until someone rejects it."""
    require_admin(actor)
    request = await session.get(RightsRequest, request_id, with_for_update=True)
    if request is None or request.status != RightsRequestStatus.PENDING.value:
        raise NotFound("Demande introuvable ou déjà traitée.", "Request not found or decided.")
    if approve and actor.user_id in (request.requested_by, request.user_id):
        raise Forbidden(
            "Un second administrateur, autre que le demandeur et que la personne concernée, "
            "doit approuver un élargissement de droits.",
            "A second administrator, neither the requester nor the person concerned, must "
            "approve widening someone's rights.",
            code="four_eyes",
        )
    user = await session.get(User, request.user_id, with_for_update=True)
    assert user is not None  # the request is deleted with its user
    detail = {"request_id": str(request.id), "from": request.basis, "to": request.target}
    if approve:
        before = await current_rights(session=session, user=user)
        if before.as_dict() != request.basis:
            await audit.record(
                session=session,
                actor=actor,
                action="refused:stale_request",
                decision="denied",
                resource_type="user",
                resource_ids=[user.id],
                detail={**detail, "now": before.as_dict()},
            )
            return stale(user)
        target = Rights.of(request.target)
        check_level(settings, target.clearance)
        await apply(session=session, user=user, before=before, after=target)
    request.status = (
        RightsRequestStatus.APPROVED if approve else RightsRequestStatus.REJECTED
    ).value
    request.decided_by, request.decided_at = actor.user_id, utcnow()
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="user.rights_approve" if approve else "user.rights_reject",
        resource_type="user",
        resource_ids=[user.id],
        detail=detail,
    )
    return request


async def present(
    *, session: AsyncSession, requests: Sequence[RightsRequest]
) -> list[RightsRequestRead]:
    """Requests as the API shows them, with usernames (one query)."""
    ids = {u for r in requests for u in (r.user_id, r.requested_by, r.decided_by) if u}
    names: dict[uuid.UUID, str] = {}
    if ids:
        names = dict(
            (await session.execute(select(User.id, User.username).where(User.id.in_(ids)))).all()
        )
    return [
        RightsRequestRead(
            id=r.id,
            user_id=r.user_id,
            username=names.get(r.user_id, "?"),
            requested_by=names.get(r.requested_by, "?"),
            requested_at=r.requested_at,
            reason=r.reason,
            basis=RightsState.model_validate(r.basis),
            target=RightsState.model_validate(r.target),
            added_roles=sorted(set(r.target["roles"]) - set(r.basis["roles"])),
            added_groups=sorted(set(r.target["groups"]) - set(r.basis["groups"])),
            status=r.status,
            decided_by=names.get(r.decided_by) if r.decided_by else None,
            decided_at=r.decided_at,
        )
        for r in requests
    ]
