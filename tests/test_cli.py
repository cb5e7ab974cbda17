"""The ``hypervision`` command line, run as a real process against both engines."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select

from hypervision.identity.models import ApiToken, User
from hypervision.identity.secrets import digest
from tests import dbutil
from tests.conftest import TEST_SECRET, once_across_engines
from tests.factories import tx


def _cli(
    url: str,
    tmp: Path,
    *args: str,
    stdin: str = "",
    owner_url: str | None = None,
    env_extra: dict[str, str] | None = None,
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
        **(env_extra or {}),
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
    said = run("org", "set", "PP", "--release-to", "PP", "--release-to", "MININT")
    assert "released to MININT, PP" in said
    assert "every organisation" in run("org", "set", "PP", "--release-to", "all")
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
    disabled, verdict = records[-2:]  # verify notes its verdict on the trail (ADR 0040)
    assert disabled["action"] == "user.disable" and disabled["actor_name"].startswith("cli:")
    assert (verdict["action"], verdict["decision"]) == ("audit.verify", "allowed")
    assert verdict["detail"]["checked"] == len(records) - 1


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
    first = _cli(database_url, tmp_path, "audit", "verify")
    assert first.returncode == 0
    assert "records were waiting to be chained" in first.stderr  # no sequencer ran yet
    async with owner_tx(app) as session:  # the application's role may not alter the trail
        await session.execute(update(AuditRecord).where(AuditRecord.seq == 1).values(action="x"))
    broken = _cli(database_url, tmp_path, "audit", "verify")
    assert broken.returncode == 1
    assert "record 1 was altered" in broken.stderr
    # Each verdict is on the trail: a failure raises the security officers' alert (ADR 0040).
    from sqlalchemy import select

    from tests.factories import tx

    async with tx(app) as session:
        verdicts = await session.scalars(
            select(AuditRecord.decision)
            .where(AuditRecord.action == "audit.verify")
            .order_by(AuditRecord.qid)
        )
        assert list(verdicts) == ["allowed", "denied"]


def test_migrate_says_what_it_did(tmp_path: Path) -> None:
    """A new embedded database is "created at revision X", a second run "already up to date"
    (it used to say "up to date" right after creating it)."""
    from alembic.script import ScriptDirectory

    from hypervision.migrate import alembic_config, upgrade

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    url = f"sqlite+aiosqlite:///{tmp_path / 'hypervision.db'}"
    created = _cli(url, tmp_path, "migrate")
    assert created.returncode == 0, created.stderr
    assert created.stdout == f"database created at revision {head}\n"
    again = _cli(url, tmp_path, "migrate")
    assert again.stdout == f"database already up to date (revision {head})\n"
    older = tmp_path / "older"
    older.mkdir(mode=0o700)
    old_url = f"sqlite+aiosqlite:///{older / 'hypervision.db'}"
    base = ScriptDirectory.from_config(alembic_config()).get_base()
    dbutil.in_thread(lambda: upgrade(old_url, revision=str(base)))
    upgraded = _cli(old_url, older, "migrate")
    assert upgraded.stdout == f"database upgraded from revision {base} to {head}\n"


def test_serve_says_where_it_listens(tmp_path: Path) -> None:
    """``make demo`` prints the address ``hypervision serve`` says, from the settings (it used
    to print :8000 whatever HYPERVISION_BIND_PORT said)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    env |= {
        "HYPERVISION_SECRET_KEY": TEST_SECRET,
        "HYPERVISION_DATA_DIR": str(tmp_path),
        "HYPERVISION_BIND_PORT": str(port),
    }
    with subprocess.Popen(
        [sys.executable, "-m", "hypervision", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            first = server.stdout.readline()
        finally:
            server.terminate()
            server.wait(timeout=60)
    assert first == f"Hypervision on http://127.0.0.1:{port}/ (stop with Ctrl+C)\n"
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    assert "http://127.0.0.1:8000" not in makefile
