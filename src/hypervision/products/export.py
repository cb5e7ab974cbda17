"""A product's rows written out as CSV, JSON, GeoJSON or Parquet, in batches, into a spooled
file (memory first, then disk): the reading (rules, columns, audit) is the service's, this
module only writes what it is given.

CSV is what French offices open in a spreadsheet: UTF-8 with a byte-order mark, ``;`` between
fields, and text cells that a spreadsheet would run as a formula kept as text (``'=...``).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from hypervision.products.readers import escape_formula
from hypervision.products.schema import ARROW_TYPES

SPOOL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Format:
    media_type: str
    extension: str


FORMATS: dict[str, Format] = {
    "csv": Format("text/csv; charset=utf-8", "csv"),
    "json": Format("application/json", "json"),
    "geojson": Format("application/geo+json", "geojson"),
    "parquet": Format("application/vnd.apache.parquet", "parquet"),
}


def _geometry(value: Any) -> Any:
    """A stored geometry as a mapping (SQLite keeps the GeoJSON text, PostgreSQL JSONB)."""
    return json.loads(value) if isinstance(value, str) else value


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return escape_formula(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def write(
    fmt: str,
    columns: Sequence[str],
    types: Mapping[str, str],
    batches: AsyncIterator[Sequence[Sequence[Any]]],
) -> tuple[IO[bytes], int]:
    """The rows of ``batches`` (tuples in ``columns`` order) in ``fmt``; the file, rewound, and
    the number of rows written."""
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    geometries = [i for i, name in enumerate(columns) if types[name] == "geometry"]
    count = 0
    try:
        if fmt == "parquet":
            count = await _parquet(out, columns, types, batches, set(geometries))
        else:
            text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
            if fmt == "csv":
                count = await _csv(text, columns, batches, set(geometries))
            elif fmt == "json":
                count = await _json_array(text, columns, batches, set(geometries))
            else:
                count = await _geojson(text, columns, batches, geometries[0])
            text.flush()
            text.detach()  # the spooled file stays open for the response
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out, count


async def _csv(
    text: io.TextIOWrapper,
    columns: Sequence[str],
    batches: AsyncIterator[Sequence[Sequence[Any]]],
    geometries: set[int],
) -> int:
    text.write("\ufeff")  # the spreadsheets' sign that the file is UTF-8
    writer = csv.writer(text, delimiter=";", lineterminator="\r\n")
    writer.writerow([escape_formula(c) for c in columns])
    count = 0
    async for batch in batches:
        writer.writerows(
            [
                _text(_geometry(v)) if i in geometries and v is not None else _text(v)
                for i, v in enumerate(row)
            ]
            for row in batch
        )
        count += len(batch)
    return count


async def _json_array(
    text: io.TextIOWrapper,
    columns: Sequence[str],
    batches: AsyncIterator[Sequence[Sequence[Any]]],
    geometries: set[int],
) -> int:
    count = 0
    text.write("[")
    async for batch in batches:
        for row in batch:
            record = {
                name: _geometry(v) if i in geometries and v is not None else _json(v)
                for i, (name, v) in enumerate(zip(columns, row, strict=True))
            }
            text.write(("," if count else "") + json.dumps(record, ensure_ascii=False))
            count += 1
    text.write("]")
    return count


async def _geojson(
    text: io.TextIOWrapper,
    columns: Sequence[str],
    batches: AsyncIterator[Sequence[Sequence[Any]]],
    where: int,
) -> int:
    count = 0
    text.write('{"type":"FeatureCollection","features":[')
    async for batch in batches:
        for row in batch:
            pairs = enumerate(zip(columns, row, strict=True))
            properties = {name: _json(v) for i, (name, v) in pairs if i != where}
            feature = {
                "type": "Feature",
                "geometry": None if row[where] is None else _geometry(row[where]),
                "properties": properties,
            }
            text.write(("," if count else "") + json.dumps(feature, ensure_ascii=False))
            count += 1
    text.write("]}")
    return count


async def _parquet(
    out: IO[bytes],
    columns: Sequence[str],
    types: Mapping[str, str],
    batches: AsyncIterator[Sequence[Sequence[Any]]],
    geometries: set[int],
) -> int:
    schema = pa.schema([(name, ARROW_TYPES[types[name]]) for name in columns])
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        async for batch in batches:
            arrays = [
                pa.array(
                    [
                        json.dumps(_geometry(r[i]))
                        if i in geometries and r[i] is not None
                        else r[i]
                        for r in batch
                    ],
                    type=schema.field(i).type,
                )
                for i in range(len(columns))
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            count += len(batch)
        if count == 0:
            writer.write_table(schema.empty_table())
    return count
