"""Any uploaded file to a typed, checked table: ``read_table``, ``infer_schema``, ``preview``.

Formats: CSV (UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252/Latin-1; the
delimiter sniffed among , ; tab |), XLSX, ODS (and legacy XLS), JSON (an array of objects, or
``{"data": [...]}``), GeoJSON (properties become columns, the geometry a ``geometry`` column of
GeoJSON text), Parquet. The whole path is vectorised for CSV and Parquet: no Python loop per
row, only per column. Spreadsheet and JSON cells pass through Python once (their readers
return Python objects), then follow the same vectorised path.

Cells are never evaluated: a cell starting with = + - @ stays the text it is (formula
injection is the export's concern: ``escape_formula``). A formula cell in a workbook gives the
value its spreadsheet last computed.

Errors name the row a person sees in the file ("ligne 12, champ « lits » : « douze » n'est
pas un nombre entier"); the first 100 are kept, all are counted (per field; errors about a
whole row count under ``""``). A problem with the whole file raises ``ReadError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from hypervision.products.casts import cast_values, invalid_message
from hypervision.products.checks import ErrorSink, RowError, check_table, show
from hypervision.products.formats import (
    RawTable,
    ReadError,
    detect_format,
    read_csv,
    read_json,
    read_parquet,
    read_sheet,
)
from hypervision.products.schema import Field, FieldType, TableSchema, slugify_headers

__all__ = [
    "ReadError",
    "ReadResult",
    "RowError",
    "escape_formula",
    "infer_schema",
    "preview",
    "read_table",
]

READ_CHUNK = 64 << 20
INFER_SAMPLE = 1000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_INFER_ORDER: tuple[FieldType, ...] = ("integer", "number", "date", "datetime")
_INFER_BOOLEANS = ("true", "false", "vrai", "faux", "oui", "non")


@dataclass
class ReadResult:
    table: pa.Table
    errors: list[RowError]  # the first 100, by row
    error_count: int
    error_counts_by_field: dict[str, int]
    format: str
    encoding: str | None
    delimiter: str | None
    rows_read: int


def escape_formula(value: str) -> str:
    """A cell for export, so that no spreadsheet runs it as a formula (prefixed with ')."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _load(source: BinaryIO | Path, max_bytes: int) -> bytes:
    too_big = ReadError(
        f"Fichier trop volumineux (plus de {max_bytes:,} octets).".replace(",", " "),
        f"File too large (over {max_bytes} bytes).",
    )
    if isinstance(source, Path):
        if source.stat().st_size > max_bytes:
            raise too_big
        with source.open("rb") as f:
            return _load(f, max_bytes)
    chunks: list[bytes] = []
    size = 0
    # reads of at most 64 MiB, never more than one byte past the limit
    while chunk := source.read(min(max_bytes + 1 - size, READ_CHUNK)):
        size += len(chunk)
        if size > max_bytes:
            raise too_big
        chunks.append(chunk)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not data[:4096].strip() and not data.strip():
        raise ReadError("Le fichier est vide.", "The file is empty.")
    return data


def _raw(
    source: BinaryIO | Path,
    *,
    filename: str,
    media_type: str | None,
    max_bytes: int,
    max_rows: int | None = None,
    limit: int | None = None,
    sheet: str | int | None = None,
) -> RawTable:
    data = _load(source, max_bytes)
    fmt = detect_format(data, filename, media_type)
    if fmt == "csv":
        raw = read_csv(data, limit=limit)
    elif fmt in ("xlsx", "ods", "xls"):
        raw = read_sheet(data, fmt, sheet=sheet, limit=limit)
    elif fmt == "json":
        try:
            raw = read_json(data, limit=limit)
        except ReadError:
            if filename.lower().endswith((".json", ".geojson")):
                raise
            raw = read_csv(data, limit=limit)  # a CSV whose first header starts with [ or {
    else:
        raw = read_parquet(data, max_rows=max_rows, limit=limit)
    if max_rows is not None and raw.rows_read > max_rows:
        raise ReadError(
            f"Trop de lignes : {raw.rows_read} (au plus {max_rows}).",
            f"Too many rows: {raw.rows_read} (at most {max_rows}).",
        )
    return raw


def _infer_type(col: pa.Array, french: bool) -> FieldType:
    t = col.type
    for kind, test in (
        ("integer", pa.types.is_integer),
        ("number", pa.types.is_floating),
        ("boolean", pa.types.is_boolean),
        ("date", pa.types.is_date),
        ("datetime", pa.types.is_timestamp),
    ):
        if test(t):
            return kind  # type: ignore[return-value]
    if not pa.types.is_string(t):
        return "string"
    text = pc.utf8_trim_whitespace(col)
    filled = pc.and_(pc.is_valid(text), pc.not_equal(text, ""))
    values = text.filter(filled)
    if not len(values):
        return "string"
    if pc.all(pc.is_in(pc.utf8_lower(values), value_set=pa.array(_INFER_BOOLEANS))).as_py():
        return "boolean"
    if pc.any(pc.match_substring_regex(values, r"^[+-]?0\d")).as_py():
        return "string"  # a code (postcode, INSEE, SIRET): its leading zeros matter
    for kind in _INFER_ORDER:
        _, bad = cast_values(values, kind, french=french)
        if not pc.any(bad).as_py():
            return kind
    return "string"


def _infer(raw: RawTable, sample_rows: int | None = None) -> TableSchema:
    fields = []
    for header, name, col in zip(
        raw.headers, slugify_headers(raw.headers), raw.columns, strict=True
    ):
        is_geometry = raw.geometry_column is not None and header == raw.geometry_column
        kind: FieldType = "geometry"
        if not is_geometry:
            # a guess from the first rows, then checked (once) over the whole column
            kind = _infer_type(col.slice(0, sample_rows or INFER_SAMPLE), raw.french)
            if sample_rows is None and len(col) > INFER_SAMPLE and kind != "string":
                _, bad = cast_values(col, kind, french=raw.french)
                if pc.any(bad).as_py():
                    kind = _infer_type(col, raw.french)
        fields.append(Field(name=name, type=kind, title=header if header != name else ""))
    return TableSchema(tuple(fields))


def _targets(
    raw: RawTable, schema: TableSchema, column_map: Mapping[str, str] | None
) -> list[str | None]:
    """The field each raw column goes to (None: ignored); whole-file mapping errors raise."""
    names = schema.field_names
    slugs = slugify_headers(raw.headers)
    targets: list[str | None] = []
    unknown: list[str] = []
    for header, slug in zip(raw.headers, slugs, strict=True):
        target: str | None = column_map.get(header, slug) if column_map is not None else slug
        if target and target not in names:
            unknown.append(header)
            target = None
        targets.append(target or None)
    doubled = sorted({t for t in targets if t is not None and targets.count(t) > 1})
    if doubled:
        raise ReadError(
            "Plusieurs colonnes vont au même champ : " + ", ".join(f"« {d} »" for d in doubled),
            "Several columns map to the same field: " + ", ".join(doubled),
        )
    missing = [
        f.name
        for f in schema.fields
        if f.name not in targets and (f.required or f.name in schema.primary_key)
    ]
    if missing:
        raise ReadError(
            "Colonnes obligatoires absentes : " + ", ".join(f"« {m} »" for m in missing),
            "Required columns missing: " + ", ".join(missing),
        )
    if unknown:
        shown = ", ".join(f"« {show(u, 40)} »" for u in unknown[:20])
        raw.sink.add(1, None, f"colonnes inconnues du schéma, ignorées : {shown}")
    return targets


def _invalid_text(source: pa.Array, message: str) -> Callable[[int, int], str]:
    def text(_k: int, i: int) -> str:
        return f"« {show(source[i].as_py())} » {message}"

    return text


def _typed(raw: RawTable, schema: TableSchema, column_map: Mapping[str, str] | None) -> pa.Table:
    targets = _targets(raw, schema, column_map)
    by_field = {t: col for t, col in zip(targets, raw.columns, strict=True) if t is not None}
    n = len(raw.rows)
    arrays: list[pa.Array] = []
    skip: dict[str, pa.Array] = {}
    for f in schema.fields:
        source = by_field.get(f.name)
        if source is None:
            arrays.append(pa.nulls(n, f.arrow_type()))
            continue
        values, bad = cast_values(source, f.type, french=raw.french)
        skip[f.name] = bad
        message = invalid_message(f.type)
        raw.sink.add_mask(bad, raw.rows, f.name, _invalid_text(source, message))
        arrays.append(values)
    table = pa.Table.from_arrays(arrays, schema=schema.arrow_schema())
    check_table(table, schema, raw.rows, raw.sink, skip)
    return table


def read_table(
    source: BinaryIO | Path,
    *,
    filename: str,
    media_type: str | None,
    schema: TableSchema | None,
    max_bytes: int,
    max_rows: int | None = None,
    column_map: Mapping[str, str] | None = None,
    sheet: str | int | None = None,
) -> ReadResult:
    """Read, type and check a whole file; without ``schema``, one is inferred from it.

    ``column_map`` maps a file header to a field name ("" ignores the column); headers it
    does not name go to the field named like their slug (``slugify_field``).
    """
    raw = _raw(
        source,
        filename=filename,
        media_type=media_type,
        max_bytes=max_bytes,
        max_rows=max_rows,
        sheet=sheet,
    )
    if schema is None:
        schema = _infer(raw)
        column_map = None  # the inferred names are the headers' slugs
    table = _typed(raw, schema, column_map)
    sink: ErrorSink = raw.sink
    return ReadResult(
        table=table,
        errors=sink.errors,
        error_count=sink.count,
        error_counts_by_field=dict(sink.by_field),
        format=raw.format,
        encoding=raw.encoding,
        delimiter=raw.delimiter,
        rows_read=raw.rows_read,
    )


def infer_schema(
    source: BinaryIO | Path,
    *,
    filename: str,
    media_type: str | None,
    sample_rows: int = 1000,
    max_bytes: int = 200 * 1024 * 1024,
    sheet: str | int | None = None,
) -> TableSchema:
    """A schema guessed from the first ``sample_rows`` rows (the import wizard's proposal)."""
    raw = _raw(
        source,
        filename=filename,
        media_type=media_type,
        max_bytes=max_bytes,
        limit=sample_rows,
        sheet=sheet,
    )
    return _infer(raw, sample_rows)


def preview(
    source: BinaryIO | Path,
    *,
    filename: str,
    media_type: str | None,
    rows: int = 20,
    max_bytes: int = 200 * 1024 * 1024,
    sheet: str | int | None = None,
) -> tuple[list[str], list[list[str]]]:
    """The headers and the first ``rows`` rows as text, as in the file."""
    raw = _raw(
        source,
        filename=filename,
        media_type=media_type,
        max_bytes=max_bytes,
        limit=rows,
        sheet=sheet,
    )
    columns = [c.slice(0, rows) for c in raw.columns]
    texts = [
        [
            ("" if v is None else str(v))
            for v in (c.cast(pa.string()) if not pa.types.is_string(c.type) else c).to_pylist()
        ]
        for c in columns
    ]
    count = min((len(c) for c in texts), default=0)
    return list(raw.headers), [[c[i] for c in texts] for i in range(count)]
