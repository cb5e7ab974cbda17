"""Signed Merkle checkpoints of the audit trail, kept outside the database (docs/adr/0010).

The chain (``row_hash = SHA-256(prev_hash || canonical(row))``) shows a record changed in
place, but someone who can write to the database can recompute it all, or cut the tail and
reset ``audit_head``. So, every few minutes, ``hypervision audit checkpoint`` takes the records
written since the previous checkpoint (a *segment*), checks their chain, and writes one JSON
file to the witness directory, signed with an Ed25519 key the database never sees:

``version, first_seq, last_seq, count`` the segment; ``merkle_root`` the RFC 9162 root over the
records' ``row_hash`` (32 bytes each); ``last_row_hash``; ``previous`` the SHA-256 of the
previous checkpoint (so checkpoints chain too); ``created_at`` (UTC); ``key_id``; and
``fingerprints``: the first 8 bytes of every ``row_hash`` (base64), so that verification can
name the first record that differs, not just the segment. All of it is signed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit.chain import chain_hash, iter_records
from hypervision.audit.merkle import MerkleBuilder
from hypervision.audit.models import GENESIS_HASH, AuditHead
from hypervision.audit.sequencer import drain
from hypervision.storage import private

VERSION = 1
FINGERPRINT_BYTES = 8
MAX_SEGMENT = 100_000  # records per checkpoint: bounds the file size and verify's memory
FILE_PREFIX = "checkpoint-"
MARKER_PREFIX = "pruned-"  # signed prune markers (retention, ``audit/prune.py``)
_FILE_NAME = re.compile(r"^checkpoint-(\d{20})\.json$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class CheckpointError(Exception):
    """A key, a witness file or the trail is not as it should be; the message says which."""


# --- keys ----------------------------------------------------------------------------------


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _create_exclusive(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as sink:
        sink.write(data)
        sink.flush()
        os.fsync(sink.fileno())
    os.chmod(path, mode)  # the umask may have narrowed it; never wider than asked


def generate_key(private_path: Path, public_path: Path) -> str:
    """Create an Ed25519 key pair (private key mode 0600); refuse to overwrite either file."""
    for path in (private_path, public_path):
        if path.exists():
            raise CheckpointError(f"{path} already exists: refusing to overwrite it")
    private.make_dirs(private_path.parent)
    public_path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _create_exclusive(private_path, private_pem, 0o600)
    _create_exclusive(public_path, public_pem, 0o644)
    return key_id(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    if not path.is_file():
        raise CheckpointError(f"signing key {path} not found: create it with `audit keygen`")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise CheckpointError(
            f"signing key {path} is readable by others (mode {mode:o}): chmod 600"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError:
        raise CheckpointError(f"signing key {path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    if not path.is_file():
        raise CheckpointError(f"public key {path} not found: cannot check the checkpoints")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError:
        raise CheckpointError(f"public key {path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"public key {path} is not an Ed25519 key")
    return key


# --- the checkpoint ------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    version: int
    first_seq: int
    last_seq: int
    count: int
    merkle_root: str
    last_row_hash: str
    previous: str
    created_at: str
    key_id: str
    fingerprints: str

    def body(self) -> bytes:
        """The signed bytes: canonical JSON (sorted keys, no spaces, ASCII)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        """What the next checkpoint names as ``previous``."""
        return hashlib.sha256(self.body()).hexdigest()

    @property
    def file_name(self) -> str:
        return file_name(self.last_seq)

    def fingerprint_table(self) -> bytes:
        return base64.b64decode(self.fingerprints)


def file_name(last_seq: int) -> str:
    return f"{FILE_PREFIX}{last_seq:020d}.json"


@dataclass(frozen=True)
class PruneMarker:
    """Signed by ``audit prune`` before it removes records: records ``1..through_seq`` may be
    absent from the trail, ``through_seq`` being the last record of the checkpoint whose digest
    is ``checkpoint``. This run removed ``first_seq..through_seq`` (older than ``before``)."""

    version: int
    first_seq: int
    through_seq: int
    checkpoint: str
    last_row_hash: str
    before: str
    created_at: str
    key_id: str

    def body(self) -> bytes:
        return json.dumps({"prune": asdict(self)}, sort_keys=True, separators=(",", ":")).encode()

    @property
    def file_name(self) -> str:
        return marker_name(self.through_seq)


def marker_name(through_seq: int) -> str:
    return f"{MARKER_PREFIX}{through_seq:020d}.json"


def _parse(name: str, data: bytes) -> tuple[Checkpoint, bytes]:
    """The checkpoint and its signature, with every field's type and shape checked."""
    try:
        outer = json.loads(data)
        fields: dict[str, Any] = outer["checkpoint"]
        signature = base64.b64decode(outer["signature"], validate=True)
        checkpoint = Checkpoint(**fields)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise CheckpointError(f"checkpoint {name} is unreadable or malformed") from None
    ints = (checkpoint.version, checkpoint.first_seq, checkpoint.last_seq, checkpoint.count)
    hexes = (checkpoint.merkle_root, checkpoint.last_row_hash, checkpoint.previous)
    strs = (checkpoint.created_at, checkpoint.key_id, checkpoint.fingerprints)
    if (
        not all(type(value) is int for value in ints)
        or not all(isinstance(value, str) and _HEX64.match(value) for value in hexes)
        or not all(isinstance(value, str) for value in strs)
    ):
        raise CheckpointError(f"checkpoint {name} is unreadable or malformed")
    return checkpoint, signature


class Witness:
    """The witness directory: one file per checkpoint, named by its last sequence number,
    written once and never rewritten. Each read checks the signature with ``public_key``."""

    def __init__(self, directory: Path, public_key: Ed25519PublicKey) -> None:
        self.directory = directory
        self.public_key = public_key
        self.key_id = key_id(public_key)

    def names(self) -> list[str]:
        """Checkpoint files in sequence order (zero-padded names sort as numbers)."""
        if not self.directory.is_dir():
            return []
        return sorted(
            entry.name
            for entry in os.scandir(self.directory)
            if entry.name.startswith(FILE_PREFIX) and entry.name.endswith(".json")
        )

    def read(self, name: str) -> Checkpoint:
        try:
            data = (self.directory / name).read_bytes()
        except OSError:
            raise CheckpointError(f"checkpoint {name} cannot be read") from None
        checkpoint, signature = _parse(name, data)
        if checkpoint.key_id != self.key_id:
            raise CheckpointError(
                f"checkpoint {name} was signed with key {checkpoint.key_id}, "
                f"not with the configured public key {self.key_id}"
            )
        try:
            self.public_key.verify(signature, checkpoint.body())
        except InvalidSignature:
            raise CheckpointError(
                f"checkpoint {name} has an invalid signature (forged or edited)"
            ) from None
        span = checkpoint.last_seq - checkpoint.first_seq + 1
        if (
            checkpoint.version != VERSION
            or name != checkpoint.file_name
            or checkpoint.count != span
            or len(checkpoint.fingerprint_table()) != span * FINGERPRINT_BYTES
        ):
            raise CheckpointError(f"checkpoint {name} is inconsistent (name, count or version)")
        return checkpoint

    def last(self) -> Checkpoint | None:
        names = self.names()
        return self.read(names[-1]) if names else None

    def append(self, checkpoint: Checkpoint, signature: bytes) -> Path:
        """Write a new file atomically (temporary file, fsync, hard link: fails if the name
        exists, so a checkpoint is never rewritten)."""
        name = checkpoint.file_name
        data = {"checkpoint": asdict(checkpoint), "signature": base64.b64encode(signature).decode()}
        return self._write_once(name, data)

    # --- prune markers (retention): which prefix of the trail was removed legitimately ---

    def marker_names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            entry.name
            for entry in os.scandir(self.directory)
            if entry.name.startswith(MARKER_PREFIX) and entry.name.endswith(".json")
        )

    def read_marker(self, name: str) -> PruneMarker:
        try:
            outer = json.loads((self.directory / name).read_bytes())
            fields: dict[str, Any] = outer["prune"]
            signature = base64.b64decode(outer["signature"], validate=True)
            marker = PruneMarker(**fields)
        except OSError:
            raise CheckpointError(f"prune marker {name} cannot be read") from None
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise CheckpointError(f"prune marker {name} is unreadable or malformed") from None
        if marker.key_id != self.key_id:
            raise CheckpointError(
                f"prune marker {name} was signed with key {marker.key_id}, "
                f"not with the configured public key {self.key_id}"
            )
        try:
            self.public_key.verify(signature, marker.body())
        except InvalidSignature:
            raise CheckpointError(
                f"prune marker {name} has an invalid signature (forged or edited)"
            ) from None
        if (
            marker.version != VERSION
            or type(marker.through_seq) is not int
            or type(marker.first_seq) is not int
            or not 1 <= marker.first_seq <= marker.through_seq
            or name != marker.file_name
        ):
            raise CheckpointError(f"prune marker {name} is inconsistent (name or range)")
        return marker

    def latest_marker(self) -> PruneMarker | None:
        """The prune marker reaching furthest; every marker file is checked (a forged or
        edited one is an error, not ignored)."""
        markers = [self.read_marker(name) for name in self.marker_names()]
        return max(markers, key=lambda marker: marker.through_seq, default=None)

    def append_marker(self, marker: PruneMarker, signature: bytes) -> Path:
        data = {"prune": asdict(marker), "signature": base64.b64encode(signature).decode()}
        return self._write_once(marker.file_name, data)

    def _write_once(self, name: str, data: dict[str, Any]) -> Path:
        target = self.directory / name
        temporary = self.directory / f".{name}.{secrets.token_hex(6)}.tmp"
        _create_exclusive(temporary, json.dumps(data, indent=1).encode() + b"\n", 0o444)
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise CheckpointError(f"witness file {name} already exists") from None
        finally:
            temporary.unlink()
        _fsync_directory(self.directory)
        return target

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One writer at a time (on this host: also set the CronJob to concurrencyPolicy Forbid)."""
        private.make_dirs(self.directory)  # 0700, like the rest of the store
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CheckpointError("another `audit checkpoint` or `prune` is running") from None
            yield
        finally:
            os.close(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- writing checkpoints -------------------------------------------------------------------


class _Segment:
    def __init__(self, first_seq: int, previous: str) -> None:
        self.first_seq, self.previous = first_seq, previous
        self.tree = MerkleBuilder()
        self.fingerprints = bytearray()
        self.last_row_hash = ""

    def add(self, row_hash: str) -> None:
        raw = bytes.fromhex(row_hash)
        self.tree.add(raw)
        self.fingerprints += raw[:FINGERPRINT_BYTES]
        self.last_row_hash = row_hash

    def seal(self, kid: str, now: datetime) -> Checkpoint:
        count = self.tree.count
        return Checkpoint(
            version=VERSION,
            first_seq=self.first_seq,
            last_seq=self.first_seq + count - 1,
            count=count,
            merkle_root=self.tree.root().hex(),
            last_row_hash=self.last_row_hash,
            previous=self.previous,
            created_at=now.astimezone(UTC).isoformat(timespec="seconds"),
            key_id=kid,
            fingerprints=base64.b64encode(bytes(self.fingerprints)).decode(),
        )


async def write_checkpoints(
    *,
    session: AsyncSession,
    witness_dir: Path,
    private_key: Ed25519PrivateKey,
    batch: int = 5000,
    max_segment: int = MAX_SEGMENT,
) -> list[Checkpoint]:
    """Sign the records written since the last checkpoint (none: nothing is written), once
    the queue is chained. The segment's chain is checked first: a broken trail is never
    signed."""
    witness = Witness(witness_dir, private_key.public_key())
    written: list[Checkpoint] = []
    with witness.lock():
        last = witness.last()
        await drain(session)  # a checkpoint covers every record committed before it
        head = await session.get(AuditHead, 1)
        if head is None:
            raise CheckpointError("the audit head is missing")
        after = last.last_seq if last else 0
        if head.seq < after:
            raise CheckpointError(
                f"the audit head ({head.seq}) is behind the last checkpoint ({after}): "
                "the trail was truncated; run `hypervision audit verify`"
            )
        prev_hash = last.last_row_hash if last else GENESIS_HASH
        segment = _Segment(after + 1, last.digest() if last else GENESIS_HASH)
        expected = after + 1
        async for row in iter_records(session, batch, after=after, until=head.seq):
            if row.seq != expected or row.prev_hash != prev_hash:
                raise CheckpointError(f"record {expected} is missing or out of order: not signed")
            if chain_hash(prev_hash, row) != row.row_hash:
                raise CheckpointError(f"record {expected} was altered: not signed")
            segment.add(row.row_hash)
            prev_hash, expected = row.row_hash, expected + 1
            if segment.tree.count >= max_segment:
                written.append(_sign(witness, private_key, segment))
                segment = _Segment(expected, written[-1].digest())
        if expected != head.seq + 1:
            raise CheckpointError(f"record {expected} is missing: not signed")
        if segment.tree.count:
            written.append(_sign(witness, private_key, segment))
    return written


def _sign(witness: Witness, private_key: Ed25519PrivateKey, segment: _Segment) -> Checkpoint:
    checkpoint = segment.seal(witness.key_id, datetime.now(UTC))
    witness.append(checkpoint, private_key.sign(checkpoint.body()))
    return checkpoint
