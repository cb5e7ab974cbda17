"""Administration of organisations, need-to-know groups and users.

Every change writes its audit record in the caller's transaction; services never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Conflict, Forbidden, Invalid, NotFound
from hypervision.db import utcnow
from hypervision.identity import networks, rights
from hypervision.identity.models import (
    ApiToken,
    AuthSession,
    NeedToKnowGroup,
    Organisation,
    RightsRequest,
    User,
    UserGroup,
)
from hypervision.identity.passwords import Passwords, password_problem
from hypervision.identity.principal import Principal
from hypervision.identity.revocation import announce_revocation
from hypervision.identity.rights import check_level, require_admin, user_group_codes
from hypervision.identity.schemas import (
    GroupCreate,
    OrganisationCreate,
    OrganisationUpdate,
    UserCreate,
    UserRead,
    UserUpdate,
)
from hypervision.policy.roles import Role
from hypervision.policy.rules import Action, allowed

# --- organisations -----------------------------------------------------------------------


async def create_organisation(
    *, session: AsyncSession, actor: Principal, data: OrganisationCreate
) -> Organisation:
    require_admin(actor)
    parent_id = None
    if data.parent_code:
        parent = await get_organisation_by_code(session=session, code=data.parent_code)
        parent_id = parent.id
    if await session.scalar(select(Organisation.id).where(Organisation.code == data.code)):
        raise Conflict(
            f"Le code d'organisation {data.code} existe déjà.",
            f"Organisation code {data.code} already exists.",
        )
    audience = await _audience_codes(session, data.default_audience, own=data.code)
    org = Organisation(
        code=data.code,
        name=data.name,
        parent_id=parent_id,
        mfa_required=data.mfa_required,
        default_category=data.default_category,
        default_audience=audience,
    )
    session.add(org)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="organisation.create",
        resource_type="organisation",
        resource_ids=[org.id],
        detail={"code": org.code, "parent_id": str(parent_id) if parent_id else None},
    )
    return org


async def _audience_codes(session: AsyncSession, codes: Sequence[str], *, own: str) -> list[str]:
    """A default audience, checked: known organisation codes (``own``: the organisation's, which
    may not exist yet), without duplicates, sorted."""
    wanted = sorted(set(codes))
    others = [c for c in wanted if c != own]
    known = set(
        await session.scalars(select(Organisation.code).where(Organisation.code.in_(others)))
    )
    unknown = [c for c in others if c not in known]
    if unknown:
        names = ", ".join(unknown)
        raise Invalid(
            f"Organisations inconnues dans la diffusion par défaut : {names}.",
            f"Unknown organisations in the default audience: {names}.",
            extra={"fields": [{"field": "default_audience", "message": f"unknown: {names}"}]},
        )
    return wanted


async def update_organisation(
    *, session: AsyncSession, actor: Principal, code: str, data: OrganisationUpdate
) -> Organisation:
    """An administrator sets an organisation's defaults: the category and the audience its
    officers' new entries propose (empty audience: every organisation); and the networks its
    members may work from and whether they need a client certificate (docs/adr/0038: a
    narrower range applies to their very next request)."""
    require_admin(actor)
    org = await get_organisation_by_code(session=session, code=code)
    changes: dict[str, object] = {}
    if data.default_category is not None and data.default_category != org.default_category:
        org.default_category = changes["default_category"] = data.default_category
    if data.default_audience is not None:
        audience = await _audience_codes(session, data.default_audience, own=org.code)
        if audience != list(org.default_audience or []):
            org.default_audience = changes["default_audience"] = audience
    if data.allowed_networks is not None:
        ranges = networks.normalise(data.allowed_networks)
        if ranges != list(org.allowed_networks or []):
            org.allowed_networks = changes["allowed_networks"] = ranges
            if ranges:  # narrowed, perhaps: open streams reconnect, and are checked again
                await _close_members_streams(session, org, reason="networks")
    certificate = data.client_cert_required
    if certificate is not None and certificate != org.client_cert_required:
        org.client_cert_required = changes["client_cert_required"] = certificate
    if changes:
        await audit.record(
            session=session,
            actor=actor,
            action="organisation.update",
            resource_type="organisation",
            resource_ids=[org.id],
            detail={"code": org.code, **changes},
        )
    return org


async def _close_members_streams(session: AsyncSession, org: Organisation, *, reason: str) -> None:
    """Closes the live streams of the organisation's active members (a stream's principal is
    checked when it opens; requests are checked each time anyway)."""
    members = await session.scalars(
        select(User.id).where(User.organisation_id == org.id, User.is_active.is_(True))
    )
    for user_id in members:
        await announce_revocation(session=session, user_id=user_id, reason=reason)


async def read_organisation(*, session: AsyncSession, actor: Principal, code: str) -> Organisation:
    """One organisation with its network rules: administrators and security officers."""
    if not (allowed(actor, Action.ADMINISTER) or allowed(actor, Action.AUDIT)):
        raise Forbidden()
    org = await get_organisation_by_code(session=session, code=code)
    await audit.record(
        session=session,
        actor=actor,
        action="organisation.read",
        resource_type="organisation",
        resource_ids=[org.id],
    )
    return org


async def get_organisation_by_code(*, session: AsyncSession, code: str) -> Organisation:
    org = await session.scalar(select(Organisation).where(Organisation.code == code))
    if org is None:
        raise NotFound(f"Organisation {code} inconnue.", f"Unknown organisation {code}.")
    return org


async def list_organisations(*, session: AsyncSession) -> Sequence[Organisation]:
    return (await session.scalars(select(Organisation).order_by(Organisation.code))).all()


async def organisation_choices(*, session: AsyncSession) -> list[tuple[str, str]]:
    """Every organisation's (code, name), by name: the choices of forms and filters."""
    rows = await session.execute(
        select(Organisation.code, Organisation.name).order_by(Organisation.name)
    )
    return [(code, name) for code, name in rows]


async def organisation_id(*, session: AsyncSession, code: str) -> uuid.UUID | None:
    """The id of the organisation with this code, None when there is none."""
    return await session.scalar(select(Organisation.id).where(Organisation.code == code))


async def get_organisation(
    *, session: AsyncSession, org_id: uuid.UUID | None
) -> Organisation | None:
    """One organisation by id (from the session's identity map when already loaded)."""
    return None if org_id is None else await session.get(Organisation, org_id)


async def organisation_ancestry(*, session: AsyncSession, org_id: uuid.UUID) -> list[Organisation]:
    """The organisation then its parents up to the root, in one recursive query."""
    tree = select(Organisation.id, Organisation.parent_id).where(Organisation.id == org_id)
    cte = tree.cte("ancestry", recursive=True)
    cte = cte.union_all(
        select(Organisation.id, Organisation.parent_id).join(
            cte, Organisation.id == cte.c.parent_id
        )
    )
    orgs = {
        o.id: o
        for o in await session.scalars(select(Organisation).join(cte, Organisation.id == cte.c.id))
    }
    chain: list[Organisation] = []
    current = orgs.get(org_id)
    while current is not None and len(chain) <= len(orgs):
        chain.append(current)
        current = orgs.get(current.parent_id) if current.parent_id else None
    return chain


async def organisation_ancestries(
    *, session: AsyncSession, org_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, ...]]:
    """For each organisation, its id then its parents' up to the root: one recursive query
    for them all (``organisation_ancestry`` for many)."""
    if not org_ids:
        return {}
    tree = select(Organisation.id, Organisation.parent_id).where(
        Organisation.id.in_(sorted(set(org_ids)))
    )
    cte = tree.cte("ancestries", recursive=True)
    cte = cte.union_all(
        select(Organisation.id, Organisation.parent_id).join(
            cte, Organisation.id == cte.c.parent_id
        )
    )
    parents = {
        row.id: row.parent_id for row in await session.execute(select(cte.c.id, cte.c.parent_id))
    }
    chains: dict[uuid.UUID, tuple[uuid.UUID, ...]] = {}
    for org_id in org_ids:
        chain: list[uuid.UUID] = []
        current: uuid.UUID | None = org_id if org_id in parents else None
        while current is not None and len(chain) <= len(parents):
            chain.append(current)
            current = parents.get(current)
        chains[org_id] = tuple(chain)
    return chains


# --- need-to-know groups ------------------------------------------------------------------


async def create_group(
    *, session: AsyncSession, actor: Principal, data: GroupCreate
) -> NeedToKnowGroup:
    require_admin(actor)
    if await session.scalar(select(NeedToKnowGroup.id).where(NeedToKnowGroup.code == data.code)):
        raise Conflict(f"Le groupe {data.code} existe déjà.", f"Group {data.code} already exists.")
    group = NeedToKnowGroup(code=data.code, name=data.name)
    session.add(group)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="group.create",
        resource_type="group",
        resource_ids=[group.id],
        detail={"code": group.code},
    )
    return group


async def list_groups(*, session: AsyncSession) -> Sequence[NeedToKnowGroup]:
    return (await session.scalars(select(NeedToKnowGroup).order_by(NeedToKnowGroup.code))).all()


async def group_names(*, session: AsyncSession, codes: Sequence[str]) -> list[tuple[str, str]]:
    """(code, name) of the groups with these codes, by name."""
    rows = await session.execute(
        select(NeedToKnowGroup.code, NeedToKnowGroup.name)
        .where(NeedToKnowGroup.code.in_(sorted(codes)))
        .order_by(NeedToKnowGroup.name)
    )
    return [(code, name) for code, name in rows]


# --- users --------------------------------------------------------------------------------


async def create_user(
    *,
    session: AsyncSession,
    actor: Principal,
    settings: Settings,
    passwords: Passwords,
    data: UserCreate,
) -> User:
    """Create an account (see ``create_account``)."""
    user, _request = await create_account(
        session=session, actor=actor, settings=settings, passwords=passwords, data=data
    )
    return user


async def create_account(
    *,
    session: AsyncSession,
    actor: Principal,
    settings: Settings,
    passwords: Passwords,
    data: UserCreate,
) -> tuple[User, RightsRequest | None]:
    """Create an account. Created by a person, it starts with no role, the lowest clearance and
    no group, and the rights asked for wait for a second administrator (otherwise anyone
    administering could give himself a second, cleared account); the system context (CLI,
    demo) creates it as asked."""
    require_admin(actor)
    check_level(settings, data.clearance)
    org = await session.scalar(
        select(Organisation).where(Organisation.code == data.organisation_code)
    )
    if org is None:
        code = data.organisation_code
        raise Invalid(
            f"Organisation {code} inconnue.",
            f"Unknown organisation {code}.",
            extra={"fields": [{"field": "organisation_code", "message": "unknown"}]},
        )
    if await session.scalar(select(User.id).where(User.username == data.username)):
        raise Conflict(
            f"L'identifiant {data.username} est déjà pris.", f"Username {data.username} is taken."
        )
    password_hash = None
    if data.password is not None:
        problem = password_problem(data.password, username=data.username)
        if problem:
            raise Invalid(
                *problem, extra={"fields": [{"field": "password", "message": problem[1]}]}
            )
        password_hash = await passwords.hash(data.password)
    await rights.groups_by_code(session, data.groups)  # unknown groups are refused now
    asked = rights.Rights(
        frozenset(r.value for r in data.roles), data.clearance, frozenset(data.groups), True
    )
    now = asked if actor.user_id is None else rights.none_yet(settings)
    user = User(
        username=data.username,
        full_name=data.full_name,
        email=data.email,
        organisation_id=org.id,
        roles=sorted(now.roles),
        clearance=now.clearance,
        password_hash=password_hash,
        is_machine=data.is_machine,
    )
    session.add(user)
    await session.flush()
    groups = await rights.groups_by_code(session, sorted(now.groups))
    session.add_all(UserGroup(user_id=user.id, group_id=g.id) for g in groups)
    await audit.record(
        session=session,
        actor=actor,
        action="user.create",
        resource_type="user",
        resource_ids=[user.id],
        detail={
            "username": user.username,
            "organisation": org.code,
            "roles": user.roles,
            "clearance": user.clearance,
            "groups": sorted(now.groups),
        },
    )
    if asked == now:
        return user, None
    request = await rights.open_request(
        session=session, actor=actor, user=user, basis=now, target=asked, reason=data.reason
    )
    return user, request


async def get_user(*, session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("Utilisateur introuvable.", "User not found.")
    return user


async def name_and_organisation(*, session: AsyncSession, user_id: uuid.UUID) -> tuple[str, str]:
    """A user's full name and their organisation's name: no query for the acting user, whose
    rows the sign-in has just read in this transaction (``identity.credentials``)."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("Utilisateur introuvable.", "User not found.")
    organisation = await session.get(Organisation, user.organisation_id)
    assert organisation is not None  # a foreign key
    return user.full_name, organisation.name


async def list_authorities(*, session: AsyncSession) -> list[tuple[str, str, str]]:
    """(username, full name, organisation name) of the active people with the authority role,
    by name: who a synthesis may be sent to."""
    people = await session.execute(
        select(User.username, User.full_name, Organisation.name, User.roles)
        .join(Organisation, Organisation.id == User.organisation_id)
        .where(User.is_active.is_(True), User.is_machine.is_(False))
        .order_by(User.full_name)
    )
    return [
        (username, full_name, org)
        for username, full_name, org, roles in people
        if Role.AUTHORITY.value in (roles or [])
    ]


async def read_user(*, session: AsyncSession, actor: Principal, user_id: uuid.UUID) -> User:
    require_admin(actor)
    user = await get_user(session=session, user_id=user_id)
    await audit.record(
        session=session,
        actor=actor,
        action="user.read",
        resource_type="user",
        resource_ids=[user.id],
    )
    return user


async def get_user_by_username(*, session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"Utilisateur {username} introuvable.", f"User {username} not found.")
    return user


async def user_read(*, session: AsyncSession, user: User) -> UserRead:
    org = await session.get(Organisation, user.organisation_id)
    assert org is not None
    return UserRead(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        email=user.email,
        organisation_id=user.organisation_id,
        organisation_code=org.code,
        roles=user.roles,
        clearance=user.clearance,
        groups=await user_group_codes(session=session, user_id=user.id),
        is_active=user.is_active,
        is_machine=user.is_machine,
        mfa_enabled=user.mfa_enabled,
        created_at=user.created_at,
    )


async def list_users(
    *, session: AsyncSession, actor: Principal, after: str | None, limit: int
) -> tuple[list[User], str | None]:
    """Keyset pagination on username."""
    require_admin(actor)
    query = select(User).order_by(User.username).limit(limit + 1)
    if after:
        query = query.where(User.username > after)
    users = list(await session.scalars(query))
    next_cursor = users[limit - 1].username if len(users) > limit else None
    users = users[:limit]
    await audit.record(
        session=session,
        actor=actor,
        action="user.list",
        resource_type="user",
        resource_ids=[u.id for u in users],
    )
    return users, next_cursor


async def update_user(
    *,
    session: AsyncSession,
    actor: Principal,
    settings: Settings,
    user_id: uuid.UUID,
    data: UserUpdate,
) -> User | RightsRequest:
    """Names apply at once, and so does every narrowing of rights; a widening part (a role or a
    group added) is returned as a request for a second administrator (four eyes)."""
    require_admin(actor)
    user = await get_user(session=session, user_id=user_id)
    before = await rights.current_rights(session=session, user=user)
    asked = before.with_(
        roles=None if data.roles is None else [r.value for r in data.roles], groups=data.groups
    )
    rights.refuse_own(actor, user, before, asked)
    if data.groups is not None:
        await rights.groups_by_code(session, data.groups)  # unknown groups are refused
    changes: dict[str, object] = {}
    if data.full_name is not None and data.full_name != user.full_name:
        user.full_name = changes["full_name"] = data.full_name
    if "email" in data.model_fields_set and data.email != user.email:
        user.email = data.email
        changes["email"] = "changed"
    return await _change_rights(
        session=session,
        actor=actor,
        settings=settings,
        user=user,
        before=before,
        asked=asked,
        reason=data.reason,
        action="user.update",
        changes=changes,
    )


async def set_clearance(
    *,
    session: AsyncSession,
    actor: Principal,
    settings: Settings,
    user_id: uuid.UUID,
    clearance: str,
    reason: str = "",
) -> User | RightsRequest:
    """A lower clearance takes effect on the user's very next request (principals are rebuilt
    per request); a higher one is a request for a second administrator."""
    require_admin(actor)
    check_level(settings, clearance)
    user = await get_user(session=session, user_id=user_id)
    before = await rights.current_rights(session=session, user=user)
    asked = before.with_(clearance=clearance)
    rights.refuse_own(actor, user, before, asked)
    return await _change_rights(
        session=session,
        actor=actor,
        settings=settings,
        user=user,
        before=before,
        asked=asked,
        reason=reason,
        action="user.set_clearance",
        changes={},
    )


async def _change_rights(
    *,
    session: AsyncSession,
    actor: Principal,
    settings: Settings,
    user: User,
    before: rights.Rights,
    asked: rights.Rights,
    reason: str,
    action: str,
    changes: dict[str, object],
) -> User | RightsRequest:
    """Apply what narrows (everything, in the system context), audit it, and open a request
    for what widens."""
    if actor.user_id is None:
        now, pending = asked, None
    else:
        now, pending = rights.split(settings, before, asked)
    changes |= await rights.apply(session=session, user=user, before=before, after=now)
    await audit.record(
        session=session,
        actor=actor,
        action=action,
        resource_type="user",
        resource_ids=[user.id],
        detail=changes,
    )
    if pending is None:
        return user
    return await rights.open_request(
        session=session, actor=actor, user=user, basis=now, target=pending, reason=reason
    )


async def disable_user(*, session: AsyncSession, actor: Principal, user_id: uuid.UUID) -> User:
    """Disables the account and ends every session and API token it holds, at once."""
    require_admin(actor)
    if actor.user_id == user_id:
        raise Forbidden(
            "Vous ne pouvez pas désactiver votre propre compte.",
            "You cannot disable your own account.",
        )
    user = await get_user(session=session, user_id=user_id)
    now = utcnow()
    if user.is_active:
        user.is_active, user.disabled_at = False, now
    ended = await revoke_all_credentials(session=session, user_id=user.id)
    await audit.record(
        session=session,
        actor=actor,
        action="user.disable",
        resource_type="user",
        resource_ids=[user.id],
        detail={"credentials_revoked": ended},
    )
    await announce_revocation(session=session, user_id=user.id, reason="disabled")
    return user


async def enable_user(
    *, session: AsyncSession, actor: Principal, user_id: uuid.UUID
) -> User | RightsRequest:
    """Enabling a disabled account gives its rights back: a request for a second administrator
    (applied at once in the system context). Enabling an active account changes nothing."""
    require_admin(actor)
    user = await get_user(session=session, user_id=user_id)
    if not user.is_active and actor.user_id is not None:
        before = await rights.current_rights(session=session, user=user)
        target = rights.Rights(before.roles, before.clearance, before.groups, True)
        return await rights.open_request(
            session=session, actor=actor, user=user, basis=before, target=target
        )
    user.is_active, user.disabled_at = True, None
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="user.enable",
        resource_type="user",
        resource_ids=[user.id],
    )
    return user


async def revoke_all_credentials(*, session: AsyncSession, user_id: uuid.UUID) -> int:
    now = utcnow()
    sessions = await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    tokens = await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(sessions, "rowcount", 0) or 0) + int(getattr(tokens, "rowcount", 0) or 0)
