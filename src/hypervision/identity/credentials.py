"""A session or API token and everything its principal is built from, in one statement.

Every request turns its token into a principal, afresh (revocation applies to the very next
request, on every replica: nothing is cached). That used to take four statements (the token,
its user, the organisation's ancestry, the need-to-know groups); here it is one: the token's
row joined to its user, and, one row each, the organisations from the user's own up to the
root (recursive) and the user's groups. The user's row and their organisation's stay in the
session, so that a page naming them (``identity.service.name_and_organisation``) reads
nothing more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    Uuid,
    bindparam,
    cast,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.identity.models import (
    ApiToken,
    AuthSession,
    NeedToKnowGroup,
    Organisation,
    User,
    UserGroup,
)
from hypervision.identity.secrets import digest

Credential = AuthSession | ApiToken


@dataclass(frozen=True)
class Holder:
    """A credential row, its user, the user's organisation then its parents up to the root,
    and the user's need-to-know group codes."""

    credential: Credential
    user: User
    ancestry: tuple[uuid.UUID, ...]
    groups: frozenset[str]
    organisation: Organisation


def _statement(model: type[AuthSession] | type[ApiToken]) -> Select[Any]:
    """The one statement of ``holder_of`` for ``model``, the token's hash a bound parameter
    (``token_hash``): built once per model (``_STATEMENTS``) — building its CTE and union
    cost more of a request than running it (py-spy, bench/write_path.py --api)."""
    token_hash = bindparam("token_hash", type_=String)
    anchor = (
        select(
            Organisation.id.label("org_id"),
            Organisation.parent_id.label("parent_id"),
            literal(0, Integer).label("depth"),
        )
        .join(User, User.organisation_id == Organisation.id)
        .join(model, model.user_id == User.id)
        .where(model.token_hash == token_hash)
    )
    ancestry = anchor.cte("ancestry", recursive=True)
    ancestry = ancestry.union_all(
        select(Organisation.id, Organisation.parent_id, ancestry.c.depth + 1).join(
            ancestry, Organisation.id == ancestry.c.parent_id
        )
    )
    groups = (
        select(
            cast(null(), Uuid).label("org_id"),
            literal(0, Integer).label("depth"),
            NeedToKnowGroup.code.label("code"),
        )
        .join(UserGroup, UserGroup.group_id == NeedToKnowGroup.id)
        .join(model, model.user_id == UserGroup.user_id)
        .where(model.token_hash == token_hash)
    )
    facts = union_all(
        select(ancestry.c.org_id, ancestry.c.depth, cast(null(), String).label("code")), groups
    ).subquery("facts")
    return (
        select(model, User, Organisation, facts.c.org_id, facts.c.depth, facts.c.code)
        .join(User, User.id == model.user_id)
        .join(Organisation, Organisation.id == User.organisation_id)
        .outerjoin(facts, true())
        .where(model.token_hash == token_hash)
    )


_STATEMENTS: dict[type[Credential], Select[Any]] = {}  # built on first use: mappers configured


async def holder_of(
    session: AsyncSession, model: type[AuthSession] | type[ApiToken], token: str
) -> Holder | None:
    """The credential whose hash is ``token``'s, with its holder; None when there is none.
    Whether it is still valid (revoked, expired, idle, account disabled) is the caller's."""
    statement = _STATEMENTS.get(model)
    if statement is None:
        statement = _STATEMENTS[model] = _statement(model)
    rows = (await session.execute(statement, {"token_hash": digest(token)})).all()
    if not rows:
        return None
    credential, user, organisation = rows[0][0], rows[0][1], rows[0][2]
    # The session's identity map holds rows weakly: keep these two for the transaction, so
    # that a page naming the acting user reads them from there (``session.get``).
    session.info["signed_in"] = (user, organisation)
    orgs = sorted((depth, org_id) for *_, org_id, depth, _ in rows if org_id is not None)
    codes = frozenset(code for *_, code in rows if code is not None)
    return Holder(
        credential=credential,
        user=user,
        ancestry=tuple(o for _, o in orgs),
        groups=codes,
        organisation=organisation,
    )
