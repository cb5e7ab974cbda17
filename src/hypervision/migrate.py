"""Applying the Alembic migrations shipped inside the package."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import make_url

from hypervision.config import Settings, load_settings
from hypervision.db import create_engine
from hypervision.policy import rls
from hypervision.storage import private

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.attributes["url"] = url
    return config


@dataclass(frozen=True)
class Upgraded:
    """What ``upgrade`` did: the revision before (None: no schema yet) and after, and the
    paths of the embedded store whose permissions were tightened."""

    before: str | None
    after: str | None
    tightened: tuple[Path, ...] = ()

    @property
    def message(self) -> str:
        if self.before is None:
            said = f"database created at revision {self.after}"
        elif self.before != self.after:
            said = f"database upgraded from revision {self.before} to {self.after}"
        else:
            said = f"database already up to date (revision {self.after})"
        if self.tightened:
            said += (
                f"; permissions tightened on {len(self.tightened)} path(s) of the data "
                "directory (folders 0700, files 0600)"
            )
        return said


def upgrade(
    url: str | None = None,
    revision: str = "head",
    *,
    app_role: str | None = None,
    settings: Settings | None = None,
) -> Upgraded:
    """Migrate as the owner; on PostgreSQL, then store the row-level security key and grant
    ``app_role`` (the role the application connects as) its rights; then tighten the
    permissions an older version left on the data directory."""
    settings = settings or load_settings()
    url = url or settings.effective_database_url
    before = asyncio.run(_current_revision(url, settings))
    command.upgrade(alembic_config(url), revision)
    after = asyncio.run(_current_revision(url, settings))
    if url.startswith("postgresql") and revision == "head":
        asyncio.run(_secure(url, settings, app_role))
    tightened = tighten_store(settings, url)
    return Upgraded(before, after, tuple(tightened))


async def _current_revision(url: str, settings: Settings) -> str | None:
    engine = create_engine(settings, url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def tighten_store(settings: Settings, url: str) -> list[Path]:
    """Remove group and other permissions from the embedded store as older versions left it
    (storage/private.py): the data folder, the database and its -wal/-shm, the blob tree
    (walked only when its root was open), the key and witness folders."""
    changed: list[Path] = []
    database = make_url(url).database if url.startswith("sqlite") else None
    if database and ":memory:" not in url:
        for suffix in ("", "-wal", "-shm", "-journal"):
            changed += private.tighten(Path(f"{database}{suffix}"))
    changed += private.tighten(settings.data_dir)
    root = private.tighten(settings.blob_dir)
    changed += root + (private.tighten(settings.blob_dir, recursive=True) if root else [])
    changed += private.tighten(settings.audit_key_path.parent)
    changed += private.tighten(settings.audit_witness_path)
    changed += private.tighten(settings.audit_witness_path / ".lock")
    return changed


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
