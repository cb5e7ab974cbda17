"""Where a product's rows live (ADR 0026): one typed table per product, ``dp_<product id>``,
with every version of every row.

Columns: ``_row`` (the row's number, kept by the versions of one row), ``_from`` (the data
version that wrote it), ``_to`` (the version that replaced or removed it; NULL while current),
then one typed column per schema field. Version ``v`` of a product is the rows with
``_from <= v`` and (``_to`` NULL or ``> v``); the current rows have ``_to`` NULL.

The application's PostgreSQL role has no CREATE right (ADR 0011): the tables, their indexes and
their row-level security policies are made by ``hv_product_ddl``, a SECURITY DEFINER function
of the owner that runs only statements signed with the key of the request contexts (migration
0014). SQL injected through the application's role cannot sign, hence cannot run DDL.

Row-level security on a product's table: reading needs the product to be visible (its label,
through the RLS of ``data_products``) and the stewards' row rule to hold for the reader's signed
context; writing needs the system context (imports are authorised by the application, then
run with the system identity, so that a row rule never hides a row from the load that must
replace it).
"""

from __future__ import annotations

import functools
import hashlib
import io
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    Double,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.types import TypeEngine

from hypervision.config import Settings
from hypervision.core.errors import Conflict
from hypervision.db import UTCDateTime
from hypervision.policy.rls import SYSTEM_CONTEXT, set_context, sign
from hypervision.products.models import storage_table_name
from hypervision.products.schema import TableSchema

RESERVED = ("_row", "_from", "_to")

SQL_TYPES: dict[str, Callable[[], TypeEngine[Any]]] = {
    "string": Text,
    "integer": BigInteger,
    "number": Double,
    "boolean": Boolean,
    "date": Date,
    "datetime": lambda: UTCDateTime(),
    # GeoJSON text; jsonb on PostgreSQL (loaded by COPY as text, so never encoded twice).
    "geometry": lambda: Text().with_variant(JSONB(), "postgresql"),
}


def _signature(schema: TableSchema) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    return tuple((f.name, f.type) for f in schema.fields), tuple(schema.primary_key)


@functools.lru_cache(maxsize=256)
def _table(name: str, fields: tuple[tuple[str, str], ...], key: tuple[str, ...]) -> Table:
    metadata = MetaData()
    columns = [
        Column("_row", BigInteger, nullable=False, primary_key=True),
        Column("_from", Integer, nullable=False, primary_key=True),
        Column("_to", Integer, nullable=True),
    ]
    for field_name, field_type in fields:
        if field_name in RESERVED:
            raise ValueError(f"reserved column name {field_name!r}")
        columns.append(Column(field_name, SQL_TYPES[field_type](), nullable=True))
    table = Table(name, metadata, *columns)
    Index(f"{name}_current", table.c._row, postgresql_where=table.c._to.is_(None),
          sqlite_where=table.c._to.is_(None))  # fmt: skip
    if key:
        Index(
            f"{name}_key",
            *(table.c[k] for k in key),
            unique=True,
            postgresql_where=table.c._to.is_(None),
            sqlite_where=table.c._to.is_(None),
        )
    return table


def table_of(product_id: uuid.UUID, schema: TableSchema) -> Table:
    """The product's rows table as SQLAlchemy sees it (cached per schema)."""
    fields, key = _signature(schema)
    return _table(storage_table_name(product_id), fields, key)


def _dialect(name: str) -> Any:
    return postgresql.dialect() if name == "postgresql" else sqlite.dialect()  # type: ignore[no-untyped-call]


def index_statements(
    table: Table, names: Sequence[str], dialect: str, *, drop: bool = False
) -> list[str]:
    """Indexes of the fields a steward chose (``"index": true``), over the current rows, in
    the row pages' orders: on PostgreSQL one per direction (value NULLS LAST, then row
    number), on SQLite one (its indexes have no NULLS LAST); ``drop`` removes them."""
    target = f'"public"."{table.name}"' if dialect == "postgresql" else f'"{table.name}"'
    schema = '"public".' if dialect == "postgresql" else ""
    orders = {"a": ("ASC NULLS LAST", "ASC"), "d": ("DESC NULLS LAST", "DESC")}
    if dialect != "postgresql":
        orders = {"a": ("ASC", "ASC")}
    out: list[str] = []
    for name in names:
        if name not in table.c or name in RESERVED:  # a field of the table, never typed text
            raise ValueError(f"not a field of {table.name}: {name!r}")
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        for suffix, (value_order, row_order) in orders.items():
            index = f"{table.name}_{digest}{suffix}"
            if drop:
                out.append(f'DROP INDEX IF EXISTS {schema}"{index}"')
            else:
                out.append(
                    f'CREATE INDEX IF NOT EXISTS "{index}" ON {target} '
                    f'("{name}" {value_order}, "_row" {row_order}) WHERE "_to" IS NULL'
                )
    return out


def create_statements(table: Table, dialect: str) -> list[str]:
    compiler = _dialect(dialect)
    if dialect == "postgresql":
        # hv_product_ddl pins its search_path to pg_catalog first: name the schema.
        table = table.to_metadata(MetaData(), schema="public")
    statements = [str(CreateTable(table).compile(dialect=compiler)).strip()]
    statements += [str(CreateIndex(index).compile(dialect=compiler)) for index in table.indexes]
    return statements


def add_column_statements(table: Table, names: Sequence[str], dialect: str) -> list[str]:
    """``ALTER TABLE … ADD COLUMN`` for fields added to a product's schema (nullable)."""
    compiler = _dialect(dialect)
    target = f'"public"."{table.name}"' if dialect == "postgresql" else f'"{table.name}"'
    return [
        f'ALTER TABLE {target} ADD COLUMN "{name}" {table.c[name].type.compile(dialect=compiler)}'
        for name in names
    ]


SYSTEM = "(SELECT hv_ctx_system())"


def policy_statements(table_name: str, product_id: uuid.UUID, row_rule: str) -> list[str]:
    """Row-level security of a product's table (PostgreSQL): read when the product is visible
    and the row rule holds; write in the system context only."""
    # A UUID's text: only hex digits and dashes.
    visible = f"EXISTS (SELECT 1 FROM data_products p WHERE p.id = '{product_id}'::uuid)"  # noqa: S608
    read = f"({SYSTEM} OR ({visible} AND ({row_rule})))"
    return [
        f'ALTER TABLE "{table_name}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table_name}" FORCE ROW LEVEL SECURITY',
        f'DROP POLICY IF EXISTS hv_read ON "{table_name}"',
        f'DROP POLICY IF EXISTS hv_write ON "{table_name}"',
        f'CREATE POLICY hv_read ON "{table_name}" FOR SELECT USING {read}',
        f'CREATE POLICY hv_write ON "{table_name}" FOR ALL USING ({SYSTEM}) WITH CHECK ({SYSTEM})',
    ]


async def run_ddl(
    session: AsyncSession, settings: Settings, table_name: str, statements: Sequence[str]
) -> None:
    """Run DDL on a product's table in the caller's transaction: directly on SQLite; on
    PostgreSQL through the owner's ``hv_product_ddl``, signed."""
    if session.get_bind().dialect.name != "postgresql":
        for statement in statements:
            await session.execute(text(statement))
        return
    signed = sign(
        settings,
        {"purpose": "product-ddl", "table": table_name, "statements": list(statements)},
    )
    await session.execute(select(func.hv_product_ddl(signed)))


async def as_system(session: AsyncSession, settings: Settings) -> None:
    """The rest of the caller's transaction runs with the system identity (PostgreSQL): for a
    write the application has already authorised (see the module's docstring)."""
    if session.get_bind().dialect.name == "postgresql":
        await set_context(session, sign(settings, SYSTEM_CONTEXT))


# --- reading -----------------------------------------------------------------------------------


def at_version(table: Table, version: int | None) -> ColumnElement[bool]:
    """The rows of data version ``version`` (None: the current rows)."""
    if version is None:
        return table.c._to.is_(None)
    return and_(table.c._from <= version, or_(table.c._to.is_(None), table.c._to > version))


# --- loading -----------------------------------------------------------------------------------


@dataclass
class Counts:
    added: int = 0
    changed: int = 0
    removed: int = 0


def _with_system_columns(data: pa.Table, first_row: int, version: int) -> pa.Table:
    n = data.num_rows
    rows = pa.array(np.arange(first_row, first_row + n, dtype=np.int64))
    versions = pa.array(np.full(n, version, dtype=np.int32))
    return data.add_column(0, "_from", versions).add_column(0, "_row", rows)


async def _copy(session: AsyncSession, table: Table, data: pa.Table) -> None:
    """Bulk-load ``data`` (columns named like ``table``'s) into ``table`` in the caller's
    transaction: PostgreSQL ``COPY … FROM STDIN`` (CSV written by Arrow, in C++); SQLite one
    driver ``executemany`` of tuples converted column by column."""
    if data.num_rows == 0:
        return
    columns = list(data.column_names)
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        buffer = io.BytesIO()
        pa_csv.write_csv(_csv_ready(data), buffer, pa_csv.WriteOptions(include_header=False))
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        buffer.seek(0)
        if table.name.startswith("hv_stage_"):  # a temporary table: no row-level security
            await driver.copy_to_table(
                table.name, source=buffer, columns=columns, format="csv", null=""
            )
            return
        # COPY FROM refuses a table under row-level security: through a temporary table.
        stage = f"hv_stage_{uuid.uuid4().hex[:12]}"
        await session.execute(
            text(f'CREATE TEMP TABLE {stage} (LIKE "{table.name}") ON COMMIT DROP')
        )
        await driver.copy_to_table(stage, source=buffer, columns=columns, format="csv", null="")
        names = ", ".join(f'"{c}"' for c in columns)
        # Names from the validated schema and hex digits only.
        await session.execute(
            text(f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {stage}')  # noqa: S608
        )
        await session.execute(text(f"DROP TABLE {stage}"))
        return
    names = ", ".join(_quoted(c) for c in columns)
    marks = ", ".join("?" * len(columns))
    # Names from the validated schema (quoted); values bound by the driver.
    insert = f"INSERT INTO {_quoted(table.name)} ({names}) VALUES ({marks})"  # noqa: S608
    await connection.exec_driver_sql(insert, _sqlite_rows(table, data))


def _csv_ready(data: pa.Table) -> pa.Table:
    """Timestamps (UTC) as ISO text ending in ``Z``: Arrow's CSV writer formats a zoned
    timestamp through the time-zone database, twenty times slower than this cast."""
    for i, values in enumerate(data.columns):
        if pa.types.is_timestamp(values.type) and values.type.tz is not None:
            naive = pc.cast(pc.cast(values, pa.timestamp("us", tz="UTC")), pa.timestamp("us"))
            text = pc.binary_join_element_wise(pc.cast(naive, pa.string()), pa.scalar("Z"), "")
            data = data.set_column(i, data.field(i).with_type(pa.string()), text)
    return data


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_rows(table: Table, data: pa.Table) -> list[tuple[Any, ...]]:
    """``data``'s rows as tuples of what SQLAlchemy would store in SQLite for ``table``'s
    types, converted column by column in Arrow (dates and times as SQLAlchemy's ISO text,
    booleans as 0/1): no dict per row, no bind processing per value."""
    dialect = _dialect("sqlite")
    columns: list[list[Any]] = []
    for name in data.column_names:
        values = data.column(name)
        if pa.types.is_timestamp(values.type):
            utc = pc.cast(values, pa.timestamp("us", tz="UTC"))
            columns.append(pc.strftime(utc, format="%Y-%m-%d %H:%M:%S").to_pylist())
        elif pa.types.is_date32(values.type):
            columns.append(pc.cast(values, pa.string()).to_pylist())
        elif pa.types.is_boolean(values.type):
            columns.append(pc.cast(values, pa.int8()).to_pylist())
        else:
            plain = values.to_pylist()
            process = table.c[name].type._cached_bind_processor(dialect)
            if process is not None:
                plain = [None if v is None else process(v) for v in plain]
            columns.append(plain)
    return list(zip(*columns, strict=True))


async def next_row(session: AsyncSession, table: Table) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(table.c._row), 0))) or 0) + 1


async def load(
    session: AsyncSession,
    table: Table,
    data: pa.Table,
    *,
    mode: str,
    version: int,
    key: Sequence[str],
) -> Counts:
    """Write ``data`` as data version ``version`` (in the caller's transaction, system context):
    ``replace`` closes every current row, then adds the file's; ``append`` adds them (a key
    already present is refused); ``upsert`` replaces the rows whose key is in the file and adds
    the others. With a key, ``replace`` counts a row whose key was there as changed (or
    unchanged when its values are equal)."""
    counts = Counts()
    current = table.c._to.is_(None)
    if mode == "upsert":
        return await _upsert(session, table, data, version=version, key=key)
    if mode == "replace":
        result = await session.execute(update(table).where(current).values(_to=version))
        counts.removed = int(result.rowcount or 0)  # type: ignore[attr-defined]
    start = await next_row(session, table)
    try:
        async with session.begin_nested():
            await _copy(session, table, _with_system_columns(data, start, version))
    except IntegrityError:
        raise Conflict(
            "Des clés du fichier existent déjà dans le produit : choisissez « mettre à jour "
            "par clé » ou « remplacer ».",
            "Some keys of the file already exist in the product: choose upsert or replace.",
            code="duplicate_keys",
        ) from None
    counts.added = data.num_rows
    if mode == "replace" and key and counts.removed:
        unchanged, changed = await _matched(session, table, version, key)
        counts.added -= unchanged + changed
        counts.removed -= unchanged + changed
        counts.changed = changed
    return counts


async def _matched(
    session: AsyncSession, table: Table, version: int, key: Sequence[str]
) -> tuple[int, int]:
    """Rows of version ``version`` whose key was in the version before: (unchanged, changed)."""
    new, old = table.alias("n"), table.alias("o")
    fields = [c.name for c in table.c if c.name not in RESERVED]
    same = and_(*(new.c[f].is_not_distinct_from(old.c[f]) for f in fields))
    query = (
        select(func.count(), func.coalesce(func.sum(func.cast(same, Integer)), 0))
        .select_from(new.join(old, and_(*(new.c[k] == old.c[k] for k in key))))
        .where(new.c._from == version, old.c._to == version)
    )
    total, unchanged = (await session.execute(query)).one()
    return int(unchanged), int(total) - int(unchanged)


async def _upsert(
    session: AsyncSession, table: Table, data: pa.Table, *, version: int, key: Sequence[str]
) -> Counts:
    """Stage the file in a temporary table, close the current rows it replaces, add its rows
    (a replaced row keeps its number)."""
    assert key, "upsert needs a key"
    dialect = session.get_bind().dialect.name
    stage_name = f"hv_stage_{uuid.uuid4().hex[:12]}"
    if dialect == "postgresql":
        await session.execute(
            text(f'CREATE TEMP TABLE {stage_name} (LIKE "{table.name}") ON COMMIT DROP')
        )
    else:
        await session.execute(
            # Both names are made here from hex digits.
            text(f'CREATE TEMP TABLE {stage_name} AS SELECT * FROM "{table.name}" WHERE 0')  # noqa: S608
        )
    stage = Table(stage_name, MetaData(), *(Column(c.name, c.type) for c in table.c))
    start = await next_row(session, table)
    await _copy(session, stage, _with_system_columns(data, start, version))
    fields = [c.name for c in table.c if c.name not in RESERVED]
    matches = and_(table.c._to.is_(None), *(table.c[k] == stage.c[k] for k in key))
    differs = or_(*(table.c[f].is_distinct_from(stage.c[f]) for f in fields))
    # A staged row whose key is current keeps that row's number.
    renumber = select(table.c._row).where(matches).scalar_subquery()
    await session.execute(update(stage).values(_row=func.coalesce(renumber, stage.c._row)))
    unchanged_rows = select(stage.c._row).where(
        select(literal_column("1")).where(matches, ~differs).exists()
    )
    unchanged = int(
        await session.scalar(select(func.count()).select_from(unchanged_rows.subquery())) or 0
    )
    closed = await session.execute(
        update(table)
        .where(table.c._to.is_(None), table.c._row.in_(select(stage.c._row)))
        .where(table.c._row.not_in(unchanged_rows))
        .values(_to=version)
    )
    changed = int(closed.rowcount or 0)  # type: ignore[attr-defined]
    columns = [c.name for c in table.c if c.name != "_to"]
    await session.execute(
        table.insert().from_select(
            columns,
            select(*(stage.c[c] for c in columns)).where(stage.c._row.not_in(unchanged_rows)),
        )
    )
    if dialect != "postgresql":
        await session.execute(text(f"DROP TABLE {stage_name}"))
    added = data.num_rows - unchanged - changed
    return Counts(added=added, changed=changed, removed=0)


def row_count_query(table: Table) -> Any:
    return select(func.count()).select_from(table).where(table.c._to.is_(None))
