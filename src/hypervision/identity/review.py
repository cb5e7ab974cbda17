"""Access review (issue 21, docs/adr/0038): per organisation, who holds which roles,
clearance and groups, when they were last active, which accounts are dormant; the review an
administrator confirms; and the disabling of dormant accounts.

Activity is read from the credentials (a session's sign-in and last request, an API token's
last use, kept to within 30 seconds by ``identity.auth``), never from the audit trail (which
only security officers may read, and which is large). An account never used counts from its
creation or its last change by an administrator (``updated_at``: re-enabling it restarts the
clock)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Conflict, Forbidden
from hypervision.db import transaction, utcnow
from hypervision.identity.models import AccessReview, ApiToken, AuthSession, Organisation, User
from hypervision.identity.principal import Principal, system_principal
from hypervision.identity.revocation import announce_revocation
from hypervision.identity.rights import require_admin, users_group_codes
from hypervision.identity.schemas import AccessReviewRead, AccessReviewReport, ReviewedAccount
from hypervision.identity.service import get_organisation_by_code, revoke_all_credentials
from hypervision.policy.roles import Role, Scope
from hypervision.policy.rules import Action, allowed

log = logging.getLogger("hypervision.review")
DORMANT_ACTOR = "dormant-accounts"


def _organisation_admin(actor: Principal) -> bool:
    """An administrator of their own organisation only (acting with the admin scope)."""
    return actor.can(Role.ORGANISATION_ADMINISTRATOR, Scope.ADMIN)


def _may_read(actor: Principal) -> None:
    """Administrators (who confirm), security officers (who read), and organisations'
    administrators (their own organisation's, ``_organisation``)."""
    if not (
        allowed(actor, Action.ADMINISTER)
        or allowed(actor, Action.AUDIT)
        or _organisation_admin(actor)
    ):
        raise Forbidden(
            "La revue des accès est réservée aux administrateurs et aux officiers de sécurité.",
            "The access review is for administrators and security officers.",
        )


def may_confirm(actor: Principal) -> bool:
    """Whether the actor may confirm a review they may read (the page's button): platform
    administrators, and an organisation's administrator (who reads only their own)."""
    return allowed(actor, Action.ADMINISTER) or _organisation_admin(actor)


async def _organisation(
    session: AsyncSession, actor: Principal, code: str, *, confirming: bool
) -> Organisation:
    """The organisation reviewed. Platform administrators review every organisation (and
    security officers read every one); an organisation's administrator only their own: for
    anything else, known or not, the same 403 (no oracle on codes)."""
    platform = allowed(actor, Action.ADMINISTER) or (
        not confirming and allowed(actor, Action.AUDIT)
    )
    if not platform:
        own = (
            await session.get(Organisation, actor.organisation_id)
            if _organisation_admin(actor) and actor.organisation_id
            else None
        )
        if own is None or own.code != code:
            raise Forbidden(
                "Seul un administrateur de cette organisation (ou de la plateforme) peut "
                "confirmer sa revue des accès."
                if confirming
                else "Vous ne pouvez lire que la revue des accès de votre organisation.",
                "Only this organisation's administrator (or a platform administrator) may "
                "confirm its access review."
                if confirming
                else "You may only read your own organisation's access review.",
                code="other_organisation",
            )
        return own
    return await get_organisation_by_code(session=session, code=code)


async def last_activity(
    session: AsyncSession, users: Sequence[User]
) -> dict[uuid.UUID, tuple[datetime | None, datetime]]:
    """For each user: their last sign-in (None: never) and last activity (never before their
    account's creation or last change)."""
    ids = [u.id for u in users]
    if not ids:
        return {}
    sessions = {
        row.user_id: (row.signed_in, row.seen)
        for row in await session.execute(
            select(
                AuthSession.user_id,
                func.max(AuthSession.created_at).label("signed_in"),
                func.max(AuthSession.last_seen_at).label("seen"),
            )
            .where(AuthSession.user_id.in_(ids))
            .group_by(AuthSession.user_id)
        )
    }
    tokens = {
        row.user_id: row.used
        for row in await session.execute(
            select(ApiToken.user_id, func.max(ApiToken.last_used_at).label("used"))
            .where(ApiToken.user_id.in_(ids))
            .group_by(ApiToken.user_id)
        )
    }
    found: dict[uuid.UUID, tuple[datetime | None, datetime]] = {}
    for user in users:
        signed_in, seen = sessions.get(user.id, (None, None))
        moments = [user.created_at, user.updated_at, signed_in, seen, tokens.get(user.id)]
        found[user.id] = (signed_in, max(m for m in moments if m is not None))
    return found


def _dormant_since(settings: Settings, now: datetime) -> datetime | None:
    days = settings.dormant_after_days
    return now - timedelta(days=days) if days > 0 else None


async def _accounts(
    session: AsyncSession, settings: Settings, org: Organisation, now: datetime
) -> list[ReviewedAccount]:
    users = list(
        await session.scalars(
            select(User).where(User.organisation_id == org.id).order_by(User.username)
        )
    )
    groups = await users_group_codes(session=session, user_ids=[u.id for u in users])
    activity = await last_activity(session, users)
    since = _dormant_since(settings, now)
    accounts = []
    for user in users:
        signed_in, active = activity[user.id]
        accounts.append(
            ReviewedAccount(
                id=user.id,
                username=user.username,
                full_name=user.full_name,
                is_active=user.is_active,
                is_machine=user.is_machine,
                roles=sorted(user.roles),
                clearance=user.clearance,
                groups=groups[user.id],
                mfa_enabled=user.mfa_enabled,
                created_at=user.created_at,
                disabled_at=user.disabled_at,
                last_sign_in_at=signed_in,
                last_activity_at=active,
                dormant=user.is_active and since is not None and active < since,
            )
        )
    return accounts


def checksum(org: Organisation, accounts: Sequence[ReviewedAccount]) -> str:
    """SHA-256 of who holds what: the rights and states, not the moments (which move while
    the administrator reads), so that the report read is the report confirmed."""
    held = [
        {
            "id": str(a.id),
            "username": a.username,
            "active": a.is_active,
            "machine": a.is_machine,
            "roles": a.roles,
            "clearance": a.clearance,
            "groups": a.groups,
            "mfa": a.mfa_enabled,
            "dormant": a.dormant,
        }
        for a in accounts
    ]
    canonical = json.dumps(
        {"organisation": org.code, "accounts": held}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _last_review(session: AsyncSession, org: Organisation) -> AccessReview | None:
    return await session.scalar(
        select(AccessReview)
        .where(AccessReview.organisation_id == org.id)
        .order_by(AccessReview.confirmed_at.desc(), AccessReview.id)
        .limit(1)
    )


async def _build(
    session: AsyncSession, settings: Settings, org: Organisation
) -> AccessReviewReport:
    now = utcnow()
    accounts = await _accounts(session, settings, org, now)
    last = await _last_review(session, org)
    return AccessReviewReport(
        organisation_code=org.code,
        organisation_name=org.name,
        generated_at=now,
        dormant_after_days=settings.dormant_after_days,
        accounts=accounts,
        checksum=checksum(org, accounts),
        last_review=AccessReviewRead.model_validate(last) if last else None,
    )


async def report(
    *, session: AsyncSession, settings: Settings, actor: Principal, code: str
) -> AccessReviewReport:
    """The organisation's access review (administrators, security officers); the read is
    audited with the accounts it names."""
    _may_read(actor)
    org = await _organisation(session, actor, code, confirming=False)
    built = await _build(session, settings, org)
    await audit.record(
        session=session,
        actor=actor,
        action="access_review.read",
        resource_type="user",
        resource_ids=[a.id for a in built.accounts],
        detail={"organisation": org.code, "checksum": built.checksum},
    )
    return built


async def confirm(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    code: str,
    seen: str,
    note: str = "",
) -> AccessReview:
    """An administrator confirms the report they read (named by its ``checksum``); refused
    (409) when the rights changed since, so that what is confirmed is what was read."""
    if not (allowed(actor, Action.ADMINISTER) or _organisation_admin(actor)):
        require_admin(actor)  # the usual 403, before the organisation is looked up
    org = await _organisation(session, actor, code, confirming=True)
    built = await _build(session, settings, org)
    if seen != built.checksum:
        raise Conflict(
            "Les accès ont changé depuis votre lecture : relisez la revue avant de la confirmer.",
            "The accesses changed since you read them: read the review again before confirming.",
            code="review_changed",
        )
    snapshot: dict[str, Any] = built.model_dump(mode="json", exclude={"last_review"})
    row = AccessReview(
        organisation_id=org.id,
        confirmed_by=actor.user_id,
        confirmed_by_name=actor.username[:100],
        confirmed_at=built.generated_at,
        checksum=built.checksum,
        report=snapshot,
        note=note[:1000],
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="access_review.confirm",
        resource_type="organisation",
        resource_ids=[org.id],
        detail={
            "review_id": str(row.id),
            "checksum": built.checksum,
            "accounts": len(built.accounts),
            "dormant": sum(1 for a in built.accounts if a.dormant),
        },
    )
    return row


async def disable_dormant(
    *, session: AsyncSession, settings: Settings, actor: Principal | None = None
) -> list[User]:
    """Disables every active account without activity for ``dormant_after_days`` (0: none):
    each one's sessions and tokens end, its streams close, and the disabling is audited
    (``user.disable_dormant``) with its outbox event, in the caller's transaction."""
    actor = actor or system_principal(DORMANT_ACTOR, surface="job")
    require_admin(actor)
    now = utcnow()
    since = _dormant_since(settings, now)
    if since is None:
        return []
    # Accounts untouched since the threshold, locked (another replica's job skips them).
    candidates = list(
        await session.scalars(
            select(User)
            .where(User.is_active.is_(True), User.updated_at < since, User.created_at < since)
            .order_by(User.username)
            .with_for_update(skip_locked=True)
        )
    )
    activity = await last_activity(session, candidates)
    disabled = []
    for user in candidates:
        _, active = activity[user.id]
        if active >= since:
            continue
        user.is_active, user.disabled_at = False, now
        ended = await revoke_all_credentials(session=session, user_id=user.id)
        await audit.record(
            session=session,
            actor=actor,
            action="user.disable_dormant",
            resource_type="user",
            resource_ids=[user.id],
            detail={
                "last_activity_at": active.isoformat(),
                "dormant_after_days": settings.dormant_after_days,
                "credentials_revoked": ended,
            },
        )
        await announce_revocation(session=session, user_id=user.id, reason="dormant")
        disabled.append(user)
    return disabled


async def loop(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """The app's periodic job: disables dormant accounts every ``dormant_check_seconds``."""
    while True:
        try:
            async with transaction(sessions) as session:
                done = await disable_dormant(session=session, settings=settings)
            if done:
                log.info("dormant accounts disabled: %d", len(done))
        except asyncio.CancelledError:
            raise
        except Exception:  # the next round tries again (database down, …)
            log.warning("dormant accounts: this round failed", exc_info=True)
        await asyncio.sleep(settings.dormant_check_seconds)
