"""Counts of entries for charts and dashboards (ADR 0043): how many entries the reader may
see, grouped by one of their fields and/or by the time bucket of ``occurred_at`` (Paris time).

Counted by the database, under the same policy filter and the same query specification as the
feed (``entries.visible`` + ``EntryQuery``): a reader never counts an entry they may not see.
A zone filter is decided on each candidate's shape (as ``entries._list_narrowed`` does), so
those candidates are counted here, up to ``ZONE_SCAN_LIMIT``, beyond which the count is
refused rather than wrong. Audited in the request's transaction (``entry.aggregate``): the
predicate, the number of groups and of entries counted, their levels; no entry id.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core import buckets
from hypervision.core.errors import Invalid
from hypervision.identity.principal import Principal
from hypervision.logbook.entries import visible
from hypervision.logbook.models import Entry, Severity, Status
from hypervision.logbook.query import EntryQuery
from hypervision.records.access import dialect_of, subject_of

GROUPS: dict[str, Any] = {
    "category": Entry.category,
    "severity": Entry.severity,
    "status": Entry.status,
    "organisation_id": Entry.organisation_id,
}
BUCKETS = ("hour", "day", "week")
BUCKET_KEY = "bucket"
MAX_GROUPS = 5000
ZONE_SCAN_LIMIT = 20_000


@dataclass
class EntryGroups:
    """``groups``: one mapping per group, ``{group_by: value, "bucket": iso, "count": n}``
    (the keys asked only), ordered by bucket then by the field's natural order (severities
    from info to critical, categories as configured); ``levels``: the label levels of the
    entries counted (what a chart of them is derived from)."""

    group_by: str | None
    bucket: str | None
    groups: list[dict[str, Any]]
    total: int
    levels: list[str]


async def aggregate_entries(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    filters: EntryQuery,
    group_by: str | None = None,
    bucket: str | None = None,
    limit: int = 1000,
) -> EntryGroups:
    """Counts of the entries ``actor`` may see that match ``filters``, grouped by
    ``group_by`` (category, severity, status or organisation_id) and/or ``bucket`` (hour, day
    or week of occurred_at). More than ``limit`` groups (at most MAX_GROUPS) is a 422."""
    _check(group_by, bucket)
    limit = max(1, min(limit, MAX_GROUPS))
    base = filters.apply(
        visible(session, settings, actor),
        subject=subject_of(settings, actor),
        dialect=dialect_of(session),
    )
    if filters.exact:
        counted = await _counted_in_sql(session, base, group_by, bucket, limit, settings)
    else:
        counted = await _counted_in_zone(session, base, filters, group_by, bucket)
    groups = _ordered(counted, group_by, bucket, settings)
    if len(groups) > limit:
        raise _too_many(limit)
    levels = sorted({level for (_, _, level) in counted}, key=_level_rank(settings))
    total = sum(counted.values())
    await audit.record(
        session=session,
        actor=actor,
        action="entry.aggregate",
        resource_type="entry",
        resource_ids=[],
        labels=levels,
        detail={
            "predicate": _fingerprint(filters),
            "group_by": group_by,
            "bucket": bucket,
            "groups": len(groups),
            "entries": total,
        },
    )
    return EntryGroups(group_by, bucket, groups, total, levels)


def _check(group_by: str | None, bucket: str | None) -> None:
    if group_by is not None and group_by not in GROUPS:
        allowed = ", ".join(GROUPS)
        raise Invalid(
            f"Regroupement « {group_by[:40]} » inconnu (possibles : {allowed}).",
            f"Unknown grouping {group_by[:40]!r} (allowed: {allowed}).",
            extra={"fields": [{"field": "group_by", "message": f"one of {allowed}"}]},
        )
    if bucket is not None and bucket not in BUCKETS:
        allowed = ", ".join(BUCKETS)
        raise Invalid(
            f"Intervalle « {bucket[:20]} » inconnu pour occurred_at (possibles : {allowed}).",
            f"Unknown bucket {bucket[:20]!r} for occurred_at (allowed: {allowed}).",
            extra={"fields": [{"field": "bucket", "message": f"one of {allowed}"}]},
        )


Key = tuple[str | None, str | None, str]  # (group value, bucket, label level)


async def _counted_in_sql(
    session: AsyncSession,
    base: Any,
    group_by: str | None,
    bucket: str | None,
    limit: int,
    settings: Settings,
) -> Counter[Key]:
    keys: list[Any] = []
    if group_by is not None:
        keys.append(GROUPS[group_by])
    if bucket is not None:
        keys.append(buckets.expression(Entry.occurred_at, bucket, dialect_of(session)))
    keys.append(Entry.label_level)
    cap = limit * len(settings.label_levels) + 1
    query = base.with_only_columns(*keys, func.count(Entry.id)).group_by(*keys).limit(cap)
    found = (await session.execute(query)).all()
    if len(found) >= cap:
        raise _too_many(limit)
    counted: Counter[Key] = Counter()
    for row in found:
        values = list(row)
        group = _text(values.pop(0)) if group_by is not None else None
        moment = buckets.label(values.pop(0)) if bucket is not None else None
        counted[(group, moment, str(values[0]))] += int(values[1])
    return counted


async def _counted_in_zone(
    session: AsyncSession,
    base: Any,
    filters: EntryQuery,
    group_by: str | None,
    bucket: str | None,
) -> Counter[Key]:
    """SQL narrows to the zone's bounding box; each candidate's shape decides."""
    column = GROUPS[group_by] if group_by is not None else Entry.category
    query = base.with_only_columns(
        Entry.location, Entry.occurred_at, Entry.label_level, column.label("grouped")
    ).limit(ZONE_SCAN_LIMIT + 1)
    candidates = (await session.execute(query)).all()
    if len(candidates) > ZONE_SCAN_LIMIT:
        raise Invalid(
            f"Trop d'entrées autour de la zone pour les compter exactement (plus de "
            f"{ZONE_SCAN_LIMIT}) : réduisez la période (since, until).",
            f"Too many entries around the zone to count them exactly (over "
            f"{ZONE_SCAN_LIMIT}): narrow the period (since, until).",
            extra={"fields": [{"field": "zone", "message": "too many candidates"}]},
        )
    counted: Counter[Key] = Counter()
    for row in candidates:
        if not filters.residual(row):
            continue
        group = _text(row.grouped) if group_by is not None else None
        moment = buckets.of_moment(row.occurred_at, bucket) if bucket is not None else None
        counted[(group, moment, row.label_level)] += 1
    return counted


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _ordered(
    counted: Counter[Key], group_by: str | None, bucket: str | None, settings: Settings
) -> list[dict[str, Any]]:
    merged: Counter[tuple[str | None, str | None]] = Counter()
    for (group, moment, _), n in counted.items():
        merged[(group, moment)] += n
    if not merged and group_by is None and bucket is None:
        merged[(None, None)] = 0
    rank = _natural_order(group_by, settings)
    result = []
    for group, moment in sorted(merged, key=lambda k: (k[1] or "", rank(k[0]))):
        row: dict[str, Any] = {}
        if group_by is not None:
            row[group_by] = group
        if bucket is not None:
            row[BUCKET_KEY] = moment
        row["count"] = merged[(group, moment)]
        result.append(row)
    return result


def _natural_order(group_by: str | None, settings: Settings) -> Any:
    known: list[str] = {
        "severity": [s.value for s in Severity],
        "status": [s.value for s in Status],
        "category": list(settings.categories),
    }.get(group_by or "", [])

    def rank(value: str | None) -> tuple[int, str]:
        return (known.index(value) if value in known else len(known), value or "")

    return rank


def _level_rank(settings: Settings) -> Any:
    order = list(settings.label_levels)
    return lambda level: (order.index(level) if level in order else len(order), level)


def _too_many(limit: int) -> Invalid:
    return Invalid(
        f"Trop de groupes (plus de {limit}) : choisissez un intervalle plus large ou "
        "réduisez la période.",
        f"Too many groups (over {limit}): choose a wider bucket or narrow the period.",
        extra={"fields": [{"field": "bucket", "message": "too many groups"}]},
    )


def _fingerprint(filters: EntryQuery) -> str:
    """The filters as a short hash (a zone by its shape's text)."""
    described: dict[str, Any] = {}
    for spec in fields(filters):
        value = getattr(filters, spec.name)
        if value in (None, (), False):
            continue
        described[spec.name] = value.geometry.wkt if spec.name == "area" else value
    body = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]
