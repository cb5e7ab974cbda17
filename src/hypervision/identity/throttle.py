"""Throttling (SECURITY.md item 13): sign-in attempts per account name and per client
address, and bulk exports per user.

Counters live in the database so that every replica sees the same ones. Keys are taken from
what the client typed, so unknown and existing accounts are throttled alike. An attempt is
counted *before* the password is checked (one atomic upsert), so parallel guesses cannot slip
past the limit; a successful sign-in gives its attempt back.

Bulk exports (the map's GeoJSON export, a synthesis's PDF) use the same counters under an
``export:<user id>`` key, in a fixed window of their own: the export is counted in the
request's transaction before any work, so parallel exports cannot slip past the limit either,
and an export that fails (rolled back) is not counted.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case, delete, literal, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.errors import AppError
from hypervision.db import UTCDateTime, utcnow
from hypervision.identity.models import LoginThrottle
from hypervision.identity.principal import Principal

EXPORT_PREFIX = "export:"


class ExportThrottled(AppError):
    """429 with ``Retry-After``: too many bulk exports by one user in the window."""

    status, code = 429, "export_throttled"
    fr = "Trop d'exports, réessayez plus tard."
    en = "Too many exports, try again later."

    def __init__(self, retry_after: int, limit: int, window: int) -> None:
        retry_after = max(1, retry_after)
        minutes = max(1, round(window / 60))
        super().__init__(
            f"Trop d'exports : au plus {limit} en {minutes} min. Réessayez dans {retry_after} s.",
            f"Too many exports: at most {limit} in {minutes} min. Try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            extra={"retry_after": retry_after},
        )


def keys_for(username: str, client_address: str | None) -> list[str]:
    keys = [f"user:{username[:128]}"]
    if client_address:
        keys.append(f"ip:{client_address[:64]}")
    return keys


def _limit(settings: Settings, key: str) -> int:
    if key.startswith(EXPORT_PREFIX):
        return settings.export_max_per_window
    return settings.login_ip_max_failures if key.startswith("ip:") else settings.login_max_failures


def _window(settings: Settings, key: str) -> int:
    if key.startswith(EXPORT_PREFIX):
        return settings.export_window_seconds
    return settings.login_window_seconds


async def reserve(*, session: AsyncSession, settings: Settings, keys: list[str]) -> int | None:
    """Count one attempt on every key; returns seconds to wait when a key is over its limit
    (the attempt must then be refused), else None."""
    now = utcnow()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    wait: int | None = None
    for key in keys:
        window = timedelta(seconds=_window(settings, key))
        stale = LoginThrottle.window_started_at < now - window
        upsert = insert(LoginThrottle).values(key=key, failures=1, window_started_at=now)
        stmt = upsert.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
                "window_started_at": case(
                    (stale, literal(now, UTCDateTime())), else_=LoginThrottle.window_started_at
                ),
            },
        ).returning(LoginThrottle.failures, LoginThrottle.window_started_at)
        failures, started = (await session.execute(stmt)).one()
        if failures > _limit(settings, key):
            seconds = int((started + window - now).total_seconds()) + 1
            wait = max(wait or 0, seconds)
    return wait


def export_key(actor: Principal) -> str:
    return f"{EXPORT_PREFIX}{actor.user_id or actor.username}"[:160]


async def reserve_export(*, session: AsyncSession, settings: Settings, actor: Principal) -> None:
    """Count one bulk export by ``actor`` (in the request's transaction, before the work);
    raises :class:`ExportThrottled` (429, ``Retry-After``) when over the limit."""
    wait = await reserve(session=session, settings=settings, keys=[export_key(actor)])
    if wait is not None:
        raise ExportThrottled(wait, settings.export_max_per_window, settings.export_window_seconds)


async def give_back(*, session: AsyncSession, keys: list[str]) -> None:
    """After a successful sign-in: the account's counter restarts, the address's attempt is
    returned."""
    for key in keys:
        if key.startswith("user:"):
            await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
        else:
            await session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == key, LoginThrottle.failures > 0)
                .values(failures=LoginThrottle.failures - 1)
            )
