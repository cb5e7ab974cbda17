"""One streaming pass over the audit trail: the hash chain, and the signed checkpoints if any.

Records are read in batches; checkpoints are read one at a time, when the walk reaches their
segment, and each segment's Merkle root is computed as its records go by: memory stays
bounded whatever the length of the trail. The first problem in sequence order is reported.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit.checkpoints import FINGERPRINT_BYTES, Checkpoint, CheckpointError, Witness
from hypervision.audit.merkle import MerkleBuilder
from hypervision.audit.models import GENESIS_HASH, AuditHead
from hypervision.audit.service import VerifyResult, _iter_records, chain_hash

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
    return VerifyResult(False, checked, message, seq, checkpoint=name)


async def verify_trail(
    *, session: AsyncSession, witness: Witness | None = None, batch: int = 5000
) -> VerifyResult:
    """Name the first record altered, removed, reordered or truncated (after a checkpoint),
    or the first checkpoint file forged, edited or removed."""
    segments = _Segments(witness)
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    async for row in _iter_records(session, batch):
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
    if head.seq != checked or head.last_hash != prev_hash:
        return VerifyResult(
            False, checked, f"trail ends at record {checked} but head says {head.seq}", checked + 1
        )
    last = segments.previous.last_seq if segments.previous else 0
    return VerifyResult(True, checked, checkpoints=segments.verified, checkpointed=last)
