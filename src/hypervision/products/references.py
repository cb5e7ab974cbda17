"""A schema's foreign keys (Table Schema ``foreignKeys``) enforced at every import: each row whose
key fields are all filled must name a current row of the referenced product, or the whole file
is refused, naming the rows as any other check does (docs/adr/0026).

The referenced product is looked up *as the importer*: one they may not see, or whose key
fields a column rule hides from them, is "not found" (an import must not tell them what they
could not read). Its keys are then read with the system identity, like a quality rule's
``reference`` (ADR 0027), and that read is audited (``product.reference_check``): what the
importer learns is only whether the values *they* wrote exist. A product may reference itself
(a hierarchy): its keys are then the file's own rows, plus the current rows an append or an
upsert keeps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Invalid
from hypervision.identity.principal import Principal
from hypervision.products import base, storage
from hypervision.products.checks import MAX_ERRORS, ErrorSink, RowError, show
from hypervision.products.models import DataProduct, ImportMode
from hypervision.products.rules import Reader
from hypervision.products.schema import ForeignKey, TableSchema


async def check_foreign_keys(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product: DataProduct,
    schema: TableSchema,
    table: pa.Table,
    mode: ImportMode,
    first_row: int = 2,
) -> tuple[list[RowError], int, dict[str, int]]:
    """Rows of ``table`` whose foreign key names no row of its product: (first errors, count,
    count per field). A referenced product that cannot be found refuses the import."""
    sink = ErrorSink()
    rows = pa.array(np.arange(first_row, first_row + table.num_rows, dtype=np.int64))
    for fk in schema.foreign_keys:
        if not all(name in table.column_names for name in fk.fields):
            continue  # the file does not fill this key: nothing to check
        known = await _known_keys(session, settings, actor, product, schema, fk, table, mode)
        _check(table, fk, known, rows, sink)
    return sink.errors, sink.count, dict(sink.by_field)


async def _known_keys(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product: DataProduct,
    schema: TableSchema,
    fk: ForeignKey,
    table: pa.Table,
    mode: ImportMode,
) -> pa.Table:
    """The referenced fields' values of the target's current rows, named as ``fk.fields``."""
    if fk.product == product.slug:
        target, target_schema = product, schema
    else:
        target, target_schema = await _target(session, settings, actor, fk)
    stored = storage.table_of(target.id, target_schema)
    await storage.as_system(session, settings)
    columns = [stored.c[name] for name in fk.reference_fields]
    found = (await session.execute(select(*columns).where(stored.c._to.is_(None)).distinct())).all()
    types = [table.schema.field(name).type for name in fk.fields]
    known = pa.table(
        {
            name: _array([r[i] for r in found], kind)
            for i, (name, kind) in enumerate(zip(fk.fields, types, strict=True))
        }
    )
    if target is not product:  # another product's keys, read for this import: audited
        await audit.record(
            session=session,
            actor=actor,
            action="product.reference_check",
            resource_type="product",
            resource_ids=[target.id],
            labels=[target.label_level],
            detail={
                "for": str(product.id),
                "data_version": target.data_version,
                "fields": list(fk.reference_fields),
                "keys": len(found),
            },
        )
    if target is product:  # the file's own rows, and those an append or upsert keeps
        own = table.select(list(fk.reference_fields)).rename_columns(list(fk.fields))
        kept = known if mode is not ImportMode.REPLACE else known.slice(0, 0)
        known = pa.concat_tables([kept, own.cast(kept.schema)])
    return known


async def _target(
    session: AsyncSession, settings: Settings, actor: Principal, fk: ForeignKey
) -> tuple[DataProduct, TableSchema]:
    """The referenced product as the importer sees it, with its schema."""
    query = base.visible_products(session, settings, actor)
    found = await session.scalar(query.where(DataProduct.slug == fk.product))
    if found is not None:
        schema = base.schema_of(found)
        ruleset = base.rules_of(settings, found, schema)
        wanted = list(fk.reference_fields)
        seen = ruleset.visible_columns(Reader.of(settings, actor), wanted)
        if set(wanted) <= set(schema.field_names) and set(seen) == set(wanted):
            return found, schema
    raise Invalid(
        f"Clé étrangère ({', '.join(fk.fields)}) : le produit « {fk.product} » ou ses "
        "champs de référence sont introuvables ; rien n'est importé.",
        f"Foreign key ({', '.join(fk.fields)}): product {fk.product!r} or its "
        "reference fields cannot be found; nothing is imported.",
        code="foreign_key_target",
        extra={"fields": [{"field": name, "message": "reference"} for name in fk.fields]},
    )


def _array(values: list[Any], kind: pa.DataType) -> pa.Array:
    """Stored values as the file's column type (a driver may give a date or a time as text)."""
    try:
        return pa.array(values, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string()).cast(kind)


def _check(
    table: pa.Table, fk: ForeignKey, known: pa.Table, rows: pa.Array, sink: ErrorSink
) -> None:
    names = list(fk.fields)
    keys = table.select(names).append_column("__row", rows)
    for name in names:
        keys = keys.filter(pc.is_valid(keys.column(name)))
    if not keys.num_rows:
        return
    missing = keys.join(
        known.group_by(names).aggregate([]), keys=names, join_type="left anti"
    ).sort_by("__row")
    if not missing.num_rows:
        return
    where = names[0] if len(names) == 1 else None
    label = ", ".join(names)
    first = missing.slice(0, MAX_ERRORS)

    def text(k: int) -> str:
        shown = ", ".join(show(first.column(n)[k].as_py(), 30) for n in names)
        return f"« {shown} » n'existe pas dans le produit « {fk.product} » ({label})"

    sink.add_many(first.column("__row").to_pylist(), where, text, total=missing.num_rows)
