"""What an exporter knows of its sink: the state /metrics and /readyz show, and the replay
window that says where to resume when a connection breaks (docs/adr/0037)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SinkState:
    """What /metrics and /readyz show of one sink's export in this process."""

    sink: str
    sent: int = 0  # messages sent by this process (replays included)
    replayed: int = 0  # of which sent again after a broken connection
    failures: int = 0  # all failures of this process
    consecutive: int = 0
    failing: bool = False  # consecutive failures reached the threshold
    leader: bool = False  # this process holds the lease
    cursor: int = 0  # the last record sent
    saved: int = 0  # the last record sent as the persisted cursor says
    head: int = 0  # the last sequenced record seen
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        state = "failing" if self.failing else ("exporting" if self.leader else "standby")
        return {
            "state": state,
            "cursor": self.cursor,
            "behind": max(0, self.head - self.cursor),
            "consecutive_failures": self.consecutive,
            "last_error": self.last_error,
        }


@dataclass
class Window:
    """What was sent on the current connection, trimmed to the sink's replay bytes: where to
    resume if the connection breaks now. ``base``: the resume points read from the cursor
    when the connection opened (nothing sent on it yet)."""

    limit: int
    base: dict[str, int]
    entries: deque[tuple[str, int, int]] = field(default_factory=deque)  # kind, resume, bytes
    last: dict[str, int] = field(default_factory=dict)  # the last sent, per kind
    size: int = 0

    def add(self, kind: str, resume: int, sent: int, size: int) -> None:
        self.last[kind] = sent
        if self.limit == 0:
            return
        self.entries.append((kind, resume, size))
        self.size += size
        while self.entries and self.size - self.entries[0][2] >= self.limit:
            self.size -= self.entries.popleft()[2]

    def resume(self, kind: str) -> int:
        """The oldest ``kind`` still in the window; else the last sent (all of it is older
        than the window); else the cursor's (nothing sent on this connection yet)."""
        first = next((resume for k, resume, _ in self.entries if k == kind), None)
        if first is not None:
            return first
        return self.last.get(kind, self.base.get(kind, 0))
