"""What the SOC runs on what it received (``hypervision audit verify-export FILE…``): a JSON
lines export checked against the hash chain and the signed checkpoints (docs/adr/0037).

- Records: every sequence number between the first and the last received is there (a
  duplicate must be identical), each ``prev_hash`` is the previous record's ``row_hash``
  (the genesis hash before record 1); with ``detail`` exported, every ``row_hash`` is
  recomputed too.
- Checkpoints: the fingerprints are rebuilt from the records' ``row_hash``; the signature,
  with the audit public key, must hold over them, and so must the Merkle root (RFC 9162), the
  last ``row_hash`` and the link to the previous checkpoint. A valid signature thus vouches
  for every ``row_hash`` of its segment as received.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hypervision.audit.chain import chain_hash
from hypervision.audit.checkpoints import FINGERPRINT_BYTES, Checkpoint, key_id
from hypervision.audit.merkle import MerkleBuilder
from hypervision.audit.models import GENESIS_HASH
from hypervision.soc.formats import CHECKPOINT_FIELDS, RECORD_FIELDS


@dataclass
class ExportReport:
    records: int = 0  # distinct
    duplicates: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    recomputed: int = 0  # records whose row_hash was recomputed (detail exported)
    checkpoints: int = 0  # verified
    skipped: list[str] = field(default_factory=list)  # checkpoints whose records are not all here
    signed_through: int = 0
    unreadable: int = 0  # lines that are not a record nor a checkpoint (a cut-short write)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _read(lines: Iterable[bytes], report: ExportReport) -> tuple[dict[int, Any], dict[int, Any]]:
    records: dict[int, dict[str, Any]] = {}
    checkpoints: dict[int, dict[str, Any]] = {}
    for line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            kind = data["type"]
            key = data["seq"] if kind == "audit" else data["last_seq"]
        except (ValueError, KeyError, TypeError):
            report.unreadable += 1
            continue
        table = records if kind == "audit" else checkpoints if kind == "checkpoint" else None
        if table is None or type(key) is not int:
            report.unreadable += 1
            continue
        if key in table:
            report.duplicates += 1
            if table[key] != data:
                report.problems.append(f"{kind} {key} received twice with different content")
            continue
        table[key] = data
    return records, checkpoints


def _check_records(records: dict[int, Any], report: ExportReport) -> None:
    if not records:
        return
    seqs = sorted(records)
    report.records, report.first_seq, report.last_seq = len(seqs), seqs[0], seqs[-1]
    previous: dict[str, Any] | None = None
    for seq in range(seqs[0], seqs[-1] + 1):
        row = records.get(seq)
        if row is None:
            end = next(s for s in seqs if s > seq) - 1
            report.problems.append(f"records {seq}..{end} are missing from the export")
            previous = None
            continue
        missing = [name for name in RECORD_FIELDS if name not in row]
        if missing:
            report.problems.append(f"record {seq} lacks {', '.join(missing)}")
            previous = None
            continue
        expected = GENESIS_HASH if seq == 1 else previous["row_hash"] if previous else None
        if expected is not None and row["prev_hash"] != expected:
            report.problems.append(f"record {seq} does not follow record {seq - 1} (prev_hash)")
        if "detail" in row:
            if chain_hash(row["prev_hash"], SimpleNamespace(**row)) != row["row_hash"]:
                report.problems.append(f"record {seq} does not match its row_hash (altered)")
            report.recomputed += 1
        previous = row


def _checkpoint(data: dict[str, Any], records: dict[int, Any]) -> Checkpoint | None:
    """The signed checkpoint, its fingerprints rebuilt from the records; None when some of
    its records are not in the export."""
    first, last = data["first_seq"], data["last_seq"]
    table = bytearray()
    for seq in range(first, last + 1):
        row = records.get(seq)
        if row is None:
            return None
        table += bytes.fromhex(row["row_hash"])[:FINGERPRINT_BYTES]
    fields = {name: data[name] for name in CHECKPOINT_FIELDS}
    return Checkpoint(**fields, fingerprints=base64.b64encode(bytes(table)).decode())


def _check_checkpoints(
    checkpoints: dict[int, Any],
    records: dict[int, Any],
    public_key: Ed25519PublicKey,
    report: ExportReport,
) -> None:
    kid = key_id(public_key)
    digests: dict[int, str] = {}  # last_seq -> digest of the verified checkpoint
    for last in sorted(checkpoints):
        data = checkpoints[last]
        name = f"checkpoint {data.get('first_seq')}..{last}"
        try:
            checkpoint = _checkpoint(data, records)
            signature = base64.b64decode(data["signature"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            report.problems.append(f"{name} is malformed")
            continue
        if checkpoint is None:
            report.skipped.append(name)
            continue
        if checkpoint.key_id != kid:
            report.problems.append(f"{name} was signed with key {checkpoint.key_id}, not {kid}")
            continue
        try:
            public_key.verify(signature, checkpoint.body())
        except InvalidSignature:
            report.problems.append(
                f"{name}: the signature does not hold over the records received "
                "(a record's row_hash or the checkpoint was altered)"
            )
            continue
        tree = MerkleBuilder()
        for seq in range(checkpoint.first_seq, checkpoint.last_seq + 1):
            tree.add(bytes.fromhex(records[seq]["row_hash"]))
        if tree.root().hex() != checkpoint.merkle_root:
            report.problems.append(f"{name}: the Merkle root differs from the records'")
        if checkpoint.count != checkpoint.last_seq - checkpoint.first_seq + 1:
            report.problems.append(f"{name}: its count does not match its range")
        if records[last]["row_hash"] != checkpoint.last_row_hash:
            report.problems.append(f"{name}: last_row_hash differs from record {last}'s")
        before = checkpoint.first_seq - 1
        if before == 0 and checkpoint.previous != GENESIS_HASH:
            report.problems.append(f"{name}: the first checkpoint must follow the genesis hash")
        elif before in digests and checkpoint.previous != digests[before]:
            report.problems.append(f"{name} does not follow the checkpoint before it")
        digests[last] = checkpoint.digest()
        report.checkpoints += 1
        report.signed_through = max(report.signed_through, last)


def verify_export(lines: Iterable[bytes], public_key: Ed25519PublicKey | None) -> ExportReport:
    """Check an export's lines (records and checkpoints, in any order, duplicates allowed);
    without a public key, the chain only."""
    report = ExportReport()
    records, checkpoints = _read(lines, report)
    _check_records(records, report)
    if public_key is not None:
        _check_checkpoints(checkpoints, records, public_key, report)
    return report
