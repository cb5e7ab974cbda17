"""A person's sessions and API tokens, as the security console lists and revokes them
(docs/adr/0039). A revocation is one transaction: the rows, their audit record and the
``identity.revoke`` outbox event by which the live hub closes the person's open streams at
once, on every replica (``identity.revocation``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.core.errors import NotFound
from hypervision.db import utcnow
from hypervision.identity.models import ApiToken, AuthSession, User
from hypervision.identity.principal import Principal
from hypervision.identity.revocation import announce_revocation
from hypervision.policy.rules import Action, authorize


@dataclass
class Credentials:
    person: User
    sessions: list[AuthSession]
    tokens: list[ApiToken]


async def person(*, session: AsyncSession, actor: Principal, person_id: uuid.UUID) -> User:
    authorize(actor, Action.AUDIT)
    user = await session.get(User, person_id)
    if user is None:
        raise NotFound("Personne introuvable.", "Person not found.")
    return user


async def list_credentials(
    *, session: AsyncSession, actor: Principal, person_id: uuid.UUID
) -> Credentials:
    """The person's sessions and tokens, newest first (live and ended); audited."""
    user = await person(session=session, actor=actor, person_id=person_id)
    sessions = list(
        await session.scalars(
            select(AuthSession)
            .where(AuthSession.user_id == user.id)
            .order_by(AuthSession.created_at.desc())
            .limit(100)
        )
    )
    tokens = list(
        await session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id)
            .order_by(ApiToken.created_at.desc())
            .limit(100)
        )
    )
    await audit.record(
        session=session,
        actor=actor,
        action="credentials.list",
        resource_type="user",
        resource_ids=[user.id],
        detail={"sessions": len(sessions), "tokens": len(tokens)},
    )
    return Credentials(user, sessions, tokens)


async def revoke(
    *,
    session: AsyncSession,
    actor: Principal,
    person_id: uuid.UUID,
    session_id: uuid.UUID | None = None,
    token_id: uuid.UUID | None = None,
) -> int:
    """Revoke one session, one token, or (neither given) every live session and token of
    the person; returns how many ended. Their open live streams close at once."""
    user = await person(session=session, actor=actor, person_id=person_id)
    now = utcnow()
    ended = 0
    if token_id is None:
        query = update(AuthSession).where(
            AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None)
        )
        if session_id is not None:
            query = query.where(AuthSession.id == session_id)
        ended += int(getattr(await session.execute(query.values(revoked_at=now)), "rowcount", 0))
    if session_id is None:
        query = update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        if token_id is not None:
            query = query.where(ApiToken.id == token_id)
        ended += int(getattr(await session.execute(query.values(revoked_at=now)), "rowcount", 0))
    which = "session" if session_id else "token" if token_id else "all"
    await audit.record(
        session=session,
        actor=actor,
        action=f"credentials.revoke_{which}",
        resource_type="user",
        resource_ids=[user.id],
        detail={
            "session_id": str(session_id) if session_id else None,
            "token_id": str(token_id) if token_id else None,
            "ended": ended,
        },
    )
    if ended:
        await announce_revocation(
            session=session,
            user_id=user.id,
            reason=f"revoked_by_security_officer:{which}",
            session_id=session_id,
        )
    return ended
