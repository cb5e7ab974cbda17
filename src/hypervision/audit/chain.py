"""The hash chain of the audit trail: ``row_hash = SHA-256(prev_hash || canonical(row))``."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

HASHED_FIELDS = (
    "seq",
    "id",
    "at",
    "actor_id",
    "actor_name",
    "actor_organisation_id",
    "actor_clearance",
    "action",
    "surface",
    "decision",
    "resource_type",
    "resource_ids",
    "labels",
    "detail",
    "request_id",
    "client_address",
)


def canonical(record: Any) -> bytes:
    """Deterministic JSON of the hashed fields: sorted keys, no spaces, UTF-8, ISO times."""
    values: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = getattr(record, name)
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat(timespec="microseconds")
        values[name] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, record: Any) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(record)).hexdigest()
