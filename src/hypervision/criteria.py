"""Criteria on records, each compiled twice: to a SQL condition for lists, and to a Python test
for one record in hand (an entry arriving live, a search hit, a live event's summary). The same
pattern as the visibility policy's clauses (ADR 0004), for what a reader asks rather than what
they may see; a differential test keeps the two compilations equal (ADR 0016).

Nothing here knows a domain: a criterion names the attributes it reads, the same on the mapped
class (a column) and on the record (an attribute). A domain's query specification (e.g.
``logbook.query.EntryQuery``) turns its fields into a list of criteria. This module moves as is
to ``records/criteria.py`` once the records core exists (one import line per user changes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB

from hypervision.policy.rules import Subject, visible_filter

Box = tuple[float, float, float, float]  # west, south, east, north (WGS 84 degrees)


@dataclass(frozen=True)
class Context:
    """What compiling needs beyond the criteria. SQL: the engine's ``dialect`` and the reader's
    ``subject`` (references are kept only to records the reader may see). Python: ``shown``,
    per referencing attribute, the referenced ids the reader may see (computed by the caller:
    one SQL query, or ``can_see`` on records in hand)."""

    dialect: str = ""
    subject: Subject | None = None
    shown: Mapping[str, frozenset[uuid.UUID]] = field(default_factory=dict)


class Criterion(Protocol):
    """One condition. ``exact`` False: SQL only narrows (never drops a record that ``test``
    accepts) and ``test`` must still run on what SQL returned."""

    @property
    def exact(self) -> bool: ...

    def sql(self, model: Any, ctx: Context) -> ColumnElement[bool]: ...

    def test(self, record: Any, ctx: Context) -> bool: ...


@dataclass(frozen=True)
class OneOf:
    """The attribute equals one of ``values``."""

    name: str
    values: tuple[Any, ...]
    exact: bool = True

    def sql(self, model: Any, ctx: Context) -> ColumnElement[bool]:
        return getattr(model, self.name).in_(self.values)  # type: ignore[no-any-return]

    def test(self, record: Any, ctx: Context) -> bool:
        return getattr(record, self.name) in self.values


@dataclass(frozen=True)
class AtOrAfter:
    """A time attribute at ``moment`` or later (aware datetimes, compared as instants)."""

    name: str
    moment: datetime
    exact: bool = True

    def sql(self, model: Any, ctx: Context) -> ColumnElement[bool]:
        return getattr(model, self.name) >= self.moment  # type: ignore[no-any-return]

    def test(self, record: Any, ctx: Context) -> bool:
        value = getattr(record, self.name)
        return value is not None and bool(value >= self.moment)


@dataclass(frozen=True)
class Before:
    """A time attribute strictly before ``moment``."""

    name: str
    moment: datetime
    exact: bool = True

    def sql(self, model: Any, ctx: Context) -> ColumnElement[bool]:
        return getattr(model, self.name) < self.moment  # type: ignore[no-any-return]

    def test(self, record: Any, ctx: Context) -> bool:
        value = getattr(record, self.name)
        return value is not None and bool(value < self.moment)


@dataclass(frozen=True)
class IsNone:
    name: str
    exact: bool = True

    def sql(self, model: Any, ctx: Context) -> ColumnElement[bool]:
        return getattr(model, self.name).is_(None)  # type: ignore[no-any-return]

    def test(self, record: Any, ctx: Context) -> bool:
        return getattr(record, self.name) is None


@dataclass(frozen=True)
class HasAll:
    """A JSON list attribute holds every one of ``values`` (tags)."""

    name: str
    values: tuple[str, ...]
    exact: bool = True

    def sql(self, model: Any, ctx: Context) -> ColumnElement[bool]:
        column = getattr(model, self.name)
        if ctx.dialect == "postgresql":
            return and_(*(column.op("@>")(literal([v], JSONB())) for v in self.values))
        conditions = []
        for value in self.values:
            each = func.json_each(column).table_valued("value")
            conditions.append(
                exists(select(literal(1)).select_from(each).where(each.c.value == value))
            )
        return and_(*conditions)

    def test(self, record: Any, ctx: Context) -> bool:
        held = getattr(record, self.name) or ()
        return all(value in held for value in self.values)


def box_meets(model: Any, box: Box) -> ColumnElement[bool]:
    """SQL: rows whose bounding box (min/max lon/lat columns) meets ``box``."""
    west, south, east, north = box
    return and_(
        model.max_lon >= west,
        model.min_lon <= east,
        model.max_lat >= south,
        model.min_lat <= north,
    )


def box_meets_test(record: Any, box: Box) -> bool:
    """Python: the same test on a record's min/max lon/lat (none: no place, no match)."""
    corners = (record.min_lon, record.min_lat, record.max_lon, record.max_lat)
    if any(c is None for c in corners):
        return False
    min_lon, min_lat, max_lon, max_lat = corners
    west, south, east, north = box
    return bool(max_lon >= west and min_lon <= east and max_lat >= south and min_lat <= north)


@dataclass(frozen=True)
class BoxMeets:
    """The record's bounding box meets ``box`` (border included)."""

    box: Box
    exact: bool = True

    def sql(self, model: Any, ctx: Context) -> ColumnElement[bool]:
        return box_meets(model, self.box)

    def test(self, record: Any, ctx: Context) -> bool:
        return box_meets_test(record, self.box)


class Shape(Protocol):
    """An area ready for exact tests (``core.shapes.Area``)."""

    @property
    def bbox(self) -> Box: ...

    def holds(self, location: dict[str, Any] | None) -> bool: ...


@dataclass(frozen=True)
class Touches:
    """The record's ``location`` touches ``area`` (border included, holes excluded). SQL
    narrows by the area's bounding box; shapely decides, in ``test``."""

    area: Shape
    exact: bool = False

    def sql(self, model: Any, ctx: Context) -> ColumnElement[bool]:
        return box_meets(model, self.area.bbox)

    def test(self, record: Any, ctx: Context) -> bool:
        return self.area.holds(record.location)


@dataclass(frozen=True)
class VisibleRef:
    """The attribute ``name`` references one of ``ids`` among the records of ``target`` that
    the reader may see: a criterion on a hidden record matches nothing, exactly like one on an
    unknown id (SECURITY.md item 32)."""

    name: str
    ids: tuple[uuid.UUID, ...]
    target: Any  # a mapped class with the ``Labelled`` columns and an ``id``
    exact: bool = True

    def sql(self, model: Any, ctx: Context) -> ColumnElement[bool]:
        if ctx.subject is None:
            raise ValueError(f"{self.name}: compiling a reference needs the reader's subject")
        shown = select(self.target.id).where(
            self.target.id.in_(self.ids), visible_filter(ctx.subject, self.target, ctx.dialect)
        )
        return getattr(model, self.name).in_(shown)  # type: ignore[no-any-return]

    def test(self, record: Any, ctx: Context) -> bool:
        if self.name not in ctx.shown:
            raise ValueError(f"{self.name}: testing a reference needs the ids the reader sees")
        value = getattr(record, self.name)
        return value is not None and value in self.ids and value in ctx.shown[self.name]


def where(criteria: Iterable[Criterion], model: Any, ctx: Context) -> list[ColumnElement[bool]]:
    """The SQL conditions (to AND) of ``criteria`` on rows of ``model``."""
    return [c.sql(model, ctx) for c in criteria]


def test(criteria: Iterable[Criterion], record: Any, ctx: Context) -> bool:
    """The Python test of ``criteria`` (all of them) on one record."""
    return all(c.test(record, ctx) for c in criteria)


def residual(criteria: Sequence[Criterion]) -> list[Criterion]:
    """The criteria SQL only narrows: to test on each row the SQL query returned."""
    return [c for c in criteria if not c.exact]
