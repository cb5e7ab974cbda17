"""Sliding windows per rule and subject, kept in memory and rebuilt from the trail when the
evaluator starts or falls out of step (docs/adr/0040)."""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypervision.alerts.models import AlertRule


@dataclass(slots=True)
class Entry:
    at: datetime
    seq: int
    id: uuid.UUID
    items: tuple[str, ...] | list[str]
    weight: int


@dataclass(slots=True)
class Window:
    """The records one subject added to one rule in the last ``minutes``: the count of
    distinct items (bulk reads) or the sum of weights (the other counted kinds)."""

    minutes: int
    distinct: bool
    entries: deque[Entry] = field(default_factory=deque)
    items: dict[str, int] = field(default_factory=dict)
    total: int = 0
    fired: bool = False  # crossed its threshold: later records join the alert one by one

    def add(self, entry: Entry) -> None:
        self.expire(entry.at)
        self.entries.append(entry)
        self.total += entry.weight
        if self.distinct:  # a plain dict: Counter.update's isinstance checks cost more
            counts = self.items
            for item in entry.items:
                counts[item] = counts.get(item, 0) + 1

    def expire(self, now: datetime) -> None:
        if not self.entries or self.entries[0].at >= now - timedelta(minutes=self.minutes):
            return
        edge = now - timedelta(minutes=self.minutes)
        while self.entries and self.entries[0].at < edge:
            old = self.entries.popleft()
            self.total -= old.weight
            if self.distinct:
                counts = self.items
                for item in old.items:
                    left = counts[item] - 1
                    if left:
                        counts[item] = left
                    else:
                        del counts[item]
        if not self.entries:
            self.fired = False

    @property
    def measure(self) -> int:
        return len(self.items) if self.distinct else self.total


@dataclass(slots=True)
class Firing:
    rule: AlertRule
    subject_kind: str
    subject_key: str
    subject_name: str
    records: list[tuple[int, uuid.UUID]] = field(default_factory=list)
    first_at: datetime | None = None
    last_at: datetime | None = None
    measure: int = 0

    def cite(self, at: datetime, seq: int, rid: uuid.UUID) -> None:
        self.records.append((seq, rid))
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)


@dataclass(frozen=True, slots=True)
class RuleView:
    """A rule as the evaluator's loop reads it, once per pass."""

    model: AlertRule
    id: uuid.UUID
    kind: str
    params: dict[str, Any]
    threshold: int
    minutes: int

    @classmethod
    def of(cls, rule: AlertRule) -> RuleView:
        params = dict(rule.params)
        return cls(
            rule,
            rule.id,
            rule.kind,
            params,
            int(params.get("threshold", 1)),
            int(params.get("window_minutes", 15)),
        )
