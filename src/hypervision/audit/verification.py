"""One streaming pass over the audit trail: the hash chain, and the signed checkpoints if any.

Records are read in batches; checkpoints are read one at a time, when the walk reaches their
segment, and each segment's Merkle root is computed as its records go by: memory stays
bounded whatever the length of the trail. The first problem in sequence order is reported.

After ``audit prune`` (retention, docs/adr/0010) the trail starts later: the latest signed prune
marker in the witness directory says records ``1..N`` may be absent, ``N`` being the end of a
checkpointed segment. The pruned segments' checkpoints are still read and chained (their
records are gone, so not their Merkle roots), and the first remaining record must begin a
segment, at most ``N + 1``, and follow the previous checkpoint's signed ``last_row_hash``.
Anything else missing is reported as before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit.chain import chain_hash
from hypervision.audit.checkpoints import (
    FINGERPRINT_BYTES,
    Checkpoint,
    CheckpointError,
    PruneMarker,
    Witness,
    file_name,
)
from hypervision.audit.merkle import MerkleBuilder
from hypervision.audit.models import GENESIS_HASH, AuditHead
from hypervision.audit.service import VerifyResult, _iter_records

Problem = tuple[int, str, str]  # (first bad seq, message, checkpoint file)


class _Segments:
    """The checkpoints in sequence order; each is read and checked (signature, key, link to
    the previous one) when the walk reaches the first record it covers."""

    def __init__(self, witness: Witness | None) -> None:
        self.witness = witness
        self.names = witness.names() if witness else []
        self.next_index = 0
        self.previous: Checkpoint | None = None
        self.current: Checkpoint | None = None
        self.table = b""
        self.tree = MerkleBuilder()
        self.verified = 0
        self.marker: PruneMarker | None = None

    def load_marker(self) -> Problem | None:
        """The latest prune marker, which must name the checkpoint ending where it says."""
        if self.witness is None:
            return None
        try:
            marker = self.witness.latest_marker()
        except CheckpointError as exc:
            return 1, str(exc), ""
        if marker is None:
            return None
        name = file_name(marker.through_seq)
        try:
            checkpoint = self.witness.read(name)
        except CheckpointError as exc:
            return 1, f"prune marker {marker.file_name} names checkpoint {name}: {exc}", name
        if (checkpoint.digest(), checkpoint.last_row_hash) != (
            marker.checkpoint,
            marker.last_row_hash,
        ):
            return 1, f"prune marker {marker.file_name} does not match checkpoint {name}", name
        self.marker = marker
        return None

    def skip(self, start: int) -> Problem | None:
        """Records ``1..start - 1`` were pruned: check their checkpoints (signature, chain)
        without the records; ``start`` must be the first record of a segment."""
        seq = 1
        while seq < start:
            if problem := self.open(seq):
                return problem
            checkpoint = self.current
            if checkpoint is None:  # not reached: the marker's checkpoint exists
                return seq, f"record {seq} is missing", ""
            if checkpoint.last_seq >= start:
                return (
                    seq,
                    f"records {seq}..{start - 1} are missing: only part of the segment of "
                    f"checkpoint {checkpoint.file_name} is left (only whole segments are pruned)",
                    checkpoint.file_name,
                )
            self.previous, self.current = checkpoint, None
            self.verified += 1
            seq = checkpoint.last_seq + 1
        return None

    def resume(self, start: int | None) -> tuple[int, Problem | None]:
        """Where the walk starts when the first remaining record is ``start`` (``None``: the
        trail is empty): after the pruned prefix, never beyond the latest prune marker."""
        pruned = self.marker.through_seq if self.marker else 0
        begin = pruned + 1 if start is None else min(start, pruned + 1)
        if begin <= 1:
            return 1, None
        return begin, self.skip(begin)

    def open(self, seq: int) -> Problem | None:
        """``seq`` is the first record no verified checkpoint covers: take the next file."""
        if self.witness is None or self.next_index >= len(self.names):
            return None
        name = self.names[self.next_index]
        self.next_index += 1
        try:
            checkpoint = self.witness.read(name)
        except CheckpointError as exc:
            return seq, str(exc), name
        after = self.previous.file_name if self.previous else "the start of the trail"
        if checkpoint.first_seq > seq:
            return (
                seq,
                f"the checkpoint of records {seq}..{checkpoint.first_seq - 1} is missing: "
                f"{name} follows {after}",
                name,
            )
        expected_previous = self.previous.digest() if self.previous else GENESIS_HASH
        if checkpoint.first_seq < seq or checkpoint.previous != expected_previous:
            return (
                seq,
                f"checkpoint {name} does not follow {after} (a checkpoint was removed or replaced)",
                name,
            )
        self.current, self.table, self.tree = (
            checkpoint,
            checkpoint.fingerprint_table(),
            MerkleBuilder(),
        )
        return None

    def check(self, row: Any) -> Problem | None:
        """A record of the current segment against the signed fingerprint and Merkle root."""
        checkpoint = self.current
        assert checkpoint is not None
        raw = bytes.fromhex(row.row_hash)
        at = (row.seq - checkpoint.first_seq) * FINGERPRINT_BYTES
        if raw[:FINGERPRINT_BYTES] != self.table[at : at + FINGERPRINT_BYTES]:
            return (
                row.seq,
                f"record {row.seq} differs from signed checkpoint {checkpoint.file_name} "
                "(altered, removed or reordered, and the chain recomputed)",
                checkpoint.file_name,
            )
        self.tree.add(raw)
        if row.seq == checkpoint.last_seq:
            if self.tree.root().hex() != checkpoint.merkle_root or (
                row.row_hash != checkpoint.last_row_hash
            ):
                return (
                    checkpoint.first_seq,
                    f"records {checkpoint.first_seq}..{checkpoint.last_seq} do not match the "
                    f"Merkle root of signed checkpoint {checkpoint.file_name}",
                    checkpoint.file_name,
                )
            self.previous, self.current = checkpoint, None
            self.verified += 1
        return None


def _failed(checked: int, problem: Problem) -> VerifyResult:
    seq, message, name = problem
    return VerifyResult(False, checked, message, seq, checkpoint=name or None)


async def verify_trail(
    *, session: AsyncSession, witness: Witness | None = None, batch: int = 5000
) -> VerifyResult:
    """Name the first record altered, removed, reordered or truncated (after a checkpoint),
    or the first checkpoint file forged, edited or removed."""
    segments = _Segments(witness)
    if problem := segments.load_marker():
        return _failed(0, problem)
    expected_seq, prev_hash, checked, first = 1, GENESIS_HASH, 0, True
    async for row in _iter_records(session, batch):
        if first:
            first = False
            expected_seq, problem = segments.resume(row.seq)
            if problem:
                return _failed(checked, problem)
            if segments.previous is not None:
                prev_hash = segments.previous.last_row_hash
        if segments.current is None and (problem := segments.open(expected_seq)):
            return _failed(checked, problem)
        if row.seq != expected_seq:
            return VerifyResult(False, checked, f"record {expected_seq} is missing", expected_seq)
        if row.prev_hash != prev_hash:
            return VerifyResult(
                False, checked, f"record {row.seq} does not follow record {row.seq - 1}", row.seq
            )
        if chain_hash(prev_hash, row) != row.row_hash:
            return VerifyResult(False, checked, f"record {row.seq} was altered", row.seq)
        if segments.current is not None and (problem := segments.check(row)):
            return _failed(checked, problem)
        prev_hash, expected_seq, checked = row.row_hash, expected_seq + 1, checked + 1
    if first:  # no record left: everything was pruned (or nothing was ever written)
        expected_seq, problem = segments.resume(None)
        if problem:
            return _failed(checked, problem)
        if segments.previous is not None:
            prev_hash = segments.previous.last_row_hash
    if segments.current is None and (problem := segments.open(expected_seq)):
        return _failed(checked, problem)
    if (covering := segments.current) is not None:
        return _failed(
            checked,
            (
                expected_seq,
                f"record {expected_seq} is missing: signed checkpoint {covering.file_name} "
                f"covers records up to {covering.last_seq} (tail truncated)",
                covering.file_name,
            ),
        )
    head = await session.get(AuditHead, 1)
    if head is None:
        return VerifyResult(False, checked, "audit head is missing")
    if head.seq != expected_seq - 1 or head.last_hash != prev_hash:
        return VerifyResult(
            False,
            checked,
            f"trail ends at record {expected_seq - 1} but head says {head.seq}",
            expected_seq,
        )
    last = segments.previous.last_seq if segments.previous else 0
    return VerifyResult(True, checked, checkpoints=segments.verified, checkpointed=last)
