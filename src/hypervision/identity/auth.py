"""Sign-in, sessions (cookie and bearer), API tokens, and turning a token into a Principal."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core import metrics
from hypervision.core.errors import (
    AppError,
    Forbidden,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from hypervision.db import transaction, utcnow
from hypervision.identity import mfa, networks, throttle
from hypervision.identity.credentials import holder_of
from hypervision.identity.models import ApiToken, AuthSession, Organisation, SessionKind, User
from hypervision.identity.networks import NetworkRefused
from hypervision.identity.passwords import Passwords, password_problem
from hypervision.identity.principal import Principal
from hypervision.identity.revocation import announce_revocation
from hypervision.identity.rights import require_admin, user_group_codes, users_group_codes
from hypervision.identity.schemas import ApiTokenCreate
from hypervision.identity.secrets import digest, new_token
from hypervision.identity.service import (
    get_user_by_username,
    organisation_ancestries,
    organisation_ancestry,
)
from hypervision.policy import rls
from hypervision.policy.roles import Scope

SESSION_PREFIX = "hvs_"
API_TOKEN_PREFIX = "hvt_"  # noqa: S105 - a prefix, not a secret
LAST_SEEN_GRANULARITY = timedelta(seconds=30)


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    fr = "Identifiant ou mot de passe incorrect."
    en = "Wrong username or password."


class SessionExpired(Unauthorized):
    code = "session_expired"
    fr = "Session expirée ou révoquée : reconnectez-vous."
    en = "Session expired or revoked: sign in again."


class SecondFactorRequired(Unauthorized):
    """The password was right; the account asks for its code. Carries the account, so that the
    web sign-in can ask for the code on a page of its own without asking the password again."""

    code = "mfa_required"
    fr = "Code de vérification requis."
    en = "Verification code required."

    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__()
        self.user_id = user_id


@dataclass(frozen=True)
class Client:
    address: str | None
    request_id: str | None
    # The ingress verified a client certificate (``identity.deps.certificate_verified``).
    certificate: bool = False


class RefusedFromHere(NetworkRefused):
    """A valid session or token used from outside its organisation's networks (docs/adr/
    0038). Carries the principal it would have been, so that the refusal is audited."""

    def __init__(self, principal: Principal) -> None:
        super().__init__()
        self.principal = principal


@dataclass(frozen=True)
class SignedIn:
    session: AuthSession
    token: str
    user: User
    enrolment_required: bool


async def sign_in(
    *,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    passwords: Passwords,
    username: str,
    password: str,
    otp: str | None,
    kind: SessionKind,
    client: Client,
    replaces: str | None = None,
) -> SignedIn | AppError:
    """Checks the credentials; returns the new session or the error to answer.

    Runs its own short transactions so that no database connection (nor SQLite's write lock)
    is held while argon2 works: one to count the attempt and read the account, the password
    check outside any transaction, then one to record the outcome. Failures are committed too
    (counters and audit record), which is why errors are returned rather than raised.
    """
    name = "".join(ch for ch in username.strip().lower() if ch.isprintable())[:64]
    keys = throttle.keys_for(name, client.address)
    async with transaction(sessions) as session:
        wait = await throttle.reserve(session=session, settings=settings, keys=keys)
        if wait:
            await audit_login(session, name, client, "denied", {"reason": "throttled"})
            return _refused("throttled", TooManyRequests(wait))
        user = await session.scalar(select(User).where(User.username == name))
        if user is not None and user.is_active and not user.is_machine:
            # Filtered upstream: before the password is even looked at (docs/adr/0038).
            refused = await upstream_refusal(session, user.organisation_id, client)
            if refused is not None:
                await audit_upstream_refusal(session, name, client, refused, user)
                return _refused("network", refused)
    ok = await passwords.verify(user.password_hash if user else None, password)
    new_hash = None
    if ok and user is not None and passwords.needs_rehash(user.password_hash or ""):
        new_hash = await passwords.hash(password)
    async with transaction(sessions) as session:
        if not ok or user is None or not user.is_active or user.is_machine:
            await audit_login(session, name, client, "denied", {"reason": "credentials"}, user)
            return _refused("credentials", InvalidCredentials())
        user = await session.get(User, user.id)
        if user is None or not user.is_active:
            return _refused("credentials", InvalidCredentials())
        if user.mfa_enabled:
            if not otp:
                return SecondFactorRequired(user.id)  # not a failure: the next step
            if not await mfa.check_second_factor(
                session=session, settings=settings, user=user, otp=otp
            ):
                await audit_login(session, name, client, "denied", {"reason": "otp"}, user)
                return _refused("otp", _wrong_code())
        if new_hash:
            user.password_hash = new_hash
        await throttle.give_back(session=session, keys=keys)
        if replaces:
            await end_session(session=session, token=replaces)
        signed_in = await open_session(session, settings, user, kind, client)
        await audit_login(session, name, client, "allowed", {"kind": kind.value}, user)
        return signed_in


def _refused(reason: str, error: AppError) -> AppError:
    """A refused sign-in, counted by reason class for /metrics (never by name)."""
    metrics.sign_in_failed(reason)
    return error


def _wrong_code() -> AppError:
    return Unauthorized(
        "Code de vérification incorrect.", "Wrong verification code.", code="invalid_otp"
    )


async def sign_in_second_factor(
    *,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    user_id: uuid.UUID,
    otp: str,
    kind: SessionKind,
    client: Client,
    replaces: str | None = None,
) -> SignedIn | AppError:
    """Second step of a sign-in whose password was checked by :func:`sign_in` (which answered
    :class:`SecondFactorRequired`; the caller vouches for that, e.g. with a signed, short-lived
    challenge). Throttled and audited like the first step."""
    async with transaction(sessions) as session:
        user = await session.get(User, user_id)
        if user is None or not user.is_active or user.is_machine or not user.mfa_enabled:
            return _refused("credentials", InvalidCredentials())
        name = user.username
        keys = throttle.keys_for(name, client.address)
        wait = await throttle.reserve(session=session, settings=settings, keys=keys)
        if wait:
            await audit_login(session, name, client, "denied", {"reason": "throttled"}, user)
            return _refused("throttled", TooManyRequests(wait))
        refused = await upstream_refusal(session, user.organisation_id, client)
        if refused is not None:  # the code may come from elsewhere than the password did
            await audit_upstream_refusal(session, name, client, refused, user)
            return _refused("network", refused)
    async with transaction(sessions) as session:
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            return _refused("credentials", InvalidCredentials())
        if not otp or not await mfa.check_second_factor(
            session=session, settings=settings, user=user, otp=otp
        ):
            await audit_login(session, name, client, "denied", {"reason": "otp"}, user)
            return _refused("otp", _wrong_code())
        await throttle.give_back(session=session, keys=keys)
        if replaces:
            await end_session(session=session, token=replaces)
        signed_in = await open_session(session, settings, user, kind, client)
        await audit_login(session, name, client, "allowed", {"kind": kind.value}, user)
        return signed_in


async def open_session(
    session: AsyncSession,
    settings: Settings,
    user: User,
    kind: SessionKind,
    client: Client,
    *,
    second_factor_elsewhere: bool = False,
) -> SignedIn:
    """A new session for ``user``. ``second_factor_elsewhere``: the identity provider that
    vouched for the user asks its own second factor (docs/adr/0033), none is enrolled here."""
    ancestry = await organisation_ancestry(session=session, org_id=user.organisation_id)
    enrolment = (
        not second_factor_elsewhere
        and not user.mfa_enabled
        and mfa.mfa_required(settings, user, ancestry)
    )
    token = new_token(SESSION_PREFIX)
    now = utcnow()
    row = AuthSession(
        token_hash=digest(token),
        user_id=user.id,
        kind=kind.value,
        scopes=[Scope.MFA_ENROL] if enrolment else None,
        csrf_token=secrets.token_urlsafe(32),
        client_address=client.address,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
    )
    session.add(row)
    await session.flush()
    return SignedIn(session=row, token=token, user=user, enrolment_required=enrolment)


async def audit_login(
    session: AsyncSession,
    name: str,
    client: Client,
    decision: str,
    detail: dict[str, str],
    user: User | None = None,
) -> None:
    await audit.record(
        session=session,
        actor=None,
        actor_name=name,
        action="auth.sign_in",
        surface="auth",
        decision=decision,
        resource_type="user",
        resource_ids=[user.id] if user else [],
        detail=detail,
        request_id=client.request_id,
        client_address=client.address,
    )


async def upstream_refusal(
    session: AsyncSession, organisation_id: uuid.UUID, client: Client
) -> AppError | None:
    """Why a sign-in into ``organisation_id`` from ``client`` is refused (its networks, its
    client certificate), or None (docs/adr/0038)."""
    org = await session.get(Organisation, organisation_id)
    return networks.sign_in_refusal(org, client.address, client.certificate)


async def audit_upstream_refusal(
    session: AsyncSession, name: str, client: Client, refused: AppError, user: User | None
) -> None:
    """``auth.network_refused``, denied, with the address (in the record's own column)."""
    await audit.record(
        session=session,
        actor=None,
        actor_name=name,
        action="auth.network_refused",
        surface="auth",
        decision="denied",
        resource_type="user",
        resource_ids=[user.id] if user else [],
        detail={"reason": refused.code, "certificate": client.certificate},
        request_id=client.request_id,
        client_address=client.address,
    )


async def end_session(*, session: AsyncSession, token: str) -> bool:
    row = await session.scalar(select(AuthSession).where(AuthSession.token_hash == digest(token)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True


async def sign_out(*, session: AsyncSession, actor: Principal) -> AuthSession | None:
    """Ends the actor's session on the server and closes its live streams; the session ended
    (None when there was none left to end)."""
    row = await session.get(AuthSession, actor.session_id) if actor.session_id else None
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = utcnow()
    await audit.record(
        session=session,
        actor=actor,
        action="auth.sign_out",
        surface="auth",
        resource_type="user",
        resource_ids=[row.user_id],
    )
    await announce_revocation(
        session=session, user_id=row.user_id, reason="signed_out", session_id=row.id
    )
    return row


async def resolve(
    *,
    session: AsyncSession,
    settings: Settings,
    token: str,
    kind: SessionKind,
    client: Client,
    touch: bool = True,
) -> Principal:
    """The principal behind a session or API token, or 401. Rebuilt on every request, so a
    disabled account or a lowered clearance applies to the very next one. On PostgreSQL the
    principal becomes the transaction's row-level security identity. ``touch=False``: a
    page's own background refresh, which is no sign of a person at work and so does not
    push the session's idle time-out back."""
    if kind is SessionKind.BEARER and token.startswith(API_TOKEN_PREFIX):
        principal = await _resolve_api_token(session=session, token=token, client=client)
    else:
        principal = await _resolve_session(
            session=session, settings=settings, token=token, kind=kind, client=client,
            touch=touch,
        )  # fmt: skip
    await rls.bind(session, settings, principal)
    return principal


async def _resolve_session(
    *,
    session: AsyncSession,
    settings: Settings,
    token: str,
    kind: SessionKind,
    client: Client,
    touch: bool = True,
) -> Principal:
    found = await holder_of(session, AuthSession, token)
    row = found.credential if found else None
    now = utcnow()
    if (
        found is None
        or not isinstance(row, AuthSession)
        or row.kind != kind.value
        or row.revoked_at is not None
        or row.expires_at <= now
        or row.last_seen_at + timedelta(minutes=settings.session_idle_minutes) <= now
        or not found.user.is_active
    ):
        raise SessionExpired()
    principal = _principal(
        found.user,
        found.ancestry,
        found.groups,
        scopes=frozenset(row.scopes) if row.scopes is not None else None,
        client=client,
        session_id=row.id,
        csrf_token=row.csrf_token,
        surface="web" if kind is SessionKind.WEB else "api",
    )
    _check_upstream(found.organisation, principal)
    if touch and now - row.last_seen_at > LAST_SEEN_GRANULARITY:
        row.last_seen_at = now
    return principal


def _check_upstream(org: Organisation, principal: Principal) -> None:
    """A session or token works only from its organisation's networks, read with the
    credential itself (no extra query, nothing cached: a change applies to the very next
    request, on every replica)."""
    if networks.request_refusal(org, principal.client_address) is not None:
        raise RefusedFromHere(principal)


async def _resolve_api_token(*, session: AsyncSession, token: str, client: Client) -> Principal:
    found = await holder_of(session, ApiToken, token)
    row = found.credential if found else None
    now = utcnow()
    if (
        found is None
        or not isinstance(row, ApiToken)
        or row.revoked_at is not None
        or row.expires_at <= now
    ):
        raise SessionExpired(
            "Jeton d'API invalide, expiré ou révoqué.", "API token invalid, expired or revoked."
        )
    if not found.user.is_active:
        raise SessionExpired()
    principal = _principal(
        found.user,
        found.ancestry,
        found.groups,
        scopes=frozenset(row.scopes),
        client=client,
        token_id=row.id,
    )
    _check_upstream(found.organisation, principal)
    if row.last_used_at is None or now - row.last_used_at > LAST_SEEN_GRANULARITY:
        row.last_used_at = now
    return principal


def _principal(
    user: User,
    ancestry: tuple[uuid.UUID, ...],
    groups: frozenset[str],
    *,
    scopes: frozenset[str] | None,
    client: Client,
    session_id: uuid.UUID | None = None,
    token_id: uuid.UUID | None = None,
    csrf_token: str | None = None,
    surface: str = "api",
) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        organisation_id=user.organisation_id,
        organisation_ancestry=ancestry,
        clearance=user.clearance,
        roles=frozenset(user.roles),
        groups=groups,
        scopes=scopes,
        session_id=session_id,
        token_id=token_id,
        surface=surface,
        request_id=client.request_id,
        client_address=client.address,
        csrf_token=csrf_token,
    )


async def build_principal(
    *,
    session: AsyncSession,
    user: User,
    scopes: frozenset[str] | None,
    client: Client,
    session_id: uuid.UUID | None = None,
    token_id: uuid.UUID | None = None,
    csrf_token: str | None = None,
    surface: str = "api",
) -> Principal:
    ancestry = await organisation_ancestry(session=session, org_id=user.organisation_id)
    groups = await user_group_codes(session=session, user_id=user.id)
    return _principal(
        user,
        tuple(o.id for o in ancestry),
        frozenset(groups),
        scopes=scopes,
        client=client,
        session_id=session_id,
        token_id=token_id,
        csrf_token=csrf_token,
        surface=surface,
    )


async def build_principals(
    *, session: AsyncSession, users: Sequence[User], client: Client
) -> dict[uuid.UUID, Principal]:
    """``build_principal`` (no scopes, no session) for many users in two queries, whatever
    their number: for deciding who may receive something."""
    ancestries = await organisation_ancestries(
        session=session, org_ids=[u.organisation_id for u in users]
    )
    groups = await users_group_codes(session=session, user_ids=[u.id for u in users])
    return {
        user.id: Principal(
            user_id=user.id,
            username=user.username,
            organisation_id=user.organisation_id,
            organisation_ancestry=ancestries.get(user.organisation_id, ()),
            clearance=user.clearance,
            roles=frozenset(user.roles),
            groups=frozenset(groups.get(user.id, ())),
            scopes=None,
            surface="api",
            request_id=client.request_id,
            client_address=client.address,
        )
        for user in users
    }


async def change_password(
    *, session: AsyncSession, passwords: Passwords, actor: Principal, current: str, new: str
) -> None:
    """Changing one's password ends every other session of the account."""
    assert actor.user_id is not None
    user = await session.get(User, actor.user_id)
    if user is None or not await passwords.verify(user.password_hash, current):
        raise Forbidden("Mot de passe actuel incorrect.", "Current password is wrong.")
    problem = password_problem(new, username=user.username)
    if problem:
        raise Invalid(
            *problem, extra={"fields": [{"field": "new_password", "message": problem[1]}]}
        )
    user.password_hash = await passwords.hash(new)
    others = await session.scalars(
        select(AuthSession).where(
            AuthSession.user_id == user.id,
            AuthSession.revoked_at.is_(None),
            AuthSession.id != actor.session_id,
        )
    )
    ended = list(others)
    for other in ended:
        other.revoked_at = utcnow()
    await audit.record(
        session=session,
        actor=actor,
        action="user.change_password",
        resource_type="user",
        resource_ids=[user.id],
    )
    for other in ended:
        await announce_revocation(
            session=session, user_id=user.id, reason="password", session_id=other.id
        )


async def create_api_token(
    *, session: AsyncSession, settings: Settings, actor: Principal, data: ApiTokenCreate
) -> tuple[ApiToken, str]:
    """Issue a token for a (machine) account. The token is shown once; only its hash is kept."""
    require_admin(actor)
    if data.expires_in_days > settings.api_token_max_days:
        raise Invalid(
            f"Durée maximale : {settings.api_token_max_days} jours.",
            f"Maximum lifetime is {settings.api_token_max_days} days.",
            extra={"fields": [{"field": "expires_in_days", "message": "too long"}]},
        )
    user = await get_user_by_username(session=session, username=data.username)
    if not user.is_active:
        raise Invalid("Ce compte est désactivé.", "This account is disabled.")
    if not user.is_machine and actor.user_id not in (None, user.id):
        # A token acts as its account: whoever holds it reads what that person reads.
        raise Forbidden(
            "Un jeton d'API est émis pour un compte machine (ou pour soi-même), jamais pour le "
            "compte d'une autre personne.",
            "An API token is issued for a machine account (or for oneself), never for another "
            "person's account.",
            code="token_for_person",
        )
    token = new_token(API_TOKEN_PREFIX)
    row = ApiToken(
        name=data.name,
        token_hash=digest(token),
        prefix=token[:8],
        user_id=user.id,
        scopes=sorted(set(data.scopes)),
        created_by=actor.user_id,
        expires_at=utcnow() + timedelta(days=data.expires_in_days),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="api_token.create",
        resource_type="api_token",
        resource_ids=[row.id],
        detail={
            "user": user.username,
            "scopes": row.scopes,
            "expires_at": row.expires_at.isoformat(),
        },
    )
    return row, token


async def revoke_api_token(
    *, session: AsyncSession, actor: Principal, token_id: uuid.UUID
) -> ApiToken:
    require_admin(actor)
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise NotFound("Jeton introuvable.", "Token not found.")
    newly = row.revoked_at is None
    if newly:
        row.revoked_at = utcnow()
    await audit.record(
        session=session,
        actor=actor,
        action="api_token.revoke",
        resource_type="api_token",
        resource_ids=[row.id],
    )
    if newly:
        await announce_revocation(session=session, user_id=row.user_id, reason="token_revoked")
    return row


async def list_api_tokens(*, session: AsyncSession, actor: Principal) -> list[ApiToken]:
    require_admin(actor)
    rows = list(await session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc())))
    await audit.record(
        session=session,
        actor=actor,
        action="api_token.list",
        resource_type="api_token",
        resource_ids=[r.id for r in rows],
    )
    return rows


async def lift_enrolment_limit(*, session: AsyncSession, session_id: uuid.UUID | None) -> None:
    row = await session.get(AuthSession, session_id) if session_id else None
    if row is not None and row.scopes == [Scope.MFA_ENROL]:
        row.scopes = None
