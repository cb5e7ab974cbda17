"""Making a release (ADR 0035): the product's current rows read as the public principal (its
label, its stewards' row and column rules, compiled for that principal), the publication's
filter and columns, or its aggregation with small-count suppression, written once into
``opendata_rows`` with the row count and the SHA-256 of the CSV distribution. Rows are read
and written in batches by row number: a large product is never held in memory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.errors import Invalid
from hypervision.opendata import formats, suppression
from hypervision.opendata.models import Publication, Release, ReleaseRow
from hypervision.opendata.public_principal import public_context, public_principal
from hypervision.products import service as products
from hypervision.products.models import DataProduct

BATCH = 5000
MAX_GROUPS = 100_000


def plain(kind: str, value: Any) -> Any:
    """A stored value as JSON (dates ISO 8601, geometries as objects)."""
    if value is None:
        return None
    if kind == "geometry":
        return json.loads(value) if isinstance(value, str) else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _coordinates(value: Any) -> list[tuple[float, float]]:
    if (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(v, int | float) for v in value[:2])
    ):
        return [(float(value[0]), float(value[1]))]
    if isinstance(value, list):
        return [c for part in value for c in _coordinates(part)]
    return []


class _Coverage:
    """Temporal coverage (first date or date-time field) and bounding box (first geometry)."""

    def __init__(self, fields: Sequence[Mapping[str, str]]) -> None:
        self.when = next((f["name"] for f in fields if f["type"] in ("date", "datetime")), None)
        self.where = formats.geometry_field(fields)
        self.low: str | None = None
        self.high: str | None = None
        self.box: list[float] | None = None

    def add(self, row: Mapping[str, Any]) -> None:
        if self.when is not None and (value := row.get(self.when)) is not None:
            self.low = value if self.low is None or value < self.low else self.low
            self.high = value if self.high is None or value > self.high else self.high
        if self.where is not None and isinstance(geometry := row.get(self.where), dict):
            points = _coordinates(geometry.get("coordinates"))
            if points:
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                box = [min(xs), min(ys), max(xs), max(ys)]
                if self.box is not None:
                    box = [
                        min(box[0], self.box[0]),
                        min(box[1], self.box[1]),
                        max(box[2], self.box[2]),
                        max(box[3], self.box[3]),
                    ]
                self.box = box


class _Writer:
    def __init__(
        self, session: AsyncSession, release: Release, fields: Sequence[Mapping[str, str]]
    ) -> None:
        self.session = session
        self.release = release
        self.names = [f["name"] for f in fields]
        self.digest = hashlib.sha256(formats.csv_lines(self.names, (), header=True))
        self.count = 0
        self.coverage = _Coverage(fields)

    async def add(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        self.digest.update(formats.csv_lines(self.names, rows, header=False))
        values = []
        for row in rows:
            self.count += 1
            self.coverage.add(row)
            values.append(
                {
                    "release_id": self.release.id,
                    "n": self.count,
                    "product_id": self.release.product_id,
                    "data": row,
                }
            )
        await self.session.execute(insert(ReleaseRow), values)


def parse_measure(raw: str) -> tuple[str, str | None]:
    fn, name = products.parse_measure(raw)
    if fn not in ("count", "sum"):
        raise Invalid(
            "Une publication agrégée compte (count) ou somme (sum:champ), sans plus.",
            "An aggregated publication counts (count) or sums (sum:field), nothing else.",
            extra={"fields": [{"field": "aggregation.measures", "message": "invalid"}]},
        )
    return fn, name


def measure_name(fn: str, name: str | None) -> str:
    return "count" if name is None else f"{fn}_{name}"


def release_fields(publication: Publication, types: Mapping[str, str]) -> list[dict[str, str]]:
    """The Table Schema fields (name, type) of the publication's releases."""
    agg = publication.aggregation
    if not agg:
        return [{"name": c, "type": types[c]} for c in publication.columns]
    fields = [{"name": g, "type": types[g]} for g in agg["group_by"]]
    for raw in agg["measures"]:
        fn, name = parse_measure(raw)
        kind = "integer" if name is None else types[name]
        fields.append({"name": measure_name(fn, name), "type": kind})
    fields.append({"name": suppression.FLAG, "type": "boolean"})
    return fields


async def make_release(
    *,
    session: AsyncSession,
    settings: Settings,
    publication: Publication,
    product: DataProduct,
    created_by: Any,
    trigger: str,
) -> Release:
    """Release ``publication.release_count + 1``, written once. The caller has checked that
    the product is publishable (``service.check_publishable``) in this transaction."""
    public = public_principal(settings)
    release = Release(
        publication_id=publication.id,
        product_id=product.id,
        number=publication.release_count + 1,
        created_by=created_by,
        trigger=trigger,
        source_version=product.data_version,
        fields=[],
        row_count=0,
        sha256="",
    )
    async with public_context(session, settings):
        reading = products.reading_for(settings, public, product, session.get_bind().dialect.name)
        fields = release_fields(publication, reading.types)
        release.fields = fields
        session.add(release)
        await session.flush()
        writer = _Writer(session, release, fields)
        where: list[ColumnElement[bool]] = list(reading.where)
        where += [reading.condition(products.parse_condition(c)) for c in publication.conditions]
        if publication.aggregation:
            release.suppressed = await _aggregated(reading, where, publication, writer, session)
        else:
            await _rows(reading, where, publication.columns, writer, session)
    release.row_count = writer.count
    release.sha256 = writer.digest.hexdigest()
    cover = writer.coverage
    low, high = cover.low, cover.high
    release.temporal = [low, high] if low is not None and high is not None else None
    release.bbox = cover.box
    publication.release_count = release.number
    await session.flush()
    return release


async def _rows(
    reading: Any,
    where: list[ColumnElement[bool]],
    columns: Sequence[str],
    writer: _Writer,
    session: AsyncSession,
) -> None:
    table = reading.table
    selected = [reading.column(c, "columns") for c in columns]
    types = [reading.types[c] for c in columns]
    last = 0
    while True:
        query = (
            select(table.c._row, *selected)
            .where(*where, table.c._row > last)
            .order_by(table.c._row)
            .limit(BATCH)
        )
        found = (await session.execute(query)).all()
        if not found:
            return
        await writer.add(
            [{c: plain(k, v) for c, k, v in zip(columns, types, r[1:], strict=True)} for r in found]
        )
        last = int(found[-1][0])


async def _aggregated(
    reading: Any,
    where: list[ColumnElement[bool]],
    publication: Publication,
    writer: _Writer,
    session: AsyncSession,
) -> int:
    agg = publication.aggregation
    assert agg is not None
    group_by: list[str] = list(agg["group_by"])
    groups = [reading.column(g, "group_by") for g in group_by]
    measures: list[Any] = []
    names: list[str] = []
    for raw in agg["measures"]:
        fn, name = parse_measure(raw)
        names.append(measure_name(fn, name))
        measures.append(func.count() if name is None else func.sum(reading.column(name, "sum")))
    if "count" not in names:
        names.append("count")
        measures.append(func.count())
    query = select(*groups, *measures).where(*where).group_by(*groups).order_by(*groups)
    found = (await session.execute(query.limit(MAX_GROUPS + 1))).all()
    if len(found) > MAX_GROUPS:
        raise Invalid(
            f"Plus de {MAX_GROUPS} groupes : regroupez par moins de champs.",
            f"More than {MAX_GROUPS} groups: group by fewer fields.",
        )
    kinds = [reading.types[g] for g in group_by]
    rows = [
        {
            **{g: plain(k, v) for g, k, v in zip(group_by, kinds, r[: len(groups)], strict=True)},
            **{n: plain("number", v) for n, v in zip(names, r[len(groups) :], strict=True)},
        }
        for r in found
    ]
    threshold = int(agg.get("threshold", suppression.DEFAULT_THRESHOLD))
    shown = [n for n in names if n != "count" or "count" in _asked(agg)]
    cells, hidden = suppression.suppress(rows, group_by, names, threshold)
    cells = [
        {k: v for k, v in cell.items() if k in (*group_by, *shown, suppression.FLAG)}
        for cell in cells
    ]
    for start in range(0, len(cells), BATCH):
        await writer.add(cells[start : start + BATCH])
    return hidden


def _asked(agg: Mapping[str, Any]) -> list[str]:
    return [measure_name(*parse_measure(raw)) for raw in agg["measures"]]
