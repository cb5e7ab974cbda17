"""The embedded store's files are private (0700 folders, 0600 files) like ``demo.env``, whatever
the umask: the data folder, the SQLite database and its -wal/-shm, the blobs, the signing key's
folder and the audit witness folder; ``migrate`` tightens an older data folder."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from hypervision.storage.blobs import LocalBlobStore
from tests.conftest import TEST_SECRET

DB = "hypervision.db"


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line as an operator runs it, under the common umask 022."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    env |= {"HYPERVISION_SECRET_KEY": TEST_SECRET, "HYPERVISION_DATA_DIR": str(data_dir)}
    umask_022 = ["/bin/sh", "-c", 'umask 022 && exec "$0" "$@"']
    return subprocess.run(
        [*umask_022, sys.executable, "-m", "hypervision", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_to_others(root: Path) -> dict[str, str]:
    """Every path under ``root`` (itself included) that group or others may use."""
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root.parent)): oct(_mode(p)) for p in paths if _mode(p) & 0o077}


def test_store_files_are_private_under_umask_022(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "var"  # missing, parents too
    migrated = _cli(data_dir, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    written = _cli(data_dir, "org", "create", "--code", "PP", "--name", "Préfecture de police")
    assert written.returncode == 0, written.stderr
    assert _cli(data_dir, "audit", "keygen").returncode == 0
    checkpoint = _cli(data_dir, "audit", "checkpoint")
    assert checkpoint.returncode == 0, checkpoint.stderr
    previous = os.umask(0o022)
    try:
        key = asyncio.run(LocalBlobStore(data_dir / "blobs").put(b"photo"))
        # a live connection keeps its -wal and -shm next to the database: SQLite gives them
        # the database file's mode
        with closing(sqlite3.connect(data_dir / DB)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE t (x)")
            conn.execute("INSERT INTO t VALUES (1)")
            conn.commit()
            assert (data_dir / f"{DB}-wal").exists() and (data_dir / f"{DB}-shm").exists()
            opened = _open_to_others(data_dir)
    finally:
        os.umask(previous)
    assert (data_dir / "blobs" / key[:2] / key[2:4] / key).is_file()
    assert (data_dir / "audit-witness").is_dir() and (data_dir / "keys").is_dir()
    assert opened == {
        "var/keys/audit-ed25519.pub": "0o644",  # a public key is public
        # witness files are read-only for everyone, inside a folder only the owner may enter
        "var/audit-witness/checkpoint-00000000000000000001.json": "0o444",
    }
    assert _mode(data_dir / "audit-witness") == _mode(data_dir / "keys") == 0o700
    assert _mode(data_dir / DB) == 0o600 and _mode(data_dir) == 0o700


def test_migrate_tightens_an_older_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    assert _cli(data_dir, "migrate").returncode == 0
    assert _cli(data_dir, "audit", "keygen").returncode == 0
    assert _cli(data_dir, "audit", "checkpoint").returncode == 0
    previous = os.umask(0o022)
    try:
        asyncio.run(LocalBlobStore(data_dir / "blobs").put(b"photo"))
    finally:
        os.umask(previous)
    # as an older version left it
    for path in [data_dir, *data_dir.rglob("*")]:
        if path.name != "audit-ed25519.pem" and not path.name.startswith("checkpoint-"):
            path.chmod(0o755 if path.is_dir() else 0o644)
    again = _cli(data_dir, "migrate")
    assert again.returncode == 0, again.stderr
    assert "permissions tightened" in again.stdout
    assert _open_to_others(data_dir) == {"var/keys/audit-ed25519.pub": "0o644"}
    quiet = _cli(data_dir, "migrate")
    assert "permissions tightened" not in quiet.stdout
