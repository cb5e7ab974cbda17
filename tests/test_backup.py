"""Backup and restore of the embedded store (SECURITY.md item 28): real data made through the
API, backed up and restored by the command line; tampered or hostile archives and occupied
data directories refused with nothing written."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient

from hypervision import backup
from hypervision.app import create_app
from hypervision.audit import service as audit
from hypervision.audit.service import VerifyResult
from hypervision.config import Settings
from tests import dbutil
from tests.conftest import TEST_SECRET, make_settings, migrated_sqlite
from tests.factories import ENTRY, officer, tx

ATTACHMENT = "Main courante — relevé des effectifs\n".encode() * 50
DB = "hypervision.db"


def _cli(data_dir: Path, *args: str, url: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
    env |= {
        "HYPERVISION_DATABASE_URL": url,  # empty: <data_dir>/hypervision.db
        "HYPERVISION_SECRET_KEY": TEST_SECRET,
        "HYPERVISION_DATA_DIR": str(data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "hypervision", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, "")


def _head(database: Path) -> tuple[int, str]:
    with closing(sqlite3.connect(database)) as conn:
        seq, last_hash = conn.execute("SELECT seq, last_hash FROM audit_head").fetchone()
    return int(seq), str(last_hash)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its digest: "nothing was written" is an equality."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Source:
    data_dir: Path
    archive: Path
    entry_id: str
    attachment_id: str
    headers: dict[str, str]
    head: tuple[int, str]


async def _populate(settings: Settings) -> tuple[str, str, dict[str, str]]:
    app = create_app(settings)
    try:
        transport = ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with AsyncClient(transport=transport, base_url="https://testserver") as client:
            headers = await officer(app, client, "alice", "PP")
            created = await client.post("/api/v1/entries", json=ENTRY, headers=headers)
            assert created.status_code == 201, created.text
            entry_id: str = created.json()["id"]
            uploaded = await client.post(
                f"/api/v1/entries/{entry_id}/attachments",
                files={"file": ("effectifs.txt", ATTACHMENT, "text/plain")},
                headers=headers,
            )
            assert uploaded.status_code == 201, uploaded.text
            return entry_id, uploaded.json()["id"], headers
    finally:
        await app.state.hub.stop()
        await app.state.engine.dispose()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """A migrated embedded store with an organisation, a user, an entry and an attachment,
    and its backup written by ``hypervision backup``."""
    data_dir = tmp_path_factory.mktemp("source")
    migrated_sqlite(data_dir / DB)
    settings = make_settings(data_dir, dbutil.sqlite_url(data_dir / DB))
    entry_id, attachment_id, headers = dbutil.in_thread(lambda: asyncio.run(_populate(settings)))
    archive = tmp_path_factory.mktemp("archives") / "hv.tar.gz"
    made = _cli(data_dir, "backup", "--output", str(archive))
    assert made.returncode == 0, made.stderr
    assert "1 attachment file(s)" in made.stdout
    return Source(data_dir, archive, entry_id, attachment_id, headers, _head(data_dir / DB))


def _rewrite(archive: Path, out: Path, change: Callable[[str, bytes], bytes | None]) -> None:
    """Copy ``archive`` member by member; ``change`` returns new bytes, or None to drop."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            handle = src.extractfile(member)
            assert handle is not None
            data = change(member.name, handle.read())
            if data is not None:
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


# --- backup --------------------------------------------------------------------------------


def test_backup_archive_holds_snapshot_files_and_manifest(source: Source) -> None:
    assert stat.S_IMODE(source.archive.stat().st_mode) == 0o600
    assert [p.name for p in source.archive.parent.iterdir()] == ["hv.tar.gz"]  # no temp left
    with tarfile.open(source.archive, "r:gz") as tar:
        names = tar.getnames()
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        manifest = json.load(manifest_file)
    blobs = sorted((source.data_dir / "blobs").rglob("*/*/*"))
    assert len(blobs) == 1
    blob_name = str(blobs[0].relative_to(source.data_dir))
    assert names == [DB, blob_name, "manifest.json"]
    assert manifest["format"] == "hypervision-backup" and manifest["format_version"] == 1
    assert datetime.fromisoformat(manifest["created_at"]).utcoffset() is not None
    assert manifest["created_at"].endswith("+00:00")
    assert manifest["app_version"] and manifest["alembic_revision"]
    assert (manifest["audit"]["seq"], manifest["audit"]["last_hash"]) == source.head
    assert manifest["files"][blob_name] == {
        "sha256": _sha(blobs[0]),
        "size": blobs[0].stat().st_size,
    }
    assert set(manifest["files"]) == {DB, blob_name}


def test_backup_while_a_writer_holds_the_database(source: Source, tmp_path: Path) -> None:
    """The online backup API takes a consistent snapshot next to an open write transaction:
    committed rows only, no waiting for the writer."""
    live = tmp_path / "live"
    shutil.copytree(source.data_dir, live)
    with closing(sqlite3.connect(live / DB, isolation_level=None)) as writer:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE organisations SET name = 'uncommitted'")
        report = backup.backup(_settings(live), tmp_path / "during.tar.gz")
        writer.execute("ROLLBACK")
    assert report.blobs == 1 and report.audit_seq == source.head[0]
    with tarfile.open(tmp_path / "during.tar.gz", "r:gz") as tar:
        snapshot = tar.extractfile(DB)
        assert snapshot is not None
        (tmp_path / "x").mkdir()
        (tmp_path / "x" / DB).write_bytes(snapshot.read())
    with closing(sqlite3.connect(tmp_path / "x" / DB)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        names = {row[0] for row in conn.execute("SELECT name FROM organisations")}
    assert names and "uncommitted" not in names


def test_backup_refuses_postgresql_and_an_existing_output(source: Source, tmp_path: Path) -> None:
    pg = _cli(
        tmp_path,
        "backup",
        "--output",
        str(tmp_path / "pg.tar.gz"),
        url="postgresql+asyncpg://hypervision:x@db-host:5432/hypervision",
    )
    assert pg.returncode == 1
    assert pg.stderr.count("\n") == 1 and pg.stderr.startswith("error: ")
    assert "pg_dump" in pg.stderr and "Backup and restore" in pg.stderr
    assert not (tmp_path / "pg.tar.gz").exists()
    existing = tmp_path / "existing.tar.gz"
    existing.write_bytes(b"keep me")
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.backup(_settings(source.data_dir), existing)
    assert existing.read_bytes() == b"keep me"


# --- restore -------------------------------------------------------------------------------


async def _read_back(src: Source, data_dir: Path) -> tuple[VerifyResult, str, bytes]:
    app = create_app(make_settings(data_dir, dbutil.sqlite_url(data_dir / DB)))
    try:
        async with tx(app) as session:
            verified = await audit.verify(session=session)
        transport = ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with AsyncClient(transport=transport, base_url="https://testserver") as client:
            entry = await client.get(f"/api/v1/entries/{src.entry_id}", headers=src.headers)
            assert entry.status_code == 200, entry.text
            blob = await client.get(f"/api/v1/attachments/{src.attachment_id}", headers=src.headers)
            assert blob.status_code == 200, blob.text
            return verified, str(entry.json()["title"]), blob.content
    finally:
        await app.state.hub.stop()
        await app.state.engine.dispose()


def test_restore_into_a_wiped_data_dir(source: Source, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(source.data_dir, data_dir)
    shutil.rmtree(data_dir)  # the disaster
    restored = _cli(data_dir, "restore", str(source.archive))
    assert restored.returncode == 0, restored.stderr
    assert "audit trail intact" in restored.stdout and source.head[1] in restored.stdout
    assert _head(data_dir / DB) == source.head
    assert _tree(data_dir / "blobs") == _tree(source.data_dir / "blobs")
    for path in [data_dir / DB, *(data_dir / "blobs").rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600)
    assert sorted(p.name for p in data_dir.iterdir()) == ["blobs", DB]  # no staging left
    # the audit chain verifies, the session, the entry and the attachment's bytes came back
    verified, title, content = dbutil.in_thread(lambda: asyncio.run(_read_back(source, data_dir)))
    assert verified.ok and verified.checked == source.head[0]
    assert title == ENTRY["title"]
    assert content == ATTACHMENT


def test_restore_onto_an_existing_database_needs_force(source: Source, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(source.data_dir, data_dir)
    before = _tree(data_dir)
    refused = _cli(data_dir, "restore", str(source.archive))
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "already holds a database" in refused.stderr and "--force" in refused.stderr
    assert _tree(data_dir) == before
    report = backup.restore(_settings(data_dir), source.archive, force=True)
    assert report.audit_checked == source.head[0] and len(report.moved_aside) == 2
    aside = sorted(p.name for p in data_dir.iterdir() if "before-restore-" in p.name)
    assert len(aside) == 2 and aside[0].startswith("blobs.") and aside[1].startswith(f"{DB}.")
    assert _sha(data_dir / aside[1]) == before[DB]  # the old database is kept, not deleted
    assert _head(data_dir / DB) == source.head


@pytest.mark.parametrize("what", ["blob", "database", "manifest", "missing manifest"])
def test_tampered_archive_is_refused_and_nothing_written(
    source: Source, tmp_path: Path, what: str
) -> None:
    def change(name: str, data: bytes) -> bytes | None:
        if what == "blob" and name.startswith("blobs/"):
            return _flip(data, len(data) // 2)
        if what == "database" and name == DB:
            return _flip(data, len(data) - 100)
        if what == "manifest" and name == "manifest.json":
            manifest = json.loads(data)
            manifest["audit"]["seq"] += 1
            return json.dumps(manifest).encode()
        if what == "missing manifest" and name == "manifest.json":
            return None
        return data

    tampered = tmp_path / "tampered.tar.gz"
    _rewrite(source.archive, tampered, change)
    fresh = tmp_path / "fresh"
    with pytest.raises(backup.BackupError, match="archive refused"):
        backup.restore(_settings(fresh), tampered)
    assert not fresh.exists()
    existing = tmp_path / "existing"
    shutil.copytree(source.data_dir, existing)
    before = _tree(existing)
    with pytest.raises(backup.BackupError, match="archive refused"):
        backup.restore(_settings(existing), tampered, force=True)
    assert _tree(existing) == before
    assert sorted(p.name for p in existing.iterdir()) == sorted(
        p.name for p in source.data_dir.iterdir()
    )


def _hostile(kind: str) -> tarfile.TarInfo:
    if kind == "symlink":
        info = tarfile.TarInfo("blobs/aa/bb/" + "ab" * 32)
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "relative symlink":
        info = tarfile.TarInfo(DB)
        info.type, info.linkname = tarfile.SYMTYPE, "../escaped"
    elif kind == "hard link":
        info = tarfile.TarInfo(DB)
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
    elif kind == "device":
        info = tarfile.TarInfo(DB)
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    elif kind == "fifo":
        info = tarfile.TarInfo(DB)
        info.type = tarfile.FIFOTYPE
    elif kind == "directory":
        info = tarfile.TarInfo("blobs/aa")
        info.type = tarfile.DIRTYPE
    elif kind == "dotdot inside":
        info = tarfile.TarInfo("blobs/../../escaped")
        info.size = 4
    else:
        info = tarfile.TarInfo({"dotdot": "../escaped", "absolute": "/escaped"}[kind])
        info.size = 4
    return info


@pytest.mark.parametrize(
    "kind",
    [
        "dotdot",
        "dotdot inside",
        "absolute",
        "symlink",
        "relative symlink",
        "hard link",
        "device",
        "fifo",
        "directory",
    ],
)
def test_hostile_member_is_refused(source: Source, tmp_path: Path, kind: str) -> None:
    hostile = tmp_path / "hostile.tar.gz"
    with tarfile.open(source.archive, "r:gz") as src, tarfile.open(hostile, "w:gz") as dst:
        info = _hostile(kind)
        dst.addfile(info, io.BytesIO(b"evil") if info.isreg() else None)
        for member in src.getmembers():
            if member.name != info.name:
                dst.addfile(member, src.extractfile(member))
    data_dir = tmp_path / "data"
    with pytest.raises(backup.BackupError, match="refused"):
        backup.restore(_settings(data_dir), hostile)
    assert not data_dir.exists()
    assert not (tmp_path / "escaped").exists()


def test_member_with_an_impossible_size_is_refused() -> None:
    """A forged header announcing more bytes than any file of ours is refused before any
    byte is read (the checks are the project's own: Python 3.11.2 has no tarfile filters)."""
    huge = tarfile.TarInfo(DB)
    huge.size = backup.MEMBER_MAX_BYTES + 1
    with pytest.raises(backup.BackupError, match="impossible size"):
        backup._member_name(huge)
    manifest = tarfile.TarInfo("manifest.json")
    manifest.size = backup.MANIFEST_MAX_BYTES + 1
    with pytest.raises(backup.BackupError, match="impossible size"):
        backup._member_name(manifest)
    ordinary = tarfile.TarInfo(DB)
    ordinary.size = 4096
    assert backup._member_name(ordinary) == DB
