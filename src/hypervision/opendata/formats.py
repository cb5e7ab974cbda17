"""A release's rows written out, streamed: CSV (UTF-8, ``,``, no byte-order mark: the form
data.gouv.fr and schema.data.gouv.fr expect), JSON (an array of objects), GeoJSON (the first
geometry field) and Parquet. Each writer takes batches of rows (field -> JSON value, as
stored) and yields bytes as it goes: a release of a million rows is never held in memory.
The CSV bytes are also what a release's checksum covers (``csv_chunks``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hypervision.products.schema import ARROW_TYPES

Row = Mapping[str, Any]
Batches = AsyncIterator[Sequence[Row]]


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


def geometry_field(fields: Sequence[Mapping[str, str]]) -> str | None:
    return next((f["name"] for f in fields if f["type"] == "geometry"), None)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def csv_lines(names: Sequence[str], rows: Iterable[Row], header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=",", lineterminator="\r\n")
    if header:
        writer.writerow(names)
    writer.writerows([_cell(row.get(n)) for n in names] for row in rows)
    return out.getvalue().encode("utf-8")


async def csv_chunks(names: Sequence[str], batches: Batches) -> AsyncIterator[bytes]:
    yield csv_lines(names, (), header=True)
    async for batch in batches:
        yield csv_lines(names, batch, header=False)


async def json_chunks(names: Sequence[str], batches: Batches) -> AsyncIterator[bytes]:
    first = True
    yield b"["
    async for batch in batches:
        parts = []
        for row in batch:
            parts.append(("" if first else ",") + json.dumps({n: row.get(n) for n in names}))
            first = False
        yield "".join(parts).encode()
    yield b"]"


async def geojson_chunks(
    names: Sequence[str], where: str, batches: Batches
) -> AsyncIterator[bytes]:
    first = True
    yield b'{"type":"FeatureCollection","features":['
    async for batch in batches:
        parts = []
        for row in batch:
            feature = {
                "type": "Feature",
                "geometry": row.get(where),
                "properties": {n: row.get(n) for n in names if n != where},
            }
            parts.append(("" if first else ",") + json.dumps(feature))
            first = False
        yield "".join(parts).encode()
    yield b"]}"


class _Sink:
    """A write-only stream for Parquet's writer whose bytes are taken as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _arrow_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "geometry":
        return json.dumps(value)
    return value


async def parquet_chunks(
    fields: Sequence[Mapping[str, str]], batches: Batches
) -> AsyncIterator[bytes]:
    schema = pa.schema([(f["name"], ARROW_TYPES[f["type"]]) for f in fields])
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema)
    try:
        async for batch in batches:
            arrays = [
                pa.array([_arrow_value(f["type"], r.get(f["name"])) for r in batch], type=t)
                for f, t in zip(fields, schema.types, strict=True)
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            yield sink.take()
    finally:
        writer.close()
    yield sink.take()


def chunks(fmt: str, fields: Sequence[Mapping[str, str]], batches: Batches) -> AsyncIterator[bytes]:
    names = [f["name"] for f in fields]
    if fmt == "csv":
        return csv_chunks(names, batches)
    if fmt == "json":
        return json_chunks(names, batches)
    if fmt == "geojson":
        where = geometry_field(fields)
        assert where is not None
        return geojson_chunks(names, where, batches)
    return parquet_chunks(fields, batches)
