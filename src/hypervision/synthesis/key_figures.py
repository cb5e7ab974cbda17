"""Key figures of a synthesis: computed from the entries it holds, never from anything else (a
count of what a reader may not read is itself information)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from hypervision.logbook.models import Entry, Severity, Status


def of(entries: Sequence[Entry], since: datetime | None) -> dict[str, Any]:
    """Counts by category, severity and state, and the critical entries recorded since
    ``since`` (id and title)."""
    critical = [
        {"id": str(e.id), "title": e.title}
        for e in entries
        if e.severity == Severity.CRITICAL.value and (since is None or e.recorded_at >= since)
    ]
    return {
        "total": len(entries),
        "by_category": dict(Counter(e.category for e in entries).most_common()),
        "by_severity": {
            s.value: sum(1 for e in entries if e.severity == s.value) for s in Severity
        },
        "open": sum(1 for e in entries if e.status != Status.CLOSED.value),
        "closed": sum(1 for e in entries if e.status == Status.CLOSED.value),
        "new_critical": critical,
    }


def window(scope: dict[str, Any], now: datetime) -> tuple[datetime | None, datetime | None]:
    """The time window of a scope: ``since`` (or the last ``hours`` before ``until`` or
    ``now``) and ``until``."""
    until = datetime.fromisoformat(scope["until"]) if scope.get("until") else None
    since = datetime.fromisoformat(scope["since"]) if scope.get("since") else None
    if since is None and scope.get("hours"):
        since = (until or now) - timedelta(hours=int(scope["hours"]))
    return since, until
