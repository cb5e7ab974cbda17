"""What a live stream writes: SSE frames, each with its place in the stream's order."""

from __future__ import annotations

from dataclasses import dataclass

# (transaction id, outbox id) for events; (seq, 0) for the audit topic: the order in which
# frames are delivered and resumed.
Position = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Frame:
    at: Position | None  # None: a status frame or a ping, sent whatever the stream's position
    data: bytes  # the SSE frame, encoded once for every stream it goes to
