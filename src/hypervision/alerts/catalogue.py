"""Which audit records each kind of rule looks at, and what it counts (docs/adr/0040).

The mapping from kinds to the ``action`` values that ``audit.service.record`` writes across
the code lives here, in one place; ``observe`` reads one chained record and says whom it is
about and what it adds to that subject's window.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from hypervision.kinds import KINDS

# Records of protected kinds: what reads, refusals and the label rule look at.
PROTECTED_KINDS = frozenset(kind.name for kind in KINDS)
# Reads that deliver protected records (``records.access.delivered`` and the like).
READ_SUFFIXES = (".read", ".list", ".timeline", ".versions", ".rows", ".features", ".lineage")
READ_ACTIONS = frozenset({"search", "search.suggest", "map.entries"})
EXPORT_ACTIONS = frozenset({"product.export"})
SIGN_IN = "auth.sign_in"
RIGHTS_ACTIONS = frozenset({"user.rights_approve", "user.update", "user.set_clearance"})
LABEL_ACTIONS = frozenset({"entry.label_approve"})
VERIFY_ACTION = "audit.verify"
# Refused upstream: at sign-in (``identity.auth.audit_upstream_refusal``) and on a request.
UPSTREAM_ACTIONS = frozenset(
    {"auth.network_refused", "refused:network_refused", "refused:client_certificate_required"}
)
SOC_FAILING = "soc.export_failing"  # ``soc.exporter`` after its threshold of failures
PARIS = ZoneInfo("Europe/Paris")

# kind -> the actions it reads (for the ADR and the rules page)
ACTIONS: dict[str, str] = {
    "bulk_reads": "*.read, *.list, *.timeline, *.versions, *.rows, *.features, *.lineage, "
    "search, search.suggest, map.entries (allowed, protected kinds)",
    "id_probing": "refused:* (denied or not_found, protected kinds)",
    "exports": "product.export (detail.rows)",
    "mfa_failures": "auth.sign_in denied, detail.reason = otp",
    "sign_in_off_hours": "auth.sign_in allowed",
    "sign_in_new_address": "auth.sign_in allowed (client_address)",
    "sign_in_new_country": "auth.sign_in allowed (client_address in the operator's ranges)",
    "network_refused": "auth.network_refused, refused:network_refused, "
    "refused:client_certificate_required (denied)",
    "soc_export_failing": "soc.export_failing",
    "rights_widened": "user.rights_approve, user.update, user.set_clearance "
    "(roles, clearance or groups widened)",
    "label_lowered": "entry.label_approve (labels: from, to)",
    "audit_verify_failed": "audit.verify denied",
}
KINDS_ORDER: tuple[str, ...] = tuple(ACTIONS)
COUNTED = frozenset({"bulk_reads", "id_probing", "exports", "mfa_failures", "network_refused"})


@dataclass(frozen=True, slots=True)
class Rec:
    """A chained audit record, as the evaluator reads it."""

    seq: int
    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    actor_name: str
    action: str
    decision: str
    resource_type: str | None
    resource_ids: list[str]
    labels: list[str]
    detail: dict[str, Any]
    client_address: str | None

    @classmethod
    def of(cls, row: Any) -> Rec:
        return cls(
            seq=int(row.seq),
            id=row.id if isinstance(row.id, uuid.UUID) else uuid.UUID(str(row.id)),
            at=row.at,
            actor_id=row.actor_id,
            actor_name=row.actor_name,
            action=row.action,
            decision=row.decision,
            resource_type=row.resource_type,
            resource_ids=list(row.resource_ids or ()),
            labels=list(row.labels or ()),
            detail=dict(row.detail or {}),
            client_address=row.client_address,
        )


@dataclass(frozen=True, slots=True)
class Observation:
    subject_kind: str  # person, address, record, system
    subject_key: str
    subject_name: str
    items: tuple[str, ...] = ()  # counted distinct (bulk reads)
    weight: int = 1  # added to the window's sum (exports: rows)


@lru_cache(maxsize=4096)
def kinds_for(action: str) -> tuple[str, ...]:
    """The kinds of rule that look at records of this action (most actions: one or none),
    so that a record is only observed by the rules that may count it."""
    kinds: list[str] = []
    if action.endswith(READ_SUFFIXES) or action in READ_ACTIONS:
        kinds.append("bulk_reads")
    if action.startswith("refused:"):
        kinds.append("id_probing")
    if action in UPSTREAM_ACTIONS:
        kinds.append("network_refused")
    if action == SOC_FAILING:
        kinds.append("soc_export_failing")
    if action in EXPORT_ACTIONS:
        kinds.append("exports")
    if action == SIGN_IN:
        kinds += ["mfa_failures", "sign_in_off_hours", "sign_in_new_address", "sign_in_new_country"]
    if action in RIGHTS_ACTIONS:
        kinds.append("rights_widened")
    if action in LABEL_ACTIONS:
        kinds.append("label_lowered")
    if action == VERIFY_ACTION:
        kinds.append("audit_verify_failed")
    return tuple(kinds)


def interesting(action: str) -> bool:
    """Whether any kind of rule may look at records of this action."""
    return bool(kinds_for(action))


def _person(rec: Any) -> Observation | None:
    if rec.actor_id is None:
        return None
    return Observation("person", str(rec.actor_id), rec.actor_name)


def _signed_in_user(rec: Any) -> Observation | None:
    user = rec.resource_ids[0] if rec.resource_ids else None
    if user is None:
        return None
    return Observation("person", user, rec.actor_name)


def _off_hours(at: datetime, start: str, end: str) -> bool:
    local = at.astimezone(PARIS).time()
    begin, finish = time.fromisoformat(start), time.fromisoformat(end)
    inside = begin <= local < finish if begin < finish else (local >= begin or local < finish)
    return not inside


def _widened(detail: dict[str, Any], levels: tuple[str, ...], action: str) -> bool:
    if action == "user.rights_approve":
        before, after = detail.get("from") or {}, detail.get("to") or {}
        changes = {
            key: {"from": before.get(key), "to": after.get(key)}
            for key in ("roles", "clearance", "groups")
        }
    else:
        changes = detail
    for key in ("roles", "groups"):
        change = changes.get(key)
        if isinstance(change, dict) and set(change.get("to") or ()) - set(change.get("from") or ()):
            return True
    change = changes.get("clearance")
    if isinstance(change, dict):
        old, new = change.get("from"), change.get("to")
        if old in levels and new in levels and levels.index(new) > levels.index(old):
            return True
    return False


def observe(
    kind: str, params: dict[str, Any], rec: Any, levels: tuple[str, ...]
) -> Observation | None:
    """What ``rec`` (a ``Rec``, or the record as the sequencer chained it: the same
    attributes) adds to a rule of ``kind`` (None: nothing)."""
    action = rec.action
    if kind == "bulk_reads":
        if (
            rec.decision == "allowed"
            and rec.resource_type in PROTECTED_KINDS
            and (action.endswith(READ_SUFFIXES) or action in READ_ACTIONS)
            and rec.resource_ids
        ):
            if rec.actor_id is None:
                return None
            return Observation("person", str(rec.actor_id), rec.actor_name, tuple(rec.resource_ids))
        return None
    if kind == "id_probing":
        if (
            action.startswith("refused:")
            and rec.decision in ("denied", "not_found")
            and rec.resource_type in PROTECTED_KINDS
        ):
            if params.get("by") == "address":
                if not rec.client_address:
                    return None
                return Observation("address", rec.client_address, rec.client_address)
            return _person(rec)
        return None
    if kind == "exports":
        if action in EXPORT_ACTIONS and rec.decision == "allowed":
            seen = _person(rec)
            rows = rec.detail.get("rows")
            weight = (
                1 if params.get("measure") == "count" else int(rows) if isinstance(rows, int) else 0
            )
            return None if seen is None else _with(seen, weight=weight)
        return None
    if kind == "mfa_failures":
        if action == SIGN_IN and rec.decision == "denied" and rec.detail.get("reason") == "otp":
            return _signed_in_user(rec)
        return None
    if kind == "sign_in_off_hours":
        if (
            action == SIGN_IN
            and rec.decision == "allowed"
            and _off_hours(
                rec.at, str(params.get("start", "07:00")), str(params.get("end", "21:00"))
            )
        ):
            return _signed_in_user(rec)
        return None
    if kind in ("sign_in_new_address", "sign_in_new_country"):
        if action == SIGN_IN and rec.decision == "allowed" and rec.client_address:
            return _signed_in_user(rec)  # the evaluator checks the address or its country
        return None
    if kind == "rights_widened":
        if action in RIGHTS_ACTIONS and rec.resource_ids and _widened(rec.detail, levels, action):
            return Observation("person", rec.resource_ids[0], rec.resource_ids[0])
        return None
    if kind == "label_lowered":
        if action in LABEL_ACTIONS and rec.resource_ids and len(rec.labels) == 2:
            old, new = rec.labels
            if old in levels and new in levels and levels.index(new) < levels.index(old):
                return Observation("record", rec.resource_ids[0], rec.resource_type or "record")
        return None
    if kind == "network_refused":
        if action not in UPSTREAM_ACTIONS or rec.decision == "allowed":
            return None
        if params.get("by", "address") == "address":
            if not rec.client_address:
                return None
            return Observation("address", rec.client_address, rec.client_address)
        if action == "auth.network_refused":  # before there is an actor: the account named
            return _signed_in_user(rec)
        return _person(rec)
    if kind == "soc_export_failing":
        if action == SOC_FAILING:
            sink = str(rec.detail.get("sink") or "soc")
            return Observation("system", f"soc:{sink}"[:100], sink)
        return None
    if kind == "audit_verify_failed":
        if action == VERIFY_ACTION and rec.decision == "denied":
            return Observation("system", "audit", "audit")
        return None
    return None


def _with(seen: Observation, *, items: tuple[str, ...] = (), weight: int = 1) -> Observation:
    return Observation(seen.subject_kind, seen.subject_key, seen.subject_name, items, weight)


# The rules that ship on (installed at first start, docs/adr/0040).
DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {
        "kind": "bulk_reads",
        "name": "Lectures en masse",
        "severity": "high",
        "threshold": 200,
        "window_minutes": 10,
    },
    {
        "kind": "id_probing",
        "name": "Sondage d'identifiants",
        "severity": "high",
        "threshold": 20,
        "window_minutes": 10,
        "by": "person",
    },
    {
        "kind": "exports",
        "name": "Exports volumineux",
        "severity": "medium",
        "threshold": 50_000,
        "window_minutes": 60,
        "measure": "rows",
    },
    {
        "kind": "mfa_failures",
        "name": "Échecs répétés du second facteur",
        "severity": "high",
        "threshold": 5,
        "window_minutes": 15,
    },
    {
        "kind": "sign_in_off_hours",
        "name": "Connexion hors des heures",
        "severity": "low",
        "start": "06:00",
        "end": "23:00",
        "window_minutes": 60,
    },
    {
        "kind": "sign_in_new_address",
        "name": "Connexion depuis une nouvelle adresse",
        "severity": "low",
        "days": 30,
        "window_minutes": 60,
    },
    {
        "kind": "sign_in_new_country",
        "name": "Connexion depuis un nouveau pays",
        "severity": "medium",
        "days": 90,
        "window_minutes": 60,
    },
    {
        "kind": "network_refused",
        "name": "Connexion refusée en amont",
        "severity": "medium",
        "threshold": 0,
        "by": "address",
        "window_minutes": 60,
    },
    {
        "kind": "soc_export_failing",
        "name": "Export vers le SOC en échec",
        "severity": "high",
        "window_minutes": 1440,
        "email": True,
    },
    {
        "kind": "rights_widened",
        "name": "Droits élargis",
        "severity": "medium",
        "window_minutes": 60,
    },
    {
        "kind": "label_lowered",
        "name": "Marquage abaissé",
        "severity": "medium",
        "window_minutes": 60,
    },
    {
        "kind": "audit_verify_failed",
        "name": "Échec de vérification du journal d'audit",
        "severity": "critical",
        "window_minutes": 1440,
        "email": True,
    },
)
