"""The ``hypervision`` command line, run as a real process against both engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select

from hypervision.identity.models import ApiToken, User
from hypervision.identity.secrets import digest
from tests.conftest import TEST_SECRET, once_across_engines
from tests.factories import tx


def _cli(
    url: str, tmp: Path, *args: str, stdin: str = "", owner_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    env |= {
        "HYPERVISION_DATABASE_URL": url,
        "HYPERVISION_DATABASE_OWNER_URL": owner_url or "",
        "HYPERVISION_SECRET_KEY": TEST_SECRET,
        "HYPERVISION_DATA_DIR": str(tmp),
        "HYPERVISION_ARGON2_TIME_COST": "1",
        "HYPERVISION_ARGON2_MEMORY_KIB": "8",
        "HYPERVISION_ARGON2_PARALLELISM": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "hypervision", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_administration_from_the_command_line(
    app: FastAPI, database_url: str, owner_database_url: str, tmp_path: Path
) -> None:
    once_across_engines(database_url)

    def run(*args: str, stdin: str = "") -> str:
        result = _cli(database_url, tmp_path, *args, stdin=stdin, owner_url=owner_database_url)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "up to date" in run("migrate")
    run("org", "create", "--code", "MININT", "--name", "Ministère de l'Intérieur", "--mfa-required")
    run("org", "create", "--code", "PP", "--name", "Préfecture de police", "--parent", "MININT")
    run("group", "create", "--code", "VIP", "--name", "Protection")
    run(
        "user",
        "create",
        "--username",
        "jean.dupont",
        "--name",
        "Jean Dupont",
        "--org",
        "PP",
        "--clearance",
        "DR",
        "--role",
        "watch_officer",
        "--group",
        "VIP",
        "--password-stdin",
        stdin="la Seine coule sous le pont\n",
    )
    run(
        "user",
        "create",
        "--username",
        "connector",
        "--name",
        "SI",
        "--org",
        "PP",
        "--clearance",
        "NP",
        "--machine",
    )
    run("user", "set-clearance", "jean.dupont", "NP")
    token = run(
        "token", "create", "--user", "connector", "--name", "feed", "--scope", "read", "--days", "7"
    ).strip()
    run("user", "disable", "jean.dupont")
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == "jean.dupont"))
        assert user is not None
        assert (user.clearance, user.is_active, user.roles) == ("NP", False, ["watch_officer"])
        stored = await session.scalar(select(ApiToken))
        assert stored is not None and stored.token_hash == digest(token)
    assert "intact" in run("audit", "verify")
    records = [json.loads(line) for line in run("audit", "export").splitlines()]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert records[-1]["action"] == "user.disable" and records[-1]["actor_name"].startswith("cli:")


async def test_command_line_errors_are_clear(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    once_across_engines(database_url)
    _ = app
    result = _cli(database_url, tmp_path, "user", "set-clearance", "nobody", "DR")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: User nobody not found."
    weak = _cli(database_url, tmp_path, "org", "create", "--code", "bad code", "--name", "x")
    assert weak.returncode != 0


async def test_audit_verify_exit_code(app: FastAPI, database_url: str, tmp_path: Path) -> None:
    once_across_engines(database_url)
    from sqlalchemy import update

    from hypervision.audit.models import AuditRecord
    from tests.factories import make_org, owner_tx

    await make_org(app, "MININT")
    await make_org(app, "PP", "MININT")
    assert _cli(database_url, tmp_path, "audit", "verify").returncode == 0
    async with owner_tx(app) as session:  # the application's role may not alter the trail
        await session.execute(update(AuditRecord).where(AuditRecord.seq == 1).values(action="x"))
    broken = _cli(database_url, tmp_path, "audit", "verify")
    assert broken.returncode == 1
    assert "record 1 was altered" in broken.stderr
