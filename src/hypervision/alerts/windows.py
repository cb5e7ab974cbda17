"""Sliding windows per rule and subject, kept in memory and rebuilt from the trail when the
evaluator starts or falls out of step (docs/adr/0040)."""

from __future__ import annotations

import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypervision.alerts.models import AlertRule


@dataclass(slots=True)
class Entry:
    at: datetime
    seq: int
    id: uuid.UUID
    items: tuple[str, ...]
    weight: int


@dataclass(slots=True)
class Window:
    """The records one subject added to one rule in the last ``minutes``: the count of
    distinct items (bulk reads) or the sum of weights (the other counted kinds)."""

    minutes: int
    distinct: bool
    entries: deque[Entry] = field(default_factory=deque)
    items: Counter[str] = field(default_factory=Counter)
    total: int = 0
    fired: bool = False  # crossed its threshold: later records join the alert one by one

    def add(self, entry: Entry) -> None:
        self.expire(entry.at)
        self.entries.append(entry)
        self.total += entry.weight
        if self.distinct:
            self.items.update(entry.items)

    def expire(self, now: datetime) -> None:
        edge = now - timedelta(minutes=self.minutes)
        while self.entries and self.entries[0].at < edge:
            old = self.entries.popleft()
            self.total -= old.weight
            if self.distinct:
                self.items.subtract(old.items)
                for item in old.items:
                    if self.items[item] <= 0:
                        del self.items[item]
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
