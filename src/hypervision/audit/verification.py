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

from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
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
from hypervision.audit.models import GENESIS_HASH, AuditHead, AuditRecord
from hypervision.audit.parallel import CheckedBatch, checked_batches


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    problem: str | None = None
    seq: int | None = None
    checkpoint: str | None = None  # the witness file involved in the problem, if any
    checkpoints: int = 0  # signed checkpoints verified
    checkpointed: int = 0  # last record covered by a verified checkpoint


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

    def idle(self) -> bool:
        """No checkpoint to check the next records against, now or later in the walk."""
        return self.current is None and (self.witness is None or self.next_index >= len(self.names))

    def check(self, seq: int, row_hash: str) -> Problem | None:
        """A record of the current segment against the signed fingerprint and Merkle root."""
        checkpoint = self.current
        assert checkpoint is not None
        raw = bytes.fromhex(row_hash)
        at = (seq - checkpoint.first_seq) * FINGERPRINT_BYTES
        if raw[:FINGERPRINT_BYTES] != self.table[at : at + FINGERPRINT_BYTES]:
            return (
                seq,
                f"record {seq} differs from signed checkpoint {checkpoint.file_name} "
                "(altered, removed or reordered, and the chain recomputed)",
                checkpoint.file_name,
            )
        self.tree.add(raw)
        if seq == checkpoint.last_seq:
            if self.tree.root().hex() != checkpoint.merkle_root or (
                row_hash != checkpoint.last_row_hash
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


class _Walk:
    """Where the walk stands: the next expected record, its predecessor's hash, how many
    records were verified; ``problem`` once the first one is found."""

    def __init__(self, session: AsyncSession, segments: _Segments) -> None:
        self.session, self.segments = session, segments
        self.expected_seq, self.prev_hash, self.checked = 1, GENESIS_HASH, 0
        self.problem: VerifyResult | None = None

    def start(self, first_seq: int | None) -> None:
        self.expected_seq, problem = self.segments.resume(first_seq)
        if problem:
            self.problem = _failed(self.checked, problem)
        elif self.segments.previous is not None:
            self.prev_hash = self.segments.previous.last_row_hash

    async def batch(self, part: CheckedBatch) -> None:
        """Every record of ``part`` in order, or up to the first problem. A clean batch (its
        records follow on, hashes matching) with no checkpoint to check is taken at once."""
        seqs, prevs, hashes, n = part.seqs, part.prev_hashes, part.row_hashes, len(part.seqs)
        if part.clean and self.segments.idle():
            if seqs[0] == self.expected_seq and prevs[0] == self.prev_hash:
                self.prev_hash, self.expected_seq = hashes[-1], self.expected_seq + n
                self.checked += n
                return
            n = 1  # the first record does not follow on: it is the problem
        undecoded = set(part.undecoded)
        for i in range(n):
            if problem := await self.record(
                seqs[i], prevs[i], hashes[i], i == part.altered, i in undecoded
            ):
                self.problem = problem
                return

    async def record(
        self, seq: int, prev_hash: Any, row_hash: Any, altered: bool, undecoded: bool
    ) -> VerifyResult | None:
        """One record, checks in the order the first problem is named by."""
        segments, checked = self.segments, self.checked
        if segments.current is None and (problem := segments.open(self.expected_seq)):
            return _failed(checked, problem)
        if seq != self.expected_seq:
            return VerifyResult(
                False, checked, f"record {self.expected_seq} is missing", self.expected_seq
            )
        if prev_hash != self.prev_hash:
            return VerifyResult(
                False, checked, f"record {seq} does not follow record {seq - 1}", seq
            )
        if altered or (undecoded and not await self.orm_hash_ok(seq)):
            return VerifyResult(False, checked, f"record {seq} was altered", seq)
        if segments.current is not None and (problem := segments.check(seq, row_hash)):
            return _failed(checked, problem)
        self.prev_hash, self.expected_seq, self.checked = (
            row_hash,
            self.expected_seq + 1,
            checked + 1,
        )
        return None

    async def orm_hash_ok(self, seq: int) -> bool:
        """A record the raw reader could not decode, checked through SQLAlchemy's types."""
        table = AuditRecord.__table__
        row = (await self.session.execute(select(table).where(table.c.seq == seq))).one()
        return bool(chain_hash(self.prev_hash, row) == row.row_hash)


async def verify_trail(
    *,
    session: AsyncSession,
    witness: Witness | None = None,
    batch: int = 5000,
    workers: int | None = None,
) -> VerifyResult:
    """Name the first record altered, removed, reordered or truncated (after a checkpoint),
    or the first checkpoint file forged, edited or removed. Hashes are checked by
    ``workers`` processes (``audit.parallel``); the links, sequence numbers and checkpoints
    in sequence order here, so the first problem is named whichever batch finds one."""
    segments = _Segments(witness)
    if problem := segments.load_marker():
        return _failed(0, problem)
    walk, first = _Walk(session, segments), True
    full = bool(segments.names)  # checkpoints: every record's hash is checked against them
    parts = checked_batches(session, batch=batch, workers=workers, full=full)
    async with aclosing(parts) as batches:
        async for part in batches:
            if first:
                first = False
                walk.start(part.seqs[0])
            if walk.problem is None:
                await walk.batch(part)
            if walk.problem is not None:
                return walk.problem
    if first:  # no record left: everything was pruned (or nothing was ever written)
        walk.start(None)
        if walk.problem is not None:
            return walk.problem
    expected_seq, prev_hash, checked = walk.expected_seq, walk.prev_hash, walk.checked
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
