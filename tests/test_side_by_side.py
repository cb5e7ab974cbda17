"""Releases without a pause (issue 20, ADR 0034): during a rolling release the migration runs
first, then replicas of version N and N+1 serve side by side from one database. So migrations
only *expand* (tables, columns with a default or nullable, indexes), never drop, rename or
retype what version N still uses; a *contract* step ships a release after the code stopped
using it and says so (``CONTRACT = "why"`` in the migration). And a test runs N beside N+1:
version N is the code of the commit before the newest migration was added (from git), served
from a copy of its ``src``; each version reads what the other writes."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.conftest import engine_name
from tests.factories import ENTRY, officer
from tests.live.test_replicas import Replica, replica_env, running

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ROOT / "src" / "hypervision" / "migrations" / "versions"
# Rolling releases start with the migrations after this one; the older ones ran with a pause.
EXPAND_ONLY_AFTER = 18
CONTRACTING_OPS = frozenset(
    {"drop_column", "drop_table", "rename_table", "alter_column", "drop_constraint"}
)
CONTRACTING_SQL = ("DROP COLUMN", "DROP TABLE", "RENAME ", "ALTER COLUMN", "DROP CONSTRAINT")


def _contractions(path: Path) -> list[str]:
    """What ``upgrade()`` of the migration at ``path`` removes or changes in place."""
    tree = ast.parse(path.read_text())
    if any(
        isinstance(node, ast.Assign)
        and any(getattr(t, "id", "") == "CONTRACT" for t in node.targets)
        for node in tree.body
    ):
        return []  # a contract step, said so
    found: list[str] = []
    for function in tree.body:
        if not (isinstance(function, ast.FunctionDef) and function.name == "upgrade"):
            continue
        for node in ast.walk(function):
            call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if call and node.func.attr in CONTRACTING_OPS:  # type: ignore[attr-defined]
                found.append(ast.unparse(node)[:100])
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and any(word in text.upper() for word in CONTRACTING_SQL):
                found.append(text[:100])
    return found


def _migrations() -> list[Path]:
    return sorted(p for p in VERSIONS.glob("0*.py"))


def test_migrations_after_the_first_rolling_release_only_expand() -> None:
    later = [p for p in _migrations() if int(p.name[:4]) > EXPAND_ONLY_AFTER]
    assert later, "no migration to check: EXPAND_ONLY_AFTER is stale"
    broken = {p.name: _contractions(p) for p in later if _contractions(p)}
    assert not broken, f"contracting a schema N still uses (mark CONTRACT = '…'): {broken}"


def test_the_expansion_check_sees_a_contraction(tmp_path: Path) -> None:
    sample = tmp_path / "0099_sample.py"
    sample.write_text(
        "from alembic import op\n\ndef upgrade():\n    op.drop_column('entries', 'title')\n"
        "    op.execute('ALTER TABLE entries RENAME COLUMN body TO text')\n"
    )
    assert len(_contractions(sample)) == 2
    sample.write_text(sample.read_text() + "\nCONTRACT = 'N-1 stopped reading title'\n")
    assert _contractions(sample) == []


def _previous_src(tmp: Path) -> Path:
    """The ``src`` of version N: the commit before the newest migration was added."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        if os.environ.get("CI"):
            raise AssertionError("CI runs from a git clone: version N comes from its history")
        pytest.skip("not a git checkout: version N cannot be found")
    newest = _migrations()[-1].relative_to(ROOT)

    def run(*args: str) -> bytes:
        return subprocess.run([git, *args], cwd=ROOT, check=True, capture_output=True).stdout

    added = run("log", "--diff-filter=A", "--format=%H", "-1", "--", str(newest)).decode().strip()
    if not added:
        pytest.skip(f"{newest} is not committed yet: version N is the working tree")
    archive = run("archive", "--format=tar", f"{added}^", "src")
    tmp.mkdir(parents=True)
    tar = shutil.which("tar") or "/usr/bin/tar"
    subprocess.run([tar, "-x", "-C", str(tmp)], input=archive, check=True)
    return tmp / "src"


@pytest.fixture
def side_by_side(
    app: FastAPI, database_url: str, tmp_path: Path
) -> Iterator[tuple[Replica, Replica]]:
    """Version N and version N+1 (this tree) on the test database, migrated to N+1."""
    if engine_name(database_url) != "postgresql":
        pytest.skip("PostgreSQL only: replicas share a PostgreSQL database")
    old_src = _previous_src(tmp_path / "n")
    # Version N's front-end files: the same build (git-ignored, not in the archive).
    vendor = ROOT / "src" / "hypervision" / "web" / "static" / "vendor"
    if vendor.exists():
        shutil.copytree(vendor, old_src / "hypervision" / "web" / "static" / "vendor")
    env = replica_env(database_url, tmp_path, {"live_bus": "postgres"})
    old_env = {**env, "PYTHONPATH": str(old_src)}
    where = subprocess.run(
        [sys.executable, "-c", "import hypervision; print(hypervision.__file__)"],
        env=old_env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert Path(where.strip()).is_relative_to(old_src), where  # N really runs N's code
    with running({"N": old_env, "N+1": env}, tmp_path) as (old, new):
        yield old, new


async def test_version_n_and_n_plus_1_serve_one_database_side_by_side(
    app: FastAPI, client: AsyncClient, side_by_side: tuple[Replica, Replica]
) -> None:
    author = await officer(app, client, "author", "PP")
    async with httpx.AsyncClient(timeout=20) as http:
        ids = {}
        for replica in side_by_side:
            made = await http.post(
                f"{replica.base}/api/v1/entries",
                json={**ENTRY, "title": f"écrit par {replica.name}"},
                headers=author,
            )
            assert made.status_code == 201, (replica.name, made.text, replica.output())
            ids[replica.name] = made.json()["id"]
        for reader in side_by_side:
            for writer, entry_id in ids.items():
                got = await http.get(f"{reader.base}/api/v1/entries/{entry_id}", headers=author)
                assert got.status_code == 200, (reader.name, writer, got.text)
                assert got.json()["title"] == f"écrit par {writer}"
            feed = await http.get(f"{reader.base}/api/v1/entries", headers=author)
            assert {e["id"] for e in feed.json()["items"]} >= set(ids.values())
