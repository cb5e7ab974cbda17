"""Retention of the audit trail (SECURITY.md 23, docs/adr/0010): ``hypervision audit prune``.

Only whole checkpointed segments are removed, oldest first, and only those whose last record
is older than the cut-off (now minus ``audit_retention_days``, or ``--before``). Records that
no checkpoint covers are never removed. Before anything is removed, every segment to prune is
checked against its signed checkpoint (the checkpoints' signatures and chain, then each
record's chain link, signed fingerprint and the segment's Merkle root): one bad segment and
nothing is removed.

Then a *prune marker* is signed with the checkpoint key and written to the witness directory
(``pruned-<last pruned seq>.json``), and the records are deleted in one transaction. The
marker is how ``audit verify`` tells a legitimate prune from a deletion: records ``1..N`` may
be absent only when a marker signed for ``N`` exists, ``N`` ending a checkpointed segment.
The checkpoint files of pruned segments stay: the checkpoint chain remains complete. The
marker is written first: if the deletion then fails, the records are still there, which a
marker permits (and the next run removes them).

On PostgreSQL the application's role may not delete audit records: prune connects as the
owner (``database_owner_url``), in the system context (policy ``hv_prune`` of migration 0007).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import CursorResult, Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.audit.chain import chain_hash, iter_records
from hypervision.audit.checkpoints import (
    FINGERPRINT_BYTES,
    VERSION,
    Checkpoint,
    CheckpointError,
    PruneMarker,
    Witness,
    key_id,
    marker_name,
)
from hypervision.audit.merkle import MerkleBuilder
from hypervision.audit.models import GENESIS_HASH, AuditHead, AuditRecord, AuditResource
from hypervision.audit.service import Actor
from hypervision.config import Settings

RECORDS = cast(Table, AuditRecord.__table__)


class PruneError(CheckpointError):
    """Nothing was removed; the message says why."""


@dataclass(frozen=True)
class PruneReport:
    before: datetime
    segments: list[Checkpoint] = field(default_factory=list)  # removed (or to remove), in order
    dry_run: bool = False
    marker: str | None = None  # the prune marker written (or reused)

    @property
    def removed(self) -> int:
        return sum(checkpoint.count for checkpoint in self.segments)


def cutoff(settings: Settings, before: str | None, now: datetime | None = None) -> datetime:
    """``--before`` (ISO date or date-time; UTC when no offset is given), else the retention."""
    if before is None:
        return (now or datetime.now(UTC)) - timedelta(days=settings.audit_retention_days)
    try:
        value = datetime.fromisoformat(before)
    except ValueError:
        raise PruneError(f"--before {before!r} is not an ISO date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def prune(
    *,
    session: AsyncSession,
    witness_dir: Path,
    public_key: Ed25519PublicKey,
    private_key: Ed25519PrivateKey | None,
    before: datetime,
    actor: Actor,
    dry_run: bool = False,
    batch: int = 5000,
) -> PruneReport:
    """Remove the records of the whole checkpointed segments older than ``before``, oldest
    first, after checking them against their signed checkpoints (``PruneError`` otherwise,
    with nothing removed). ``private_key`` signs the prune marker (not needed for a dry run)."""
    if private_key is not None and key_id(private_key.public_key()) != key_id(public_key):
        raise PruneError("the signing key does not match the public key")
    witness = Witness(witness_dir, public_key)
    with witness.lock():
        segments = await _segments_to_prune(session, witness, before, batch)
        if dry_run or not segments:
            return PruneReport(before, segments, dry_run=dry_run)
        if private_key is None:
            raise PruneError("pruning needs the signing key (to sign the prune marker)")
        first, last = segments[0], segments[-1]
        name = marker_name(last.last_seq)
        if name not in witness.marker_names():  # else left by a run whose deletion failed
            marker = PruneMarker(
                version=VERSION,
                first_seq=first.first_seq,
                through_seq=last.last_seq,
                checkpoint=last.digest(),
                last_row_hash=last.last_row_hash,
                before=before.astimezone(UTC).isoformat(timespec="seconds"),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                key_id=witness.key_id,
            )
            witness.append_marker(marker, private_key.sign(marker.body()))
        result = cast(
            CursorResult[tuple[()]],
            await session.execute(
                delete(RECORDS).where(RECORDS.c.seq.between(first.first_seq, last.last_seq))
            ),
        )
        expected = last.last_seq - first.first_seq + 1
        if result.rowcount != expected:
            raise PruneError(
                f"{result.rowcount} records matched instead of {expected}: nothing removed"
            )
        await session.execute(  # the trail's index by record goes with its records
            delete(AuditResource).where(AuditResource.seq.between(first.first_seq, last.last_seq))
        )
        await audit.record(
            session=session,
            actor=actor,
            action="audit.prune",
            resource_type="audit_record",
            detail={
                "first_seq": first.first_seq,
                "last_seq": last.last_seq,
                "count": expected,
                "before": before.astimezone(UTC).isoformat(timespec="seconds"),
                "marker": name,
            },
        )
        return PruneReport(before, segments, marker=name)


async def _segments_to_prune(
    session: AsyncSession, witness: Witness, before: datetime, batch: int
) -> list[Checkpoint]:
    marker = witness.latest_marker()
    pruned = marker.through_seq if marker else 0
    head = await session.get(AuditHead, 1)
    if head is None:
        raise PruneError("the audit head is missing")
    lowest = await session.scalar(select(func.min(RECORDS.c.seq)))
    first_left = head.seq + 1 if lowest is None else int(lowest)
    chosen: list[Checkpoint] = []
    previous: Checkpoint | None = None
    for name in witness.names():
        checkpoint = witness.read(name)  # signature and key checked
        after = previous.file_name if previous else "the start of the trail"
        if checkpoint.first_seq != (previous.last_seq + 1 if previous else 1) or (
            checkpoint.previous != (previous.digest() if previous else GENESIS_HASH)
        ):
            raise PruneError(
                f"checkpoint {name} does not follow {after}: nothing pruned; "
                "run `hypervision audit verify`"
            )
        prev_hash = previous.last_row_hash if previous else GENESIS_HASH
        previous = checkpoint
        if checkpoint.last_seq < first_left:  # its records are gone already
            if checkpoint.last_seq > pruned:
                raise PruneError(
                    f"records {checkpoint.first_seq}..{checkpoint.last_seq} are missing and no "
                    "prune marker covers them: nothing pruned; run `hypervision audit verify`"
                )
            continue
        if checkpoint.first_seq < first_left:
            raise PruneError(
                f"records {checkpoint.first_seq}..{first_left - 1} are missing (part of the "
                f"segment of {name}): nothing pruned; run `hypervision audit verify`"
            )
        last_at = await session.scalar(
            select(RECORDS.c.at).where(RECORDS.c.seq == checkpoint.last_seq)
        )
        if last_at is None:
            raise PruneError(
                f"record {checkpoint.last_seq} is missing (segment of {name}): nothing pruned"
            )
        if last_at >= before:
            break  # oldest first: this segment and the later ones are kept
        await _check_segment(session, checkpoint, prev_hash, batch)
        chosen.append(checkpoint)
    if chosen:
        last = chosen[-1]
        following = (
            await session.execute(
                select(RECORDS.c.seq, RECORDS.c.prev_hash).where(RECORDS.c.seq == last.last_seq + 1)
            )
        ).one_or_none()
        if following is not None and following.prev_hash != last.last_row_hash:
            raise PruneError(
                f"record {last.last_seq + 1} does not follow record {last.last_seq}: "
                "nothing pruned; run `hypervision audit verify`"
            )
    return chosen


async def _check_segment(
    session: AsyncSession, checkpoint: Checkpoint, prev_hash: str, batch: int
) -> None:
    """The segment's records against its signed checkpoint, or ``PruneError``."""
    name = checkpoint.file_name
    table = checkpoint.fingerprint_table()
    tree = MerkleBuilder()
    expected = checkpoint.first_seq
    rows = iter_records(session, batch, after=checkpoint.first_seq - 1, until=checkpoint.last_seq)
    async for row in rows:
        if row.seq != expected or row.prev_hash != prev_hash:
            raise PruneError(
                f"record {expected} is missing or out of order (segment of {name}): "
                "nothing pruned; run `hypervision audit verify`"
            )
        if chain_hash(prev_hash, row) != row.row_hash:
            raise PruneError(f"record {row.seq} was altered (segment of {name}): nothing pruned")
        raw = bytes.fromhex(row.row_hash)
        at = (row.seq - checkpoint.first_seq) * FINGERPRINT_BYTES
        if raw[:FINGERPRINT_BYTES] != table[at : at + FINGERPRINT_BYTES]:
            raise PruneError(
                f"record {row.seq} differs from signed checkpoint {name}: nothing pruned"
            )
        tree.add(raw)
        prev_hash, expected = row.row_hash, expected + 1
    if expected != checkpoint.last_seq + 1:
        raise PruneError(f"record {expected} is missing (segment of {name}): nothing pruned")
    if tree.root().hex() != checkpoint.merkle_root or prev_hash != checkpoint.last_row_hash:
        raise PruneError(
            f"records {checkpoint.first_seq}..{checkpoint.last_seq} do not match the Merkle "
            f"root of signed checkpoint {name}: nothing pruned"
        )


async def run_prune(
    settings: Settings,
    *,
    public_key: Ed25519PublicKey,
    private_key: Ed25519PrivateKey | None,
    before: datetime,
    actor: Actor,
    dry_run: bool = False,
) -> PruneReport:
    """``prune`` in one transaction as the database owner (the application's role may not
    delete audit records), in the system context."""
    from hypervision.db import create_engine, transaction
    from hypervision.policy.rls import system_sessions

    engine = create_engine(settings, settings.database_owner_url or None)
    try:
        async with transaction(system_sessions(engine, settings)) as session:
            return await prune(
                session=session,
                witness_dir=settings.audit_witness_path,
                public_key=public_key,
                private_key=private_key,
                before=before,
                actor=actor,
                dry_run=dry_run,
            )
    finally:
        await engine.dispose()
