"""Organisation codes and usernames by id, for presenting records.

Neither ever changes once written (no path renames an organisation's code or a user's
username, and ids are random, never reused), so a name read once is kept, per database, and
is never stale. A request reads only what it has not seen yet, in one statement: every
organisation (when one it needs is unknown, or when it cannot say which it needs) and the
users it does not know. A live card or a feed page whose names are known reads none.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import literal, select, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.identity.models import Organisation, User

MAX_USERS = 100_000  # a bound on memory: past it the usernames are read again as needed


@dataclass
class Names:
    orgs: dict[uuid.UUID, str] = field(default_factory=dict)
    users: dict[uuid.UUID, str] = field(default_factory=dict)


_known: weakref.WeakKeyDictionary[Engine, Names] = weakref.WeakKeyDictionary()


def _names_of(session: AsyncSession) -> Names:
    engine = session.get_bind().engine
    names = _known.get(engine)
    if names is None:
        names = _known[engine] = Names()
    return names


async def lookup(
    session: AsyncSession,
    users: Iterable[uuid.UUID | None],
    orgs: Iterable[uuid.UUID] | None = None,
) -> Names:
    """Codes of every organisation known (at least those of ``orgs``; all of them, read
    now, when ``orgs`` is None) and the usernames of ``users``."""
    known = _names_of(session)
    wanted = {u for u in users if u is not None}
    missing_users = sorted(wanted - known.users.keys())
    all_orgs = orgs is None or not set(orgs) <= known.orgs.keys()
    if missing_users or all_orgs:
        parts = []
        if all_orgs:
            parts.append(select(literal("o"), Organisation.id, Organisation.code))
        if missing_users:
            parts.append(
                select(literal("u"), User.id, User.username).where(User.id.in_(missing_users))
            )
        statement = parts[0] if len(parts) == 1 else union_all(*parts)
        rows = (await session.execute(statement)).all()
        if len(known.users) + len(missing_users) > MAX_USERS:
            known.users.clear()
        for kind, key, name in rows:
            (known.orgs if kind == "o" else known.users)[key] = name
    return Names(
        orgs=dict(known.orgs), users={u: known.users[u] for u in wanted if u in known.users}
    )
