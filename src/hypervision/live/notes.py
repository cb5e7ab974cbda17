"""Notes between replicas (``Hub.note``: an import's progress, docs/adr/0029): what both buses
use to carry them — each note stamped with its replica's origin, which skips its own."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Protocol


class NoteTaker(Protocol):
    def hand_note(self, note: dict[str, Any]) -> None: ...


NOTES_CHANNEL = "hv_notes"  # PostgreSQL's channel; NATS uses <subject>.notes
NOTE_MAX_BYTES = 4000  # well under NOTIFY's 8,000-byte payload


class Notes:
    """Notes between replicas: stamped with this process's origin, which skips its own."""

    def __init__(self, hub: NoteTaker) -> None:
        self.hub = hub
        self.origin = uuid.uuid4().hex
        self.tasks: set[asyncio.Task[None]] = set()

    def encode(self, note: dict[str, Any]) -> str | None:
        text = json.dumps({**note, "origin": self.origin}, separators=(",", ":"))
        return text if len(text.encode()) <= NOTE_MAX_BYTES else None

    def received(self, text: str | bytes) -> None:
        try:
            note = json.loads(text)
        except ValueError:
            return
        if isinstance(note, dict) and note.get("origin") != self.origin:
            self.hub.hand_note(note)

    def send(self, work: Any) -> None:
        """Run ``work`` (a coroutine) without waiting: a note never delays its sender."""
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
