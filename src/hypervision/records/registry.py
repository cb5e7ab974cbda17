"""The one registry of protected kinds: each kind of protected record is declared here once,
and everything else is derived from it — the tables under row-level security and their
policies (``policy/rls.py``), the version parents, the live topics (``live/hub.py``) and how
the live hub reads a record's current labels (``live/current.py``). The registry test
(tests/records/test_registry.py) fails when a table with label columns is not declared, or
when a declared kind has no RLS, no live-topic decision or no leak-matrix surface.

Each domain declares its kinds next to its models (``logbook/models.py``, ``geo/models.py``,
``synthesis/models.py``); ``hypervision/kinds.py``, above the domains, assembles them into
``KINDS``. Nothing beneath the domains imports that assembly: the live hub receives its
topics and label source from the application (no package imports another back).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.policy.labels import Label
from hypervision.records.labels import Labelled
from hypervision.records.models import Versioned


@dataclass(frozen=True)
class Kind:
    """A kind of protected record.

    ``parent``/``parent_key``: the kind this one belongs to and the column naming it; a
    record is visible only when its parent is (a comment needs its entry). ``live``: whether
    its events are a topic of the live stream (a decision, not a default). ``missing``: what
    a reader is told when it is hidden or missing (French, English).
    """

    name: str
    model: type[Any]
    live: bool
    parent: str | None = None
    parent_key: str | None = None
    missing: tuple[str, str] = ("Introuvable.", "Not found.")

    @property
    def table(self) -> str:
        return str(self.model.__tablename__)

    @property
    def labelled(self) -> bool:
        """Has a label of its own (else only its parent's applies)."""
        return issubclass(self.model, Labelled)

    @property
    def versioned(self) -> bool:
        """Keeps versions (``record_versions``) and may be the subject of a label request."""
        return issubclass(self.model, Versioned)


class Registry:
    def __init__(self, *kinds: Kind) -> None:
        self.kinds: dict[str, Kind] = {}
        for kind in kinds:
            self.declare(kind)

    def declare(self, kind: Kind) -> Kind:
        if kind.name in self.kinds:
            raise ValueError(f"kind {kind.name!r} declared twice")
        if (kind.parent is None) != (kind.parent_key is None):
            raise ValueError(f"kind {kind.name!r}: parent and parent_key go together")
        if kind.parent is not None:
            parent = self.kinds.get(kind.parent)
            if parent is None or parent.parent is not None:
                raise ValueError(f"kind {kind.name!r}: its parent must be declared, top-level")
        elif not kind.labelled:
            raise ValueError(f"kind {kind.name!r}: without a parent it needs a label")
        self.kinds[kind.name] = kind
        return kind

    def __iter__(self) -> Iterator[Kind]:
        return iter(self.kinds.values())

    def __getitem__(self, name: str) -> Kind:
        return self.kinds[name]

    def __contains__(self, name: object) -> bool:
        return name in self.kinds

    def tables(self) -> tuple[str, ...]:
        return tuple(kind.table for kind in self)

    def topics(self) -> frozenset[str]:
        """The live stream's topics: the kinds declared ``live``."""
        return frozenset(kind.name for kind in self if kind.live)

    def version_parents(self) -> dict[str, str]:
        """resource_type -> table, for the versioned kinds (the records a version or a label
        request belongs to)."""
        return {kind.name: kind.table for kind in self if kind.versioned}

    async def current_labels(
        self, session: AsyncSession, name: str, ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, list[Label]]:
        """Every label that must allow a reader for each record to be visible now (a
        comment: its own and its entry's; an attachment: its entry's), by id; a record that
        no longer exists is absent. One query. Run in the system context."""
        kind = self.kinds.get(name)
        if kind is None or not ids:
            return {}
        model = kind.model
        if kind.parent is None:
            rows = await session.scalars(select(model).where(model.id.in_(ids)))
            return {row.id: [row.label] for row in rows}
        assert kind.parent_key is not None
        parent = self.kinds[kind.parent].model
        pairs = await session.execute(
            select(model, parent)
            .join(parent, parent.id == getattr(model, kind.parent_key))
            .where(model.id.in_(ids))
        )
        return {
            row.id: [row.label, above.label] if kind.labelled else [above.label]
            for row, above in pairs.all()
        }
