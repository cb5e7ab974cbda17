"""The schema's constraints checked over a whole ``pyarrow.Table`` at once (``pyarrow.compute``).

No Python loop over rows: each constraint is one vectorised mask, and only the first rows
of each mask are turned into messages. Row numbers are those a person sees in their file
(the header is row 1, so the first data row of a CSV or a sheet is row 2).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hypervision.products.casts import cast_values
from hypervision.products.schema import Field, TableSchema

MAX_ERRORS = 100
ROW_KEY = ""  # key of error_counts_by_field for errors about a whole row (ragged, extra columns)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class RowError:
    row: int  # the line or row number a person sees in their file or spreadsheet (header = 1)
    field: str | None
    message: str


def show(value: Any, limit: int = 50) -> str:
    """A cell value for an error message: one line, at most ``limit`` characters."""
    text = _CONTROL.sub(" ", str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class ErrorSink:
    """Counts every error, keeps the first ``MAX_ERRORS`` (by row) as RowErrors."""

    unit: str = "ligne"  # how a row is named in messages: ligne, élément, entité
    count: int = 0
    by_field: dict[str, int] = field(default_factory=dict)
    _kept: list[tuple[int, int, RowError]] = field(default_factory=list)
    _order: dict[str | None, int] = field(default_factory=dict)

    def add(self, row: int, field_name: str | None, text: str) -> None:
        self.add_many([row], field_name, lambda _: text)

    def where(self, row: int, field_name: str | None) -> str:
        if field_name is None:
            return f"{self.unit} {row}"
        return f"{self.unit} {row}, champ « {field_name} »"

    def add_many(
        self,
        rows: Sequence[int],
        field_name: str | None,
        text: Callable[[int], str],
        total: int | None = None,
    ) -> None:
        """Errors at ``rows`` (at most MAX_ERRORS needed); ``text(i)`` is the i-th's message."""
        n = len(rows) if total is None else total
        if not n:
            return
        self.count += n
        key = ROW_KEY if field_name is None else field_name
        self.by_field[key] = self.by_field.get(key, 0) + n
        order = self._order.setdefault(field_name, len(self._order))
        for i, row in enumerate(rows[:MAX_ERRORS]):
            message = f"{self.where(row, field_name)} : {text(i)}"
            self._kept.append((row, order, RowError(row, field_name, message)))
        if len(self._kept) > 4 * MAX_ERRORS:
            self._trim()

    def add_mask(
        self,
        mask: pa.Array,
        rows: pa.Array,
        field_name: str | None,
        text: Callable[[int, int], str],
    ) -> None:
        """Errors where ``mask`` is true; ``text(k, i)`` words the k-th, at table index i."""
        indices = pc.indices_nonzero(pc.fill_null(mask, False))
        if not len(indices):
            return
        first = indices.slice(0, MAX_ERRORS).to_pylist()
        first_rows = pc.take(rows, pa.array(first, pa.int64())).to_pylist()
        self.add_many(first_rows, field_name, lambda k: text(k, first[k]), total=len(indices))

    def _trim(self) -> None:
        self._kept.sort(key=lambda t: (t[0], t[1]))
        del self._kept[MAX_ERRORS:]

    @property
    def errors(self) -> list[RowError]:
        self._trim()
        return [e for _, _, e in self._kept]


def _column(table: pa.Table, name: str) -> pa.Array:
    col = table.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _value_set(f: Field) -> pa.Array:
    values, _ = cast_values(pa.array([str(v) for v in f.enum or ()], pa.string()), f.type)
    if f.type == "boolean":
        values = pa.array([v if isinstance(v, bool) else None for v in f.enum or ()], pa.bool_())
    return values.drop_null()


def duplicates(keys: pa.Table) -> tuple[list[int], list[int], int]:
    """Rows whose key (all columns of ``keys``, none null) repeats an earlier row's.

    Returns the first MAX_ERRORS such row indices, the index of each one's first occurrence,
    and the total number of such rows.
    """
    names = keys.column_names
    n = keys.num_rows
    if len(names) == 1:
        col = keys.column(0)
        distinct = len(pc.unique(col)) - (1 if col.null_count else 0)
        if distinct == n - col.null_count:
            return [], [], 0
    valid = None
    for name in names:
        v = pc.is_valid(keys.column(name))
        valid = v if valid is None else pc.and_(valid, v)
    t = keys.append_column("__i", pa.array(np.arange(n, dtype=np.int64)))
    t = t.filter(valid) if valid is not None else t
    groups = t.group_by(names, use_threads=False).aggregate([("__i", "min"), ("__i", "count")])
    groups = groups.filter(pc.greater(groups.column("__i_count"), 1))
    if not groups.num_rows:
        return [], [], 0
    joined = t.join(groups.select([*names, "__i_min"]), keys=names, join_type="inner")
    joined = joined.filter(pc.not_equal(joined.column("__i"), joined.column("__i_min")))
    joined = joined.sort_by("__i")
    head = joined.slice(0, MAX_ERRORS)
    return head.column("__i").to_pylist(), head.column("__i_min").to_pylist(), joined.num_rows


def check_table(
    table: pa.Table,
    schema: TableSchema,
    rows: pa.Array,
    sink: ErrorSink,
    skip: dict[str, pa.Array] | None = None,
) -> None:
    """Check every constraint of ``schema``; ``rows[i]`` is table row i's number in the file.

    ``skip[field]`` marks cells already reported (a value that failed its type, now null):
    they are not reported again as missing.
    """
    for f in schema.fields:
        if f.name in table.column_names:
            required = f.required or f.name in schema.primary_key  # a key is never empty
            col = _column(table, f.name)
            _check_field(col, f, required, rows, sink, (skip or {}).get(f.name))
    if schema.primary_key and all(k in table.column_names for k in schema.primary_key):
        _check_primary_key(table, schema, rows, sink)


def _check_field(
    col: pa.Array,
    f: Field,
    required: bool,
    rows: pa.Array,
    sink: ErrorSink,
    skip: pa.Array | None,
) -> None:
    def value(i: int) -> str:
        return show(col[i].as_py())

    if required:
        missing = pc.is_null(col)
        if skip is not None:
            missing = pc.and_(missing, pc.invert(skip))
        sink.add_mask(missing, rows, f.name, lambda _k, _i: "valeur obligatoire manquante")
    if f.minimum is not None:
        sink.add_mask(
            pc.less(col, f.minimum),
            rows,
            f.name,
            lambda _k, i: f"« {value(i)} » est inférieur au minimum {f.minimum}",
        )
    if f.maximum is not None:
        sink.add_mask(
            pc.greater(col, f.maximum),
            rows,
            f.name,
            lambda _k, i: f"« {value(i)} » est supérieur au maximum {f.maximum}",
        )
    if f.enum is not None:
        allowed = ", ".join(show(v, 20) for v in f.enum[:10]) + (" …" if len(f.enum) > 10 else "")
        outside = pc.and_(pc.is_valid(col), pc.invert(pc.is_in(col, value_set=_value_set(f))))
        sink.add_mask(
            outside,
            rows,
            f.name,
            lambda _k, i: f"« {value(i)} » n'est pas une valeur permise ({allowed})",
        )
    if f.pattern is not None and f.type in ("string", "geometry"):
        sink.add_mask(
            pc.invert(pc.match_substring_regex(col, f"^(?:{f.pattern})$")),
            rows,
            f.name,
            lambda _k, i: f"« {value(i)} » ne respecte pas le motif {show(f.pattern)}",
        )
    if f.max_length is not None and f.type == "string":
        sink.add_mask(
            pc.greater(pc.utf8_length(col), f.max_length),
            rows,
            f.name,
            lambda _k, i: f"« {value(i)} » dépasse {f.max_length} caractères",
        )
    if f.unique:
        dup, first, total = duplicates(pa.table({f.name: col}))
        sink.add_many(
            [rows[i].as_py() for i in dup],
            f.name,
            lambda k: (
                f"« {value(dup[k])} » est déjà en {sink.unit} {rows[first[k]].as_py()}"
                " (valeur unique attendue)"
            ),
            total=total,
        )


def _check_primary_key(
    table: pa.Table, schema: TableSchema, rows: pa.Array, sink: ErrorSink
) -> None:
    keys = table.select(list(schema.primary_key))
    where = schema.primary_key[0] if len(schema.primary_key) == 1 else None
    label = ", ".join(schema.primary_key)
    dup, first, total = duplicates(keys)

    def text(k: int) -> str:
        shown = ", ".join(show(keys.column(n)[dup[k]].as_py(), 30) for n in schema.primary_key)
        return (
            f"clé primaire ({label}) « {shown} » en double, déjà en "
            f"{sink.unit} {rows[first[k]].as_py()}"
        )

    sink.add_many([rows[i].as_py() for i in dup], where, text, total=total)


def check_constraints(
    table: pa.Table, schema: TableSchema, *, first_row: int = 2
) -> tuple[list[RowError], int, dict[str, int]]:
    """Every constraint of ``schema`` over ``table``: (first errors, count, count per field)."""
    sink = ErrorSink()
    rows = pa.array(range(first_row, first_row + table.num_rows), pa.int64())
    check_table(table, schema, rows, sink)
    return sink.errors, sink.count, dict(sink.by_field)
