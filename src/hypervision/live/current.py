"""The labels that records named by live events have *now*, for replays and references.

An outbox event carries the label its record had when it was written. A stream resuming from
an old event id must not replay the events of a record whose label has since been raised past
its reader, and an event naming another record (an entry's situation) must not show that id
to a reader who may not see it (SECURITY.md item 32). How to read a record's current labels
comes from the registry of protected kinds (``records.registry``), which the application
hands to the hub as a ``LabelSource`` (``live`` sits beneath the domains and imports none).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.events.models import OutboxEvent
from hypervision.policy.labels import Label
from hypervision.policy.rules import Subject, can_see

# Payload fields that name another protected record, and the kind of record they name.
REFERENCES: dict[str, str] = {"situation_id": "situation"}

Labels = dict[tuple[str, uuid.UUID], list[Label]]


class LabelSource(Protocol):
    """Reads the current labels of records of one kind (``records.registry.Registry``)."""

    async def current_labels(
        self, session: AsyncSession, name: str, ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, list[Label]]: ...


def referenced(event: OutboxEvent) -> Iterable[tuple[str, str, uuid.UUID]]:
    """(payload field, kind, id) of each record the event names besides its own."""
    for name, kind in REFERENCES.items():
        value = event.payload.get(name)
        if value:
            try:
                yield name, kind, uuid.UUID(str(value))
            except ValueError:
                continue


async def current_labels(
    session: AsyncSession, events: Iterable[OutboxEvent], *, own: bool, source: LabelSource
) -> Labels:
    """Current labels of the records the events name (and of their own records when ``own``);
    one query per kind of record. Run in the system context."""
    wanted: dict[str, set[uuid.UUID]] = {}
    for event in events:
        if own:
            wanted.setdefault(event.resource_type, set()).add(event.resource_id)
        for _, kind, target in referenced(event):
            wanted.setdefault(kind, set()).add(target)
    found: Labels = {}
    for kind, ids in wanted.items():
        for rid, labels in (await source.current_labels(session, kind, ids)).items():
            found[(kind, rid)] = labels
    return found


def sees(subject: Subject, labels: Labels, kind: str, rid: uuid.UUID) -> bool:
    """Whether ``subject`` may see that record now (fails closed when it is unknown)."""
    now = labels.get((kind, rid))
    return now is not None and all(can_see(subject, label) for label in now)


def hidden_fields(subject: Subject, event: OutboxEvent, labels: Labels) -> tuple[str, ...]:
    """The payload fields naming records ``subject`` may not see: sent as null."""
    return tuple(
        name for name, kind, target in referenced(event) if not sees(subject, labels, kind, target)
    )
