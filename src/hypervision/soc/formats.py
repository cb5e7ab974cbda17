"""What the SOC receives: an audit record or a signed checkpoint as an RFC 5424 syslog message
or as one JSON line (docs/adr/0037).

Only the record's metadata leaves: sequence number and hashes, time, actor, action, decision,
surface, resource type and ids, labels, request id and client address. Never its ``detail``
(free-form: product column names, user names, changed settings) in syslog; in JSON lines only
when ``soc_include_detail`` is set (the SOC can then recompute every ``row_hash``).

A checkpoint is sent without its ``fingerprints``: they are the first 8 bytes of every
``row_hash`` of its segment, which the SOC already holds, so it rebuilds them and then checks
the signature (``soc.verify``): the signature vouches for the records it received.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from hypervision.audit.chain import HASHED_FIELDS
from hypervision.audit.checkpoints import Checkpoint

APP_NAME = "hypervision"
RECORD_MSGID = "audit"
CHECKPOINT_MSGID = "checkpoint"
BOM = "\ufeff"
MAX_SYSLOG_IDS = 64  # resource ids in one syslog message; JSON lines carry them all

# RFC 5424 severities.
EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG = range(8)
SEVERITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
DECISION_SEVERITY = {"allowed": INFO, "not_found": NOTICE, "denied": WARNING}
ACTION_SEVERITY = {  # actions that matter more than their decision says
    "soc.export_failing": ERROR,
    "soc.export_recovered": NOTICE,
    "audit.prune": NOTICE,
}

# The fields of a record that leave, in this order: the hashed ones but its detail (sent in
# JSON lines only when asked, HYPERVISION_SOC_INCLUDE_DETAIL), then its links in the chain.
RECORD_FIELDS = (*(name for name in HASHED_FIELDS if name != "detail"), "prev_hash", "row_hash")
CHECKPOINT_FIELDS = (
    "version",
    "first_seq",
    "last_seq",
    "count",
    "merkle_root",
    "last_row_hash",
    "previous",
    "created_at",
    "key_id",
)


def severity(action: str, decision: str) -> int:
    if action in ACTION_SEVERITY:
        return ACTION_SEVERITY[action]
    return DECISION_SEVERITY.get(decision, NOTICE)


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return value


def record_fields(row: Any, *, include_detail: bool = False) -> dict[str, Any]:
    """The record as the SOC sees it (``row``: an ORM record or a plain row)."""
    data = {name: _plain(getattr(row, name)) for name in RECORD_FIELDS}
    if include_detail:
        data["detail"] = row.detail
    data["severity"] = SEVERITY_NAMES[severity(row.action, row.decision)]
    return data


def checkpoint_fields(checkpoint: Checkpoint, signature: bytes) -> dict[str, Any]:
    data = {name: value for name, value in asdict(checkpoint).items() if name in CHECKPOINT_FIELDS}
    data["signature"] = base64.b64encode(signature).decode()
    return data


# --- JSON lines ----------------------------------------------------------------------------


def record_json(row: Any, *, include_detail: bool = False) -> bytes:
    data = {"type": "audit", **record_fields(row, include_detail=include_detail)}
    return json.dumps(data, sort_keys=True, ensure_ascii=True).encode() + b"\n"


def checkpoint_json(checkpoint: Checkpoint, signature: bytes) -> bytes:
    data = {"type": "checkpoint", **checkpoint_fields(checkpoint, signature)}
    return json.dumps(data, sort_keys=True, ensure_ascii=True).encode() + b"\n"


# --- RFC 5424 ------------------------------------------------------------------------------


def sd_escape(value: str) -> str:
    """PARAM-VALUE escaping (RFC 5424 §6.3.3): ``"``, ``\\`` and ``]`` take a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most ``limit`` octets, or "-"."""
    token = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return token or "-"


def _sd_element(sd_id: str, params: list[tuple[str, Any]]) -> str:
    parts = [sd_id]
    for name, value in params:
        if value is None:
            continue
        parts.append(f'{name}="{sd_escape(str(value))}"')
    return "[" + " ".join(parts) + "]"


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Rfc5424:
    """Builds the messages of one sender (facility, host name, SD-ID's enterprise number)."""

    def __init__(self, *, facility: int, hostname: str, enterprise_number: int) -> None:
        self.facility = facility
        self.hostname = _header_token(hostname, 255)
        self.record_sd_id = f"hv@{enterprise_number}"
        self.checkpoint_sd_id = f"hvcp@{enterprise_number}"

    def _header(self, level: int, at: datetime, msgid: str) -> str:
        pri = self.facility * 8 + level
        return f"<{pri}>1 {_timestamp(at)} {self.hostname} {APP_NAME} - {msgid}"

    def record(self, row: Any) -> bytes:
        ids = [str(rid) for rid in row.resource_ids]
        params: list[tuple[str, Any]] = [
            ("seq", row.seq),
            ("id", row.id),
            ("row_hash", row.row_hash),
            ("prev_hash", row.prev_hash),
            ("action", row.action),
            ("decision", row.decision),
            ("surface", row.surface),
            ("actor", row.actor_name),
            ("actor_id", row.actor_id),
            ("actor_org", row.actor_organisation_id),
            ("clearance", row.actor_clearance),
            ("resource_type", row.resource_type),
            ("resource_count", len(ids)),
            ("resource_ids", ",".join(ids[:MAX_SYSLOG_IDS])),
            ("resource_ids_truncated", "true" if len(ids) > MAX_SYSLOG_IDS else None),
            ("labels", ",".join(row.labels)),
            ("request_id", row.request_id),
            ("src", row.client_address),
        ]
        level = severity(row.action, row.decision)
        head = self._header(level, row.at, RECORD_MSGID)
        text = f"{row.actor_name} {row.action} {row.decision}"
        if row.resource_type:
            text += f" {row.resource_type} ({len(ids)})"
        message = f"{head} {_sd_element(self.record_sd_id, params)} {BOM}{text}"
        return message.encode("utf-8")

    def checkpoint(self, checkpoint: Checkpoint, signature: bytes) -> bytes:
        fields = checkpoint_fields(checkpoint, signature)
        params = [(name, fields[name]) for name in (*CHECKPOINT_FIELDS, "signature")]
        params.insert(4, ("tree_size", checkpoint.count))
        created = datetime.fromisoformat(checkpoint.created_at)
        head = self._header(NOTICE, created, CHECKPOINT_MSGID)
        text = f"audit checkpoint {checkpoint.first_seq}..{checkpoint.last_seq} signed"
        message = f"{head} {_sd_element(self.checkpoint_sd_id, params)} {BOM}{text}"
        return message.encode("utf-8")


def octet_frame(message: bytes) -> bytes:
    """RFC 6587 §3.4.1 / RFC 5425 §4.3: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode() + b" " + message
