"""Backup and restore of the embedded store (SECURITY.md item 28).

A backup is one gzip-compressed tar archive holding

* ``hypervision.db``: a consistent snapshot of the SQLite database, taken with SQLite's online
  backup API while the server may keep writing (never a file copy, which could catch a
  half-written page or miss the write-ahead log);
* ``blobs/ab/cd/<key>``: every attachment file, copied *after* the snapshot, so every blob
  the snapshot references is there (a blob is written before the row that references it is
  committed); blobs written later are orphans that ``files sweep`` removes;
* ``manifest.json`` (last): format version, creation time (UTC), application version, Alembic
  revision, audit head (sequence number and last hash), and the SHA-256 and size of every file.

The archive is written to a temporary file (mode 0600) and linked into place only when
complete, never over an existing file.

A restore checks everything before it touches the data directory: only regular files with the
expected names (no absolute path, ``..``, link, device, directory or sparse file, and a
plausible size, checked member by member without ``tarfile``'s extraction filters, which Python
3.11.2 lacks; each member is copied to a path built from its checked name), every file's digest
and size against the manifest, nothing missing or extra, the database's integrity, its audit
chain (``audit.service.verify``) and its audit head against the manifest. Only then is the old
database (with its ``-wal``/``-shm``) and blob folder moved aside
(``…before-restore-<timestamp>``, never deleted) and the restored ones moved in.

PostgreSQL deployments use ``pg_dump``/``pg_restore`` (README, "Backup and restore").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from hypervision import __version__
from hypervision.config import Settings
from hypervision.storage.blobs import DIR_MODE, FILE_MODE, KEY_PATTERN

FORMAT = "hypervision-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "hypervision.db"
BLOBS = "blobs"
CHUNK = 1024 * 1024
MANIFEST_MAX_BYTES = 256 * 1024 * 1024
MEMBER_MAX_BYTES = 1 << 40  # 1 TiB: no file of ours is larger; a bigger header is forged
PG_PROCEDURE = (
    "the database is PostgreSQL: back it up with pg_dump -Fc as its owner, plus a copy of the "
    "blob and audit witness directories (README.md, section 'Backup and restore')"
)
_BLOB_NAME = re.compile(r"blobs/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is one line saying why."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    files: int
    blobs: int
    size: int
    audit_seq: int
    audit_hash: str
    revision: str


@dataclass(frozen=True)
class RestoreReport:
    database: Path
    blobs: int
    audit_checked: int
    audit_seq: int
    audit_hash: str
    revision: str
    created_at: str
    moved_aside: list[Path] = field(default_factory=list)
    migrate_needed: bool = False


# --- where the embedded store lives ----------------------------------------------------------


def database_path(settings: Settings) -> Path:
    """The SQLite file of the configured store; :class:`BackupError` for PostgreSQL."""
    url = settings.effective_database_url
    if url.startswith("postgresql"):
        raise BackupError(PG_PROCEDURE)
    path = unquote(urlsplit(url).path)
    if not url.startswith("sqlite") or path.startswith("/:memory:") or not path.strip("/"):
        raise BackupError(f"cannot back up or restore the database {url.split('?')[0]!r}")
    # sqlite+aiosqlite:///relative.db -> "/relative.db"; sqlite+aiosqlite:////abs.db -> "//abs.db"
    return Path(path[1:]).absolute()


# --- backup ------------------------------------------------------------------------------------


def backup(settings: Settings, output: Path) -> BackupReport:
    """Write a backup archive of the embedded store to ``output`` (which must not exist)."""
    source = database_path(settings)
    output = Path(output).absolute()
    if output.exists() or output.is_symlink():
        raise BackupError(f"{output} already exists: choose a new file name")
    if not output.parent.is_dir():
        raise BackupError(f"folder {output.parent} does not exist")
    if not source.is_file():
        raise BackupError(f"no database at {source}: nothing to back up")
    try:
        if _writer_free(source):  # else a writer holds it: its queue is chained on restore
            asyncio.run(_chain_queue(settings, source))  # the head then covers every record
        return _backup(settings, source, output)
    except (OSError, sqlite3.Error, tarfile.TarError) as exc:
        raise BackupError(f"backup failed: {_one_line(exc)}") from None


def _backup(settings: Settings, source: Path, output: Path) -> BackupReport:
    with tempfile.TemporaryDirectory(prefix=".hypervision-backup-", dir=output.parent) as work:
        snapshot = Path(work) / DATABASE
        _snapshot(source, snapshot)
        revision, seq, last_hash = _describe(snapshot)
        temp = output.parent / f".{output.name}.tmp-{secrets.token_hex(8)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "wb") as raw:
                files = _write_archive(raw, settings.blob_dir, snapshot, revision, seq, last_hash)
                raw.flush()
                os.fsync(raw.fileno())
            _link_into_place(temp, output)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    _fsync_dir(output.parent)
    blobs = sum(1 for name in files if name.startswith(f"{BLOBS}/"))
    return BackupReport(
        path=output,
        files=len(files),
        blobs=blobs,
        size=output.stat().st_size,
        audit_seq=seq,
        audit_hash=last_hash,
        revision=revision,
    )


def _snapshot(source: Path, target: Path) -> None:
    """A consistent copy of the live database (SQLite online backup API), as one file."""
    with contextlib.closing(
        sqlite3.connect(f"{source.as_uri()}?mode=rw", uri=True, timeout=15)
    ) as src:
        src.execute("PRAGMA busy_timeout=15000")
        with contextlib.closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            check = dst.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise BackupError(f"the database fails its integrity check: {check}")
    os.chmod(target, FILE_MODE)


def _describe(database: Path) -> tuple[str, int, str]:
    """Alembic revision and audit head of a database file (read-only)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as conn:
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            head = conn.execute("SELECT seq, last_hash FROM audit_head WHERE id = 1").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"not a migrated Hypervision database ({_one_line(exc)})") from None
    if revision is None or head is None:
        raise BackupError("not a migrated Hypervision database (run hypervision migrate)")
    return str(revision[0]), int(head[0]), str(head[1])


class _HashingReader:
    """Reads a file for ``tarfile.addfile`` and hashes what it hands over."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def _add_file(
    archive: tarfile.TarFile, name: str, path: Path, files: dict[str, dict[str, Any]]
) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return  # a blob deleted since it was listed: the snapshot no longer references it
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        info = _member(name, size)
        reader = _HashingReader(handle)
        archive.addfile(info, reader)
    files[name] = {"sha256": reader.digest.hexdigest(), "size": size}


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = FILE_MODE
    info.mtime = int(datetime.now(UTC).timestamp())
    info.type = tarfile.REGTYPE
    return info


def _blob_files(root: Path) -> Iterator[tuple[str, Path]]:
    if not root.is_dir():
        return
    for first in sorted(root.iterdir()):
        if not (first.is_dir() and re.fullmatch(r"[0-9a-f]{2}", first.name)):
            continue
        for second in sorted(first.iterdir()):
            if not (second.is_dir() and re.fullmatch(r"[0-9a-f]{2}", second.name)):
                continue
            for path in sorted(second.iterdir()):  # temporary files (.tmp-…) are skipped
                if KEY_PATTERN.fullmatch(path.name) and path.name[:4] == first.name + second.name:
                    yield f"{BLOBS}/{first.name}/{second.name}/{path.name}", path


def _write_archive(
    raw: IO[bytes], blob_dir: Path, snapshot: Path, revision: str, seq: int, last_hash: str
) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        _add_file(archive, DATABASE, snapshot, files)
        for name, path in _blob_files(blob_dir):
            _add_file(archive, name, path, files)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "app_version": __version__,
            "alembic_revision": revision,
            "audit": {"seq": seq, "last_hash": last_hash},
            "files": dict(sorted(files.items())),
        }
        body = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
        archive.addfile(_member(MANIFEST, len(body)), io.BytesIO(body))
    return files


def _link_into_place(temp: Path, output: Path) -> None:
    """Publish the finished archive under its name, never over a file created meanwhile."""
    try:
        os.link(temp, output)
    except FileExistsError:
        raise BackupError(f"{output} already exists: choose a new file name") from None
    except OSError:  # a file system without hard links
        if output.exists():
            raise BackupError(f"{output} already exists: choose a new file name") from None
        os.replace(temp, output)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- restore -----------------------------------------------------------------------------------


def restore(settings: Settings, archive: Path, *, force: bool = False) -> RestoreReport:
    """Check ``archive`` completely, then put its database and blobs in place. On any failure
    the existing data is left as it was."""
    target = database_path(settings)
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError(f"no backup archive at {archive}")
    data_dir = settings.data_dir.absolute()
    made: list[Path] = []
    try:
        for folder in (data_dir, target.parent):
            made.extend(_make_dirs(folder))
        staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    except OSError as exc:
        raise BackupError(f"cannot prepare the restore: {_one_line(exc)}") from None
    try:
        try:
            manifest = _extract_and_check(archive, staging)
            checked = _check_database(settings, staging / DATABASE, manifest)
            if target.exists() and not force:
                raise BackupError(
                    f"{target} already holds a database: use --force to move it aside and restore"
                )
            aside = _put_in_place(staging, target, settings.blob_dir.absolute())
        except (OSError, sqlite3.Error) as exc:
            raise BackupError(f"restore failed: {_one_line(exc)}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except BackupError:
        for folder in reversed(made):  # folders created for nothing
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    revision = str(manifest["alembic_revision"])
    return RestoreReport(
        database=target,
        blobs=sum(1 for name in manifest["files"] if name.startswith(f"{BLOBS}/")),
        audit_checked=checked,
        audit_seq=int(manifest["audit"]["seq"]),
        audit_hash=str(manifest["audit"]["last_hash"]),
        revision=revision,
        created_at=str(manifest["created_at"]),
        moved_aside=aside,
        migrate_needed=revision != _head_revision(),
    )


def _make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents (mode 0700); the ones created, outermost first."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(mode=DIR_MODE)
    return list(reversed(missing))


def _member_name(member: tarfile.TarInfo) -> str:
    """The member's name when it is a plain regular file the format allows; BackupError
    otherwise. These checks are the project's own, not ``tarfile.data_filter`` (PEP 706),
    which Python 3.11.2 lacks: nothing is ever extracted by ``tarfile``, each member's bytes
    are copied by ``_copy_out`` to a path built from an allowed name."""
    name = member.name
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or "\0" in name or ".." in parts:
        raise BackupError(f"archive member refused: {name!r} leaves the archive's folder")
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.issparse():
        raise BackupError(f"archive member refused: {name!r} is not a regular file")
    limit = MANIFEST_MAX_BYTES if name == MANIFEST else MEMBER_MAX_BYTES
    if not 0 <= member.size <= limit:
        raise BackupError(f"archive member refused: {name!r} has an impossible size")
    if name not in (MANIFEST, DATABASE) and not _BLOB_NAME.fullmatch(name):
        raise BackupError(f"archive member refused: unexpected name {name!r}")
    blob = _BLOB_NAME.fullmatch(name)
    if blob and blob.group(3)[:4] != blob.group(1) + blob.group(2):
        raise BackupError(f"archive member refused: {name!r} is in the wrong folder")
    return name


def _extract_and_check(archive: Path, staging: Path) -> dict[str, Any]:
    """Extract into ``staging`` (names checked first, bytes hashed on the way) and compare
    with the manifest; the manifest when everything matches."""
    digests: dict[str, dict[str, Any]] = {}
    manifest_bytes: bytes | None = None
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = tar.getmembers()
            names = [_member_name(member) for member in members]
            if len(set(names)) != len(names):
                raise BackupError("archive refused: a file appears twice")
            if MANIFEST not in names:
                raise BackupError("archive refused: no manifest.json (not a Hypervision backup)")
            for member, name in zip(members, names, strict=True):
                source = tar.extractfile(member)
                if source is None:
                    raise BackupError(f"archive member refused: {name!r} has no content")
                with source:
                    if name == MANIFEST:
                        manifest_bytes = source.read(MANIFEST_MAX_BYTES + 1)
                    else:
                        digests[name] = _copy_out(source, staging / name)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BackupError(f"archive refused: unreadable ({_one_line(exc)})") from None
    manifest = _parse_manifest(manifest_bytes or b"")
    expected: dict[str, Any] = manifest["files"]
    missing = sorted(set(expected) - set(digests))
    extra = sorted(set(digests) - set(expected))
    if missing:
        raise BackupError(f"archive refused: {missing[0]} is listed in the manifest but missing")
    if extra:
        raise BackupError(f"archive refused: {extra[0]} is not listed in the manifest")
    for name, actual in sorted(digests.items()):
        wanted = expected[name]
        if not isinstance(wanted, dict) or (wanted.get("sha256"), wanted.get("size")) != (
            actual["sha256"],
            actual["size"],
        ):
            raise BackupError(f"archive refused: {name} does not match its manifest checksum")
    if DATABASE not in digests:
        raise BackupError("archive refused: it holds no database")
    return manifest


def _copy_out(source: IO[bytes], path: Path) -> dict[str, Any]:
    for folder in reversed([p for p in path.parents if not p.exists()]):
        folder.mkdir(mode=DIR_MODE)
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "wb") as sink:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            sink.write(chunk)
        sink.flush()
        os.fsync(sink.fileno())
    return {"sha256": digest.hexdigest(), "size": size}


def _parse_manifest(body: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BackupError("archive refused: manifest.json is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("archive refused: manifest.json is not a Hypervision backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"archive refused: backup format version {manifest.get('format_version')!r} "
            f"is not supported (this version reads {FORMAT_VERSION})"
        )
    audit = manifest.get("audit")
    if (
        not isinstance(manifest.get("files"), dict)
        or not isinstance(audit, dict)
        or not isinstance(audit.get("seq"), int)
        or not isinstance(audit.get("last_hash"), str)
        or not isinstance(manifest.get("alembic_revision"), str)
    ):
        raise BackupError("archive refused: manifest.json is incomplete")
    return manifest


def _check_database(settings: Settings, database: Path, manifest: dict[str, Any]) -> int:
    """Integrity, revision, audit head and audit chain of the staged database; the number of
    audit records verified."""
    with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=rw", uri=True)) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()
    if check is None or check[0] != "ok":
        raise BackupError("archive refused: the database fails SQLite's integrity check")
    revision, seq, last_hash = _describe(database)
    if revision != manifest["alembic_revision"]:
        raise BackupError("archive refused: the database's revision differs from the manifest")
    if revision not in _known_revisions():
        raise BackupError(
            f"archive refused: database revision {revision} is unknown to Hypervision "
            f"{__version__} (made by a newer version?)"
        )
    audit = manifest["audit"]
    if (seq, last_hash) != (audit["seq"], audit["last_hash"]):
        raise BackupError("archive refused: the database's audit head differs from the manifest")
    result = asyncio.run(_verify_audit(settings, database))
    if not result[0]:
        raise BackupError(f"archive refused: AUDIT TRAIL BROKEN: {result[2]}")
    return result[1]


def _writer_free(database: Path) -> bool:
    """Whether the write lock can be taken at once (a backup never waits for a writer)."""
    with contextlib.closing(sqlite3.connect(database, timeout=0.2, isolation_level=None)) as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        conn.execute("ROLLBACK")
        return True


async def _chain_queue(settings: Settings, database: Path) -> None:
    """Chain the audit records still queued (docs/adr/0018), as the server's sequencer would."""
    from hypervision.audit.sequencer import drain
    from hypervision.db import create_engine, transaction
    from hypervision.policy import rls

    engine = create_engine(settings, url=f"sqlite+aiosqlite:///{database}")
    try:
        async with transaction(rls.system_sessions(engine, settings)) as session:
            await drain(session)
    finally:
        await engine.dispose()


async def _verify_audit(settings: Settings, database: Path) -> tuple[bool, int, str | None]:
    from hypervision.audit import service as audit
    from hypervision.db import create_engine, transaction
    from hypervision.policy import rls

    engine = create_engine(settings, url=f"sqlite+aiosqlite:///{database}")
    try:
        async with transaction(rls.system_sessions(engine, settings)) as session:
            result = await audit.verify(session=session)
    finally:
        await engine.dispose()
    return result.ok, result.checked, result.problem


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from hypervision.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def _head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    from hypervision.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _put_in_place(staging: Path, target: Path, blob_dir: Path) -> list[Path]:
    """Move the current database (with its WAL files) and blob folder aside, then the staged
    ones in; undo the moves if one fails. The paths moved aside."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moves: list[tuple[Path, Path]] = []
    for suffix in ("", "-wal", "-shm"):
        current = target.with_name(target.name + suffix)
        if current.exists():
            moves.append(
                (current, target.with_name(f"{target.name}.before-restore-{stamp}{suffix}"))
            )
    if blob_dir.exists():
        with contextlib.suppress(OSError):
            blob_dir.rmdir()  # empty: nothing to keep
        if blob_dir.exists():
            moves.append((blob_dir, blob_dir.with_name(f"{blob_dir.name}.before-restore-{stamp}")))
    staged_blobs = staging / BLOBS
    if not staged_blobs.exists():
        staged_blobs.mkdir(mode=DIR_MODE)
    moves.extend([(staged_blobs, blob_dir), (staging / DATABASE, target)])
    done: list[tuple[Path, Path]] = []
    try:
        for source, destination in moves:
            if destination.exists() or destination.is_symlink():
                raise BackupError(f"{destination} already exists")
            shutil.move(source, destination)
            done.append((source, destination))
    except BaseException:
        for source, destination in reversed(done):
            with contextlib.suppress(OSError):
                shutil.move(destination, source)
        raise
    _fsync_dir(target.parent)
    _fsync_dir(blob_dir.parent)
    return [destination for _source, destination in moves[:-2]]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
