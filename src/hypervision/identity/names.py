"""Organisation codes, usernames and display names by id, for presenting records.

Codes and usernames never change once written (no path renames an organisation's code or a
user's username, and ids are random, never reused), so a name read once is kept, per
database, and is never stale. A display name (``full_name``) may be corrected by an
administrator: it is kept ``FULL_NAME_TTL`` seconds, then read again with the next request
that needs it (a display name is no protected data: a minute late on a replica is fine). A
request reads only what it has not seen yet (or what is too old), in one statement: every
organisation (when one it needs is unknown, or when it cannot say which it needs) and the
users it does not know. A live card or a feed page whose names are known reads none.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import literal, select, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.identity.models import Organisation, User

MAX_USERS = 100_000  # a bound on memory: past it the usernames are read again as needed
FULL_NAME_TTL = 60.0  # seconds a display name is kept before it is read again


@dataclass
class Names:
    orgs: dict[uuid.UUID, str] = field(default_factory=dict)
    users: dict[uuid.UUID, str] = field(default_factory=dict)
    full_names: dict[uuid.UUID, str] = field(default_factory=dict)
    read_at: dict[uuid.UUID, float] = field(default_factory=dict)  # when the display name was


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
    now, when ``orgs`` is None), the usernames and the display names of ``users``."""
    known = _names_of(session)
    wanted = {u for u in users if u is not None}
    stale = time.monotonic() - FULL_NAME_TTL
    missing_users = sorted(u for u in wanted if known.read_at.get(u, stale) <= stale)
    all_orgs = orgs is None or not set(orgs) <= known.orgs.keys()
    if missing_users or all_orgs:
        parts = []
        if all_orgs:
            parts.append(select(literal("o"), Organisation.id, Organisation.code, literal("")))
        if missing_users:
            parts.append(
                select(literal("u"), User.id, User.username, User.full_name).where(
                    User.id.in_(missing_users)
                )
            )
        statement = parts[0] if len(parts) == 1 else union_all(*parts)
        rows = (await session.execute(statement)).all()
        if len(known.users) + len(missing_users) > MAX_USERS:
            known.users.clear()
            known.full_names.clear()
            known.read_at.clear()
        now = time.monotonic()
        for kind, key, name, full_name in rows:
            if kind == "o":
                known.orgs[key] = name
            else:
                known.users[key], known.full_names[key], known.read_at[key] = name, full_name, now
    return Names(
        orgs=dict(known.orgs),
        users={u: known.users[u] for u in wanted if u in known.users},
        full_names={u: known.full_names[u] for u in wanted if u in known.full_names},
    )
