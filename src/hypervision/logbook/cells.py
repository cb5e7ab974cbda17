"""Map cells: counts of located entries per grid cell and label signature, kept in the write
transaction of every entry change, so that a wide map view sums a few thousand rows of counts
instead of reading every entry in view (issue 15; ADR 0020).

Grid. A cell at zoom z is a square of ``cell_degrees(z)`` = 90 / 2**z degrees (64 screen
pixels), indexed by floor(coordinate / cell) of the entry's centre (the centre of its bounding
box): the cluster grid of the per-entry path (``mapdata``). The cells of zoom z nest in those
of zoom z - 1, so a grid stored at zoom g answers every zoom z <= g: index at z = floor(index
at g / 2**(g - z)), bit for bit what the per-entry path computes (a division by a power of two
is exact in floating point). ``GRIDS`` are the zooms stored (zooms under the first read the
first); views above ``CELLS_MAX_ZOOM`` take the per-entry path.

Signature. A row of ``map_signatures``: the label columns the policy reads (level,
need-to-know, audience, owner organisation), its id derived from them. A cell row counts the
entries of one signature, by severity × status (the map's two enumerated filters), with the
sums of their centres. The owner being part of the signature, the organisation filter is
answered too; any other filter takes the per-entry path (``covers``).

Reading. The signatures the reader may see are selected through the policy's own SQL filter
(``visible_filter`` on ``map_signatures``: evaluated once per distinct signature), and only
their counts are summed: a cell never counts an entry the reader may not see. On PostgreSQL,
row-level security restates it (``map_signatures`` has the visibility rule, ``map_cells`` is
visible with its signature; migration 0011).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.core.shapes import bounds
from hypervision.logbook.models import Entry, MapCell, MapSignature, Severity, Status
from hypervision.logbook.query import EntryQuery
from hypervision.policy.rules import Subject, visible_filter
from hypervision.records import versions
from hypervision.records.versions import snapshot

CELL_PX = 64  # a cluster gathers what falls in a square of this many screen pixels
GRID_MAX = 64  # at most 64 × 64 cells across the view, whatever the zoom asked
GRIDS = (6, 7, 8, 9, 10, 11, 12, 13, 14)  # the zooms whose grid is stored
CELLS_MAX_ZOOM = GRIDS[-1]  # finer views: the per-entry path
SEVERITIES = tuple(s.value for s in Severity)  # lowest first
STATUSES = tuple(s.value for s in Status)
PAIRS = {(sev, st): f"n_{sev}_{st}" for sev in SEVERITIES for st in STATUSES}
COUNTS = ("n", *PAIRS.values(), "sum_lon", "sum_lat")
SIGNATURE_NAMESPACE = uuid.UUID("6f1d2c3e-9a41-4c5e-8b0f-2d7c1e5a9b34")

Key = tuple[int, int, int, uuid.UUID]  # grid, gx, gy, signature


def cell_degrees(zoom: int) -> float:
    """The side of a cell at ``zoom``: 64 pixels of a 256-pixel tile (90 / 2**zoom degrees)."""
    return 360.0 / float(2**zoom) / 256.0 * CELL_PX


def grid_zoom(zoom: int, view: tuple[float, float, float, float] | None) -> int:
    """The zoom whose cells cluster ``view`` asked at ``zoom``: ``zoom`` itself, or a coarser
    one when the view would be more than GRID_MAX cells across (a wide view asked at street
    zoom stays a bounded answer)."""
    if view is None:
        return zoom
    west, south, east, north = view
    while zoom > 0 and max(east - west, north - south) / cell_degrees(zoom) > GRID_MAX:
        zoom -= 1
    return zoom


# --- signatures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """The label columns the policy reads, in a canonical form (sets sorted)."""

    level: str
    need_to_know: tuple[str, ...]
    audience: tuple[str, ...]
    owner: uuid.UUID

    @classmethod
    def of(cls, level: str, need_to_know: Iterable[str], audience: Iterable[str],
           owner: uuid.UUID | str) -> Signature:  # fmt: skip
        return cls(
            level,
            tuple(sorted(set(need_to_know))),
            tuple(sorted(set(audience))),
            owner if isinstance(owner, uuid.UUID) else uuid.UUID(str(owner)),
        )

    @cached_property
    def id(self) -> uuid.UUID:
        canonical = [self.level, list(self.need_to_know), list(self.audience), str(self.owner)]
        return uuid.uuid5(SIGNATURE_NAMESPACE, json.dumps(canonical, separators=(",", ":")))

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label_level": self.level,
            "need_to_know": list(self.need_to_know),
            "audience": list(self.audience),
            "organisation_id": self.owner,
        }


# --- maintenance, in the write transaction ----------------------------------------------------


@dataclass(frozen=True)
class Counted:
    """What one entry adds to the cells: its signature, its centre, its severity × status."""

    signature: Signature
    lon: float
    lat: float
    pair: str | None  # the count column; None for a severity or status the map does not know

    @classmethod
    def of(cls, fields: Mapping[str, Any] | None) -> Counted | None:
        """From an entry's snapshot (``records.versions.snapshot``); None when not located."""
        if not fields or not fields.get("location"):
            return None
        west, south, east, north = bounds(fields["location"])
        signature = Signature.of(
            fields["label_level"],
            fields["need_to_know"] or (),
            fields["audience"] or (),
            fields["organisation_id"],
        )
        pair = PAIRS.get((fields["severity"], fields["status"]))
        return cls(signature, (west + east) / 2.0, (south + north) / 2.0, pair)


def _add(deltas: dict[Key, dict[str, float]], counted: Counted | None, sign: int) -> None:
    if counted is None:
        return
    for grid in GRIDS:
        cell = cell_degrees(grid)
        key = (grid, math.floor(counted.lon / cell), math.floor(counted.lat / cell),
               counted.signature.id)  # fmt: skip
        row = deltas.setdefault(key, dict.fromkeys(COUNTS, 0))
        row["n"] += sign
        if counted.pair is not None:
            row[counted.pair] += sign
        row["sum_lon"] += sign * counted.lon
        row["sum_lat"] += sign * counted.lat


def deltas(before: Counted | None, after: Counted | None) -> dict[Key, dict[str, float]]:
    """The change of every cell row between two states of one entry (rows that do not change
    left out)."""
    found: dict[Key, dict[str, float]] = {}
    _add(found, before, -1)
    _add(found, after, +1)
    return {key: row for key, row in found.items() if any(row.values())}


def _add_statement(dialect: str) -> Any:
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = upsert(MapCell)
    return statement.on_conflict_do_update(
        index_elements=["grid", "gx", "gy", "signature_id"],
        set_={name: getattr(MapCell, name) + statement.excluded[name] for name in COUNTS},
    )


_ADD = {dialect: _add_statement(dialect) for dialect in ("postgresql", "sqlite")}
_SIGNATURE = {  # run with a signature's row (``Signature.row``): built once, as _ADD
    "postgresql": postgresql.insert(MapSignature).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(MapSignature).on_conflict_do_nothing(),
}


# A new entry's cells on PostgreSQL, written by the entry's own two statements
# (``records.versions.Along``): its signature by the entry's INSERT, its cell rows (arrays,
# unnested: one statement of fixed shape whatever the count) by the statement of its version,
# audit record and event. Not both in one: the cells' row-level security policy looks for
# the signature in the statement's snapshot, which a CTE's insert is not in.
_SIGNATURE_CTE = (
    postgresql.insert(MapSignature)
    .values({c.name: bindparam(f"s_{c.name}", type_=c.type) for c in MapSignature.__table__.c})
    .on_conflict_do_nothing()
    .cte("hv_signature")
)
_CELL_COLUMNS = tuple(c.name for c in MapCell.__table__.c)
_UNNESTED = (
    func.unnest(
        *(bindparam(f"c_{c.name}", type_=postgresql.ARRAY(c.type)) for c in MapCell.__table__.c)
    )
    .table_valued(*_CELL_COLUMNS)
    .render_derived()
)
_CELLS_INSERT = postgresql.insert(MapCell).from_select(
    list(_CELL_COLUMNS), select(*(_UNNESTED.c[name] for name in _CELL_COLUMNS))
)
_CELLS_CTE = _CELLS_INSERT.on_conflict_do_update(
    index_elements=["grid", "gx", "gy", "signature_id"],
    set_={name: getattr(MapCell, name) + _CELLS_INSERT.excluded[name] for name in COUNTS},
).cte("hv_cells")


def _rows(changes: dict[Key, dict[str, float]]) -> list[dict[str, Any]]:
    """Cell rows in key order: concurrent writers lock them in the same order."""
    return [
        {"grid": k[0], "gx": k[1], "gy": k[2], "signature_id": k[3], **changes[k]}
        for k in sorted(changes, key=lambda k: (k[0], k[1], k[2], str(k[3])))
    ]


@dataclass(frozen=True)
class Creation:
    """What a new, located entry adds to the cells, as its creation's statements write it."""

    signature: versions.Along  # with the entry's INSERT
    cells: versions.Along  # with its version, audit record and event


def creation(session: AsyncSession, entry: Entry) -> Creation | None:
    """The cells of a new entry for its creation's statements (PostgreSQL); None elsewhere
    (``entry_changed`` then writes them) or when the entry has no position."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    counted = Counted.of(snapshot(entry))
    if counted is None:
        return None
    rows = _rows(deltas(None, counted))
    signature = {f"s_{name}": value for name, value in counted.signature.row().items()}
    cells = {f"c_{name}": [row[name] for row in rows] for name in _CELL_COLUMNS}
    return Creation(
        versions.Along("map_signature", _SIGNATURE_CTE, signature),
        versions.Along("map_cells", _CELLS_CTE, cells),
    )


async def entry_changed(
    session: AsyncSession, *, before: Mapping[str, Any] | None, after: Entry
) -> None:
    """Keep the cells in step with an entry created (``before`` None) or changed (``before``:
    its snapshot before the change), in the caller's transaction. Rows are written in key
    order (concurrent writers lock them in the same order) and emptied rows removed. Nothing
    is written when neither the position, the label, the severity nor the status changed.
    A new entry's cells on PostgreSQL: ``creation``."""
    old, new = Counted.of(before), Counted.of(snapshot(after))
    changes = deltas(old, new)
    if not changes:
        return
    dialect = session.get_bind().dialect.name
    if new is not None and (old is None or old.signature != new.signature):
        await session.execute(_SIGNATURE[dialect], new.signature.row())
    rows = _rows(changes)
    # One statement of fixed shape run with many parameter sets (compiled once and cached;
    # a multi-row VALUES built per call would be compiled again on every write).
    connection = await session.connection()
    await connection.execute(_ADD[dialect], rows)
    emptied = [k for k, row in changes.items() if row["n"] < 0]
    if emptied:
        await session.execute(
            delete(MapCell).where(
                MapCell.n <= 0,
                or_(*(
                    and_(MapCell.grid == g, MapCell.gx == x, MapCell.gy == y,
                         MapCell.signature_id == s)
                    for g, x, y, s in emptied
                )),
            )
        )  # fmt: skip


# --- reading ---------------------------------------------------------------------------------


def covers(query: EntryQuery) -> bool:
    """Whether the cells answer ``query`` (in a view): severities, statuses and the owner
    organisation only. Any other criterion, including one added to ``EntryQuery`` later,
    takes the per-entry path."""
    return replace(query, severities=(), statuses=(), organisation_id=None, bbox=None) == (
        EntryQuery()
    )


def answers(query: EntryQuery, zoom: int) -> bool:
    """Whether the cells answer ``query`` at the zoom asked: street level (above
    CELLS_MAX_ZOOM) reads the entries, whatever the view."""
    return covers(query) and zoom <= CELLS_MAX_ZOOM


def visible_signatures(subject: Subject, query: EntryQuery, dialect: str) -> Select[Any]:
    """The ids of the signatures ``subject`` may see (the policy's SQL filter, once per
    signature), narrowed to the owner organisation asked."""
    chosen = select(MapSignature.id).where(visible_filter(subject, MapSignature, dialect))
    if query.organisation_id is not None:
        chosen = chosen.where(MapSignature.organisation_id == query.organisation_id)
    return chosen


@dataclass
class Clusters:
    total: int
    clusters: list[dict[str, Any]] = field(default_factory=list)


def _counted_columns(query: EntryQuery) -> dict[str, list[ColumnElement[int]]] | None:
    """Per severity, the count columns ``query`` selects; None: every entry (``n``)."""
    if not query.severities and not query.statuses:
        return None
    return {
        sev: [getattr(MapCell, PAIRS[(sev, st)]) for st in STATUSES
              if not query.statuses or st in query.statuses]
        for sev in SEVERITIES
        if not query.severities or sev in query.severities
    }  # fmt: skip


def _cluster_statement(
    signatures: list[uuid.UUID],
    query: EntryQuery,
    zoom: int,
    view: tuple[float, float, float, float],
) -> tuple[Select[*tuple[Any, ...]], float]:
    z = grid_zoom(zoom, view)
    grid = next(g for g in GRIDS if g >= z)
    shift, cell = grid - z, cell_degrees(z)
    west, south, east, north = view
    x0, x1 = math.floor(west / cell), math.floor(east / cell)
    y0, y1 = math.floor(south / cell), math.floor(north / cell)
    scale = float(2**shift)
    cx = func.floor(MapCell.gx / scale) if shift else MapCell.gx
    cy = func.floor(MapCell.gy / scale) if shift else MapCell.gy
    chosen = _counted_columns(query)
    if chosen is None:
        counted: ColumnElement[Any] = MapCell.n.expression
        lon, lat = func.sum(MapCell.sum_lon), func.sum(MapCell.sum_lat)
        by_severity = {sev: [getattr(MapCell, PAIRS[(sev, st)]) for st in STATUSES]
                       for sev in SEVERITIES}  # fmt: skip
    else:
        counted = sum((c for cols in chosen.values() for c in cols), literal(0))
        # The centre of what is counted, each row's centroid weighted by its share.
        lon = func.sum(MapCell.sum_lon * counted / MapCell.n)
        lat = func.sum(MapCell.sum_lat * counted / MapCell.n)
        by_severity = chosen
    rank = case(
        *(
            (sum(cols, literal(0)) > 0, SEVERITIES.index(sev))
            for sev, cols in reversed(by_severity.items())
        ),
        else_=0,
    )
    present = counted > 0
    statement = (
        select(
            func.sum(counted),
            lon,
            lat,
            func.max(rank),
            func.min(case((present, MapCell.gx))),
            func.min(case((present, MapCell.gy))),
            func.max(case((present, MapCell.gx))),
            func.max(case((present, MapCell.gy))),
        )
        .where(
            MapCell.grid == grid,
            MapCell.gx.between(x0 << shift, ((x1 + 1) << shift) - 1),
            MapCell.gy.between(y0 << shift, ((y1 + 1) << shift) - 1),
            MapCell.signature_id.in_(signatures),  # a list: no join for a generic plan to misjudge
        )
        .group_by(cx, cy)
        .having(func.sum(counted) > 0)
    )
    return statement, cell_degrees(grid)


async def clusters(
    session: AsyncSession,
    signatures: Select[Any],
    query: EntryQuery,
    zoom: int,
    view: tuple[float, float, float, float],
) -> Clusters:
    """The clusters of the cells that meet ``view`` (whole cells: a cluster at the view's
    edge counts its entries just outside too), counting the entries of ``signatures`` (a
    query of signature ids) that ``query`` selects. A cluster's extent is that of its
    occupied grid cells. Two statements: the signatures (the policy, once per signature),
    then the sums over their cells."""
    chosen = list(await session.scalars(signatures))
    if not chosen:
        return Clusters(0)
    statement, cell = _cluster_statement(chosen, query, zoom, view)
    found = Clusters(0)
    for n, lon, lat, top, x0, y0, x1, y1 in await session.execute(statement):
        count = int(n)
        found.total += count
        found.clusters.append(
            {
                "lon": round(float(lon) / count, 6),
                "lat": round(float(lat) / count, 6),
                "count": count,
                "severity": SEVERITIES[int(top or 0)],
                "bbox": (
                    round(x0 * cell, 6),
                    round(y0 * cell, 6),
                    round((x1 + 1) * cell, 6),
                    round((y1 + 1) * cell, 6),
                ),
            }
        )
    return found


# --- rebuilding from the entries (migration 0011, bulk loads) ----------------------------------


def rebuild(conn: Connection) -> int:
    """Recompute every cell from the entries, in the connection's transaction; returns the
    number of rows written. It reads every entry: run it as the owner (migration) or in the
    system context."""
    conn.execute(delete(MapCell))
    conn.execute(delete(MapSignature))
    located = Entry.min_lon.is_not(None)
    raw = (
        cast(Entry.label_level, Text) + "|" + cast(Entry.need_to_know, Text) + "|"
        + cast(Entry.audience, Text) + "|" + cast(Entry.organisation_id, Text)
    )  # fmt: skip
    found = conn.execute(
        select(raw, Entry.label_level, Entry.need_to_know, Entry.audience, Entry.organisation_id)
        .where(located)
        .distinct()
    ).all()
    if not found:
        return 0
    keys = Table(
        "hv_map_signature_keys",
        MetaData(),
        Column("raw", Text, primary_key=True),
        Column("signature_id", Uuid),
        prefixes=["TEMPORARY"],
    )
    keys.create(conn)
    try:
        signatures = {r[0]: Signature.of(*r[1:]) for r in found}
        rows = {s.id: s.row() for s in signatures.values()}
        conn.execute(insert(MapSignature), list(rows.values()))
        conn.execute(
            insert(keys), [{"raw": k, "signature_id": s.id} for k, s in signatures.items()]
        )
        lon = (Entry.min_lon + Entry.max_lon) / 2.0
        lat = (Entry.min_lat + Entry.max_lat) / 2.0
        written = 0
        for grid in GRIDS:
            cell = cell_degrees(grid)
            gx = cast(func.floor(lon / cell), Integer)
            gy = cast(func.floor(lat / cell), Integer)
            pairs = [
                func.sum(case((and_(Entry.severity == sev, Entry.status == st), 1), else_=0))
                for sev, st in PAIRS
            ]
            source = (
                select(
                    literal(grid),
                    gx,
                    gy,
                    keys.c.signature_id,
                    func.count(),
                    *pairs,
                    func.sum(lon),
                    func.sum(lat),
                )
                .join(keys, keys.c.raw == raw)
                .where(located)
                .group_by(gx, gy, keys.c.signature_id)
            )
            columns = ["grid", "gx", "gy", "signature_id", *COUNTS]
            result = conn.execute(insert(MapCell).from_select(columns, source))
            written += max(result.rowcount or 0, 0)
        return written
    finally:
        keys.drop(conn)
