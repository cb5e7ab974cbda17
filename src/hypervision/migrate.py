"""Applying the Alembic migrations shipped inside the package."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from hypervision.config import Settings, load_settings
from hypervision.policy import rls

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.attributes["url"] = url
    return config


def upgrade(
    url: str | None = None,
    revision: str = "head",
    *,
    app_role: str | None = None,
    settings: Settings | None = None,
) -> None:
    """Migrate as the owner; on PostgreSQL, then store the row-level security key and grant
    ``app_role`` (the role the application connects as) its rights."""
    command.upgrade(alembic_config(url), revision)
    settings = settings or load_settings()
    url = url or settings.effective_database_url
    if url.startswith("postgresql") and revision == "head":
        asyncio.run(_secure(url, settings, app_role))


class MigrationError(Exception):
    """A migration that cannot complete, with what to do about it."""


async def _secure(url: str, settings: Settings, app_role: str | None) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        async with conn.transaction():
            await rls.secure(conn, settings, app_role)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise MigrationError(
            f"the migrations must run as the database owner ({exc}): set "
            "HYPERVISION_DATABASE_OWNER_URL to the owner's connection"
        ) from None
    finally:
        await conn.close()
