"""PostgreSQL row-level security: the request identity, signed, set per transaction.

The application's SQL filter (``rules.visible_filter``) is the first wall; RLS is the second:
the policies (migration 0007; ``records/rls.py`` derives the protected tables and their
policies from the registry of protected kinds) restate the visibility rule against
``hv_context()``, the identity of the current transaction. The application sets it with
``set_config(…, true)`` (transaction-local, so a pooled connection never carries it over)
as a payload signed with an HMAC key derived from the secret key; PostgreSQL keeps a copy of
that key in a table only the owner role reads. SQL running as the application role (an
injection, a mistake) cannot sign a context: a missing, empty, altered or expired one is the
empty identity, which sees no row.

Two kinds of context: a reader's (levels, groups, organisation and its ancestry, audit right,
roles), bound when a request's principal is resolved; and the system's (sees every row), bound
at the start of each transaction of the server's own work — the live hub, schedules, e-mail,
the CLI.
SQLite has no RLS: every function here is a no-op there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import String, bindparam, event, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from hypervision.config import Settings
from hypervision.policy.roles import Actor
from hypervision.policy.rules import Action, Subject, allowed

SETTING = "hypervision.context"
LIFETIME_SECONDS = 600  # a context is refused by transactions starting after this
_SYSTEM = "hv_rls_system"  # session.info key: the settings of a system-context factory


def context_key(settings: Settings) -> bytes:
    """The HMAC key of contexts: derived from the secret key, stored by ``migrate``."""
    return hmac.new(settings.secret_key.encode(), b"hypervision/rls-context/v1", "sha256").digest()


def sign(settings: Settings, payload: dict[str, Any]) -> str:
    body = json.dumps({**payload, "exp": int(time.time()) + LIFETIME_SECONDS}, sort_keys=True)
    hexed = body.encode().hex()
    tag = hmac.new(context_key(settings), hexed.encode(), hashlib.sha256).hexdigest()
    return f"{hexed}.{tag}"


def subject_context(subject: Subject, *, audit: bool = False) -> dict[str, Any]:
    return {
        "levels": list(subject.allowed_levels),
        "groups": sorted(subject.groups),
        "org": subject.organisation,
        "ancestry": sorted(subject.ancestry),
        "audit": audit,
    }


def reader_context(settings: Settings, principal: Actor) -> dict[str, Any]:
    subject = Subject.of(settings, principal)
    context = subject_context(subject, audit=allowed(principal, Action.AUDIT))
    # Data products' rules read the roles (hv_ctx_roles, products/rules.py).
    return {**context, "roles": sorted(principal.roles)}


SYSTEM_CONTEXT: dict[str, Any] = {"system": True}


async def bind(session: AsyncSession, settings: Settings, principal: Actor) -> None:
    """Make ``principal`` the identity of the session's current transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await set_context(session, sign(settings, reader_context(settings, principal)))


# ``set_config(SETTING, :context, true)``, built once: every request binds its reader.
SET_CONTEXT = select(func.set_config(SETTING, bindparam("context", type_=String), True))


async def set_context(session: AsyncSession, value: str) -> None:
    await session.execute(SET_CONTEXT, {"context": value})


def system_sessions(engine: AsyncEngine, settings: Settings) -> async_sessionmaker[AsyncSession]:
    """A session factory whose every transaction runs in the system context."""
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=True, info={_SYSTEM: settings}
    )


@event.listens_for(Session, "after_begin")
def _bind_system(session: Session, _transaction: Any, connection: Connection) -> None:
    settings = session.info.get(_SYSTEM)
    if settings is not None and connection.dialect.name == "postgresql":
        connection.execute(SET_CONTEXT, {"context": sign(settings, SYSTEM_CONTEXT)})


async def context_works(conn: AsyncConnection, settings: Settings) -> bool:
    """Whether PostgreSQL accepts the contexts this server signs (the key stored by the last
    ``migrate`` matches the secret key). Always true on SQLite."""
    if conn.dialect.name != "postgresql":
        return True
    # In the connection's current transaction (set_config(…, true) ends with it).
    await conn.execute(SET_CONTEXT, {"context": sign(settings, SYSTEM_CONTEXT)})
    return bool(await conn.scalar(select(func.hv_ctx_system())))


# --- set-up, run by ``hypervision migrate`` as the owner ---------------------------------------


def role_of(url: str) -> str | None:
    return urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1)).username


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


GRANTS = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
REVOKE ALL ON hv_context_key FROM {role};
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role};
REVOKE UPDATE, DELETE, TRUNCATE ON audit_records FROM {role};
GRANT UPDATE (seq, prev_hash, row_hash) ON audit_records TO {role};
REVOKE UPDATE, DELETE, TRUNCATE ON audit_resources FROM {role};
REVOKE INSERT, DELETE, TRUNCATE ON audit_head FROM {role};
"""


async def secure(conn: Any, settings: Settings, app_role: str | None) -> None:
    """Store the context key and grant ``app_role`` its rights (asyncpg connection, as the
    owner). Run after every migration: new tables get their grants, a new key replaces the
    old one."""
    await conn.execute(
        "INSERT INTO hv_context_key (id, key) VALUES (1, $1) "
        "ON CONFLICT (id) DO UPDATE SET key = excluded.key",
        context_key(settings),
    )
    if app_role:
        await conn.execute(GRANTS.format(role=quote_ident(app_role)))
