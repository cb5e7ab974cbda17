"""Data products: create one, import its data (a new data version each time), read its rows
and aggregates through its label and its stewards' rules. Every state change writes the row,
its record version, its outbox event and its audit record in one transaction; every read is
audited per query (product, data version, the rules' fingerprint, rows, columns)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core import buckets
from hypervision.core.errors import Conflict, Forbidden, Invalid, NotFound
from hypervision.core.metrics import metered_import
from hypervision.db import utcnow
from hypervision.identity.principal import Principal
from hypervision.policy import rules as policy_rules
from hypervision.products import derived, export, references, storage

# Re-exported: callers name them through this module.
from hypervision.products.base import (
    check_steward as check_steward,
)
from hypervision.products.base import (
    field_types as field_types,
)
from hypervision.products.base import (
    find_product as find_product,
)
from hypervision.products.base import (
    is_steward as is_steward,
)
from hypervision.products.base import (
    last_imports as last_imports,
)
from hypervision.products.base import (
    rules_of as rules_of,
)
from hypervision.products.base import (
    schema_of as schema_of,
)
from hypervision.products.base import (
    visible_products as visible_products,
)
from hypervision.products.checks import check_constraints
from hypervision.products.models import (
    DataProduct,
    ImportMode,
    ProductRuleChange,
    ProductStatus,
    ProductVersion,
    RuleChangeStatus,
)
from hypervision.products.readers import ReadError, RowError, read_table
from hypervision.products.rules import Reader, RuleSet
from hypervision.products.schema import SchemaError, TableSchema
from hypervision.products.values import typed as _typed
from hypervision.records import access, versions
from hypervision.records.labelling import resolve_label
from hypervision.records.schemas import LabelIn

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
OPEN_RULES: dict[str, Any] = {"rows": [], "rows_default": "allow", "columns": []}
MAX_REPORTED = 100
PAGE_MAX = 500


# --- the product's own record ------------------------------------------------------------------


def _invalid_schema(error: SchemaError) -> Invalid:
    return Invalid(
        f"Schéma de table invalide : {error.fr}",
        f"Invalid table schema: {error.en}",
        code="invalid_schema",
        extra={"problems": error.problems},
    )


def _rls_rule(rules: RuleSet) -> str:
    return rules.rls_predicate(lambda name: f'"{name}"')


E = TypeVar("E", bound=StrEnum)


def _choice(enum: type[E], value: str, field: str, fr: str, en: str) -> E:
    """``value`` as one of ``enum``'s members, or a 422 that lists them."""
    try:
        return enum(value)
    except ValueError:
        names = ", ".join(member.value for member in enum)
        raise Invalid(
            f"{fr} : {names}.",
            f"{en}: {names}.",
            extra={"fields": [{"field": field, "message": "invalid"}]},
        ) from None


async def create_product(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    slug: str,
    name: str,
    description: str,
    tags: Sequence[str],
    table_schema: Mapping[str, Any],
    rules: Mapping[str, Any] | None,
    label: LabelIn | None,
) -> DataProduct:
    """A new product of the steward's domain, in draft, with its (empty) rows table."""
    check_steward(actor)
    assert actor.user_id is not None and actor.organisation_id is not None
    if not SLUG.match(slug):
        raise Invalid(
            "Identifiant invalide : minuscules, chiffres et tirets (2 à 63 caractères).",
            "Invalid identifier: lower-case letters, digits and dashes (2 to 63 characters).",
            extra={"fields": [{"field": "slug", "message": "invalid"}]},
        )
    name = " ".join(name.split())[:160]
    if not name:
        raise Invalid(
            "Donnez un nom au produit.",
            "Give the product a name.",
            extra={"fields": [{"field": "name", "message": "required"}]},
        )
    if await session.scalar(select(DataProduct.id).where(DataProduct.slug == slug)):
        raise Conflict(
            f"L'identifiant « {slug} » est déjà pris.", f"The identifier {slug!r} is taken."
        )
    try:
        schema = TableSchema.from_descriptor(table_schema)
    except SchemaError as error:
        raise _invalid_schema(error) from None
    reserved = [f.name for f in schema.fields if f.name in storage.RESERVED]
    if reserved:
        raise Invalid(
            f"Noms de champ réservés : {', '.join(reserved)}.",
            f"Reserved field names: {', '.join(reserved)}.",
            code="invalid_schema",
        )
    # A RuleError is an Invalid (422) naming each bad node.
    ruleset = RuleSet.parse(rules or OPEN_RULES, field_types(schema), settings.label_levels)
    resolved = await resolve_label(session=session, settings=settings, actor=actor, data=label)
    now = utcnow()
    product = DataProduct(
        slug=slug,
        name=name,
        description=description[:5000],
        tags=sorted({t.strip()[:40] for t in tags if t.strip()})[:20],
        status=ProductStatus.DRAFT.value,
        table_schema=schema.to_descriptor(),
        rules=ruleset.to_tree(),
        data_version=0,
        row_count=0,
        author_id=actor.user_id,
        organisation_id=actor.organisation_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    product.set_label(resolved)
    session.add(product)
    await session.flush()
    table = storage.table_of(product.id, schema)
    dialect = session.get_bind().dialect.name
    statements = storage.create_statements(table, dialect)
    statements += storage.index_statements(table, schema.indexed, dialect)
    if dialect == "postgresql":
        statements += storage.policy_statements(table.name, product.id, _rls_rule(ruleset))
    await storage.run_ddl(session, settings, table.name, statements)
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="product",
        row=product,
        action="create",
        before=None,
        summary={"name": product.name, "slug": product.slug},
    )
    return product


CATALOGUE_MAX = 1000


async def catalogue(
    *, session: AsyncSession, settings: Settings, actor: Principal, q: str = ""
) -> list[DataProduct]:
    """The products the reader may know of, by name; ``q`` matches name, description, tags,
    field names and titles (accents and case ignored); the first 1,000 by name."""
    query = visible_products(session, settings, actor).order_by(DataProduct.name, DataProduct.id)
    words = _fold(q).split()
    if not words:
        rows = list(await session.scalars(query.limit(CATALOGUE_MAX)))
    else:  # every visible product is searched, not only the first page's
        rows = []
        async for product in await session.stream_scalars(query.execution_options(yield_per=500)):
            if all(w in _searchable(product) for w in words):
                rows.append(product)
                if len(rows) == CATALOGUE_MAX:
                    break
    await access.delivered(session, actor, action="product.list", kind="product", rows=rows)
    return rows


def _fold(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _searchable(product: DataProduct) -> str:
    fields = product.table_schema.get("fields", [])
    parts = [product.name, product.slug, product.description, " ".join(product.tags)]
    parts += [f"{f.get('name', '')} {f.get('title', '')}" for f in fields]
    return _fold(" ".join(parts))


# --- importing -------------------------------------------------------------------------------


def _report(errors: Sequence[RowError], total: int, by_field: Mapping[str, int]) -> dict[str, Any]:
    return {
        "rows": [
            {"row": e.row, "field": e.field, "message": e.message} for e in errors[:MAX_REPORTED]
        ],
        "error_count": total,
        "by_field": dict(by_field),
    }


def _refused(errors: Sequence[RowError], total: int, by_field: Mapping[str, int]) -> Invalid:
    first = errors[0]
    where = f"ligne {first.row}" + (f", champ « {first.field} »" if first.field else "")
    where_en = f"row {first.row}" + (f", field {first.field!r}" if first.field else "")
    return Invalid(
        f"{total} erreur(s) dans le fichier : rien n'est importé ({where} : {first.message}).",
        f"{total} error(s) in the file: nothing is imported ({where_en}: {first.message}).",
        code="invalid_rows",
        extra=_report(errors, total, by_field),
    )


# The steps of an import, in order: reading the file, checking types and constraints, writing
# the rows, the stewards' quality rules (``import_data(on_step=…)``).
IMPORT_STEPS = ("read", "check", "write", "quality")


@dataclass
class Imported:
    version: ProductVersion
    product: DataProduct
    warnings: list[str] = field(default_factory=list)


@metered_import  # counted by outcome and timed for /metrics (docs/adr/0032)
async def import_data(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    source: BinaryIO | Path,
    filename: str,
    media_type: str | None,
    mode: str,
    column_map: Mapping[str, str] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Imported:
    """Read, type and check the whole file first (any error refuses it all, naming rows and
    fields), then write it as the product's next data version. ``on_step`` hears each step
    begin (``IMPORT_STEPS``)."""
    step = on_step or (lambda _name: None)
    product = await find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    check_steward(actor, product)
    await derived.refuse_import(session, product)
    chosen = _choice(ImportMode, mode, "mode", "Mode d'import inconnu", "Unknown import mode")
    schema = schema_of(product)
    if chosen is ImportMode.UPSERT and not schema.primary_key:
        raise Invalid(
            "La mise à jour par clé demande une clé primaire dans le schéma.",
            "Upsert needs a primary key in the schema.",
            extra={"fields": [{"field": "mode", "message": "no primary key"}]},
        )
    step("read")
    try:
        result = await asyncio.to_thread(
            read_table,
            source,
            filename=filename,
            media_type=media_type,
            schema=schema,
            max_bytes=settings.product_max_bytes,
            column_map=column_map,
        )
    except ReadError as error:
        raise Invalid(error.fr, error.en, code="unreadable_file") from None
    if result.error_count:
        raise _refused(result.errors, result.error_count, result.error_counts_by_field)
    step("check")
    errors, total, by_field = await asyncio.to_thread(check_constraints, result.table, schema)
    if total:
        raise _refused(errors, total, by_field)
    errors, total, by_field = await references.check_foreign_keys(
        session=session, settings=settings, actor=actor, product=product, schema=schema,
        table=result.table, mode=chosen,
    )  # fmt: skip
    if total:
        raise _refused(errors, total, by_field)
    if result.table.num_rows == 0 and chosen is not ImportMode.REPLACE:
        raise Invalid("Le fichier ne contient aucune ligne.", "The file holds no row.")
    # One import at a time per product: the product row is locked until commit.
    locked = await session.scalar(
        select(DataProduct).where(DataProduct.id == product.id).with_for_update()
    )
    assert locked is not None
    step("write")
    before = versions.snapshot(product)
    number = product.data_version + 1
    table = storage.table_of(product.id, schema)
    await storage.as_system(session, settings)
    counts = await storage.load(
        session,
        table,
        result.table,
        mode=chosen.value,
        version=number,
        key=schema.primary_key,
    )
    row_count = int(await session.scalar(storage.row_count_query(table)) or 0)
    # The stewards' quality rules, over the rows just written (a failing blocking rule refuses
    # the import: the request's transaction rolls back). quality.py builds on this module.
    from hypervision.products import quality

    step("quality")
    flagged = await quality.check_import(
        session=session, settings=settings, product=product, data_version=number
    )
    version = ProductVersion(
        product_id=product.id,
        number=number,
        at=utcnow(),
        actor_id=actor.user_id,
        mode=chosen.value,
        source={
            "filename": filename[:200],
            "format": result.format,
            "encoding": result.encoding,
            "delimiter": result.delimiter,
            "rows_read": result.rows_read,
        },
        rows_added=counts.added,
        rows_changed=counts.changed,
        rows_removed=counts.removed,
        row_count=row_count,
        schema_changes=[],
    )
    session.add(version)
    product.data_version = number
    product.row_count = row_count
    product.version += 1
    product.updated_at = utcnow()
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="product",
        row=product,
        action="import",
        before=before,
        summary={
            "data_version": number,
            "rows_added": counts.added,
            "rows_changed": counts.changed,
            "rows_removed": counts.removed,
        },
    )
    await derived.recompute_uses(
        session=session, settings=settings, actor=actor, product=product, trigger="import"
    )
    warnings = list(flagged)
    if product.status == ProductStatus.DEPRECATED.value:
        warnings.append("Ce produit est obsolète.")
    return Imported(version=version, product=product, warnings=warnings)


async def data_versions(
    *, session: AsyncSession, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> tuple[DataProduct, list[ProductVersion]]:
    product = await find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    rows = list(
        await session.scalars(
            select(ProductVersion)
            .where(ProductVersion.product_id == product.id)
            .order_by(ProductVersion.number.desc())
        )
    )
    await access.delivered(
        session, actor, action="product.versions", kind="product", rows=[product]
    )
    return product, rows


# --- reading -------------------------------------------------------------------------------------

OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "null", "notnull")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str


def parse_condition(raw: str) -> Condition:
    """``field:op:value`` (``op`` one of ``OPERATORS``; ``in`` takes comma-separated values)."""
    parts = raw.split(":", 2)
    if len(parts) == 2 and parts[1] in ("null", "notnull"):
        parts.append("")
    if len(parts) != 3 or parts[1] not in OPERATORS:
        raise Invalid(
            f"Filtre invalide « {raw[:80]} » : attendu champ:opérateur:valeur "
            f"({', '.join(OPERATORS)}).",
            f"Invalid filter {raw[:80]!r}: expected field:operator:value ({', '.join(OPERATORS)}).",
            extra={"fields": [{"field": "filter", "message": "invalid"}]},
        )
    return Condition(parts[0], parts[1], parts[2])


@dataclass
class RowsPage:
    product: DataProduct
    columns: list[str]
    rows: list[dict[str, Any]]
    next_cursor: str | None
    version: int
    hidden_columns: list[str]


class _Reading:
    """One read of a product: the reader, the rules, the columns the reader may see, the rows
    of the asked version the rules let through."""

    def __init__(
        self,
        settings: Settings,
        actor: Principal,
        product: DataProduct,
        dialect: str,
        version: int | None,
    ) -> None:
        self.product = product
        self.schema = schema_of(product)
        self.types = field_types(self.schema)
        self.rules = rules_of(settings, product, self.schema)
        self.reader = Reader.of(settings, actor)
        self.table = storage.table_of(product.id, self.schema)
        names = [f.name for f in self.schema.fields]
        self.columns = self.rules.visible_columns(self.reader, names)
        self.hidden = [n for n in names if n not in self.columns]
        if version is not None and not 1 <= version <= product.data_version:
            raise Invalid(
                f"Version {version} inconnue (versions 1 à {product.data_version}).",
                f"Unknown version {version} (versions 1 to {product.data_version}).",
                extra={"fields": [{"field": "version", "message": "unknown"}]},
            )
        self.version = version
        self.where: list[ColumnElement[bool]] = [storage.at_version(self.table, version)]
        # The leak matrix's RLS-alone run switches the application's filters off.
        if policy_rules.SQL_FILTER_ENABLED:
            columns = {n: self.table.c[n] for n in names}
            self.where.append(self.rules.row_filter(self.reader, columns, dialect))

    def column(self, name: str, what: str) -> Any:
        if name not in self.types:
            raise Invalid(
                f"Champ « {name[:64]} » inconnu ({what}).",
                f"Unknown field {name[:64]!r} ({what}).",
                extra={"fields": [{"field": what, "message": "unknown field"}]},
            )
        if name not in self.columns:
            raise Forbidden(
                f"Le champ « {name} » ne vous est pas accessible ({what}).",
                f"The field {name!r} is not available to you ({what}).",
            )
        if self.types[name] == "geometry" and what != "columns":
            raise Invalid(
                f"Le champ géométrique « {name} » ne se filtre ni ne se trie.",
                f"The geometry field {name!r} cannot be filtered or sorted.",
            )
        return self.table.c[name]

    def condition(self, condition: Condition) -> ColumnElement[bool]:
        column = self.column(condition.field, "filter")
        kind = self.types[condition.field]
        op = condition.op
        if op == "null":
            return column.is_(None)  # type: ignore[no-any-return]
        if op == "notnull":
            return column.is_not(None)  # type: ignore[no-any-return]
        if op == "in":
            values = [_typed(kind, v, condition.field) for v in condition.value.split(",")]
            return column.in_(values[:200])  # type: ignore[no-any-return]
        if op == "contains":
            if kind != "string":
                raise Invalid(
                    "« contains » ne s'applique qu'aux textes.",
                    "'contains' applies to text fields only.",
                )
            escaped = condition.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return func.lower(column).like(f"%{escaped.lower()}%", escape="\\")
        value = _typed(kind, condition.value, condition.field)
        compare = {
            "eq": column.__eq__,
            "ne": column.__ne__,
            "lt": column.__lt__,
            "le": column.__le__,
            "gt": column.__gt__,
            "ge": column.__ge__,
        }[op]
        return compare(value)  # type: ignore[no-any-return]

    def fingerprint(self, extra: Any) -> str:
        body = json.dumps(
            {"rules": self.rules.fingerprint(), "query": extra}, sort_keys=True, default=str
        )
        return hashlib.sha256(body.encode()).hexdigest()[:32]


def reading_for(
    settings: Settings, actor: Principal, product: DataProduct, dialect: str
) -> _Reading:
    """A read of ``product``'s current rows as ``actor`` (its rules, the columns it may see,
    ``condition`` for filters), for a caller that has already found the product through the
    policy for that actor: open data reads as the public principal, which holds no role and so
    cannot pass ``find_product`` (docs/adr/0035)."""
    return _Reading(settings, actor, product, dialect, None)


def _cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def _uncursor(raw: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(raw.encode()))
        if isinstance(values, list) and len(values) == 2 and isinstance(values[1], int):
            return values
    except (ValueError, TypeError):
        pass
    raise Invalid(
        "Curseur de pagination invalide.",
        "Invalid pagination cursor.",
        extra={"fields": [{"field": "after", "message": "invalid"}]},
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):  # PostgreSQL's sum of bigints, avg
        return int(value) if value == value.to_integral_value() else float(value)
    return value


async def read_rows(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    conditions: Sequence[Condition] = (),
    sort: str | None = None,
    after: str | None = None,
    limit: int = 50,
    version: int | None = None,
    columns: Sequence[str] | None = None,
) -> RowsPage:
    """A page of rows in keyset order (``sort``: a field, ``-field`` descending; ties and the
    default order by row number), filtered, with the columns the reader may see."""
    product = await find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    await derived.check_reader(session=session, settings=settings, actor=actor, product=product)
    reading = _Reading(settings, actor, product, access.dialect_of(session), version)
    table = reading.table
    chosen = list(columns) if columns else reading.columns
    selected = [reading.column(name, "columns") for name in chosen]
    where = list(reading.where) + [reading.condition(c) for c in conditions]
    descending = bool(sort and sort.startswith("-"))
    key = reading.column(sort.lstrip("-"), "sort") if sort else None
    row = table.c._row
    if after:
        value, last = _uncursor(after)
        if key is None:
            where.append(row < last if descending else row > last)
        else:
            typed = None if value is None else _typed(reading.types[key.name], str(value), key.name)
            where.append(_after(key, row, typed, last, descending))
    order: list[Any] = []
    if key is not None:
        order += [key.desc().nulls_last() if descending else key.asc().nulls_last()]
    order.append(row.desc() if descending else row.asc())
    limit = max(1, min(limit, PAGE_MAX))
    sort_column = key if key is not None else row
    query = select(row, sort_column, *selected).where(*where).order_by(*order).limit(limit + 1)
    found = (await session.execute(query)).all()
    more = len(found) > limit
    found = found[:limit]
    rows = [
        {"_row": r[0], **{n: _plain(v) for n, v in zip(chosen, r[2:], strict=True)}} for r in found
    ]
    cursor = _cursor([_plain(found[-1][1]), int(found[-1][0])]) if more and found else None
    await audit.record(
        session=session,
        actor=actor,
        action="product.rows",
        resource_type="product",
        resource_ids=[product.id],
        labels=[product.label_level],
        detail={
            "data_version": version or product.data_version,
            "predicate": reading.fingerprint(
                {"where": [c.__dict__ for c in conditions], "sort": sort, "after": after}
            ),
            "rows": len(rows),
            "columns": chosen,
        },
    )
    return RowsPage(
        product=product,
        columns=chosen,
        rows=rows,
        next_cursor=cursor,
        version=version or product.data_version,
        hidden_columns=reading.hidden,
    )


def _after(key: Any, row: Any, value: Any, last: int, descending: bool) -> ColumnElement[bool]:
    """Rows after (``value``, ``last``) in the order key NULLS LAST, row number."""
    if value is None:  # within the trailing NULLs
        return and_(key.is_(None), row < last if descending else row > last)
    beyond = key < value if descending else key > value
    tie = and_(key == value, row < last if descending else row > last)
    return or_(beyond, tie, key.is_(None))


AGGREGATES = ("count", "sum", "avg", "min", "max")


@dataclass
class Aggregated:
    product: DataProduct
    group_by: list[str]
    measures: list[str]
    rows: list[dict[str, Any]]
    version: int


def parse_measure(raw: str) -> tuple[str, str | None]:
    """``count`` or ``fn:field`` (``fn`` one of ``AGGREGATES``)."""
    if raw == "count":
        return "count", None
    fn, _, name = raw.partition(":")
    if fn not in AGGREGATES or not name:
        raise Invalid(
            f"Mesure invalide « {raw[:80]} » : count, ou sum|avg|min|max:champ.",
            f"Invalid measure {raw[:80]!r}: count, or sum|avg|min|max:field.",
            extra={"fields": [{"field": "measure", "message": "invalid"}]},
        )
    return fn, name


async def aggregate(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    group_by: Sequence[str],
    measures: Sequence[str],
    conditions: Sequence[Condition] = (),
    version: int | None = None,
) -> Aggregated:
    """Grouped aggregates over the rows the rules let through; a hidden column can neither be
    grouped by nor measured (nor filtered)."""
    product = await find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    await derived.check_reader(session=session, settings=settings, actor=actor, product=product)
    dialect = access.dialect_of(session)
    reading = _Reading(settings, actor, product, dialect, version)
    groups = [_group(reading, item, dialect) for item in group_by[:5]]
    bucketed = {g.name for g, item in zip(groups, group_by, strict=False) if "@" in item}
    parsed = [parse_measure(m) for m in (measures or ["count"])[:10]]
    selected: list[Any] = []
    labels: list[str] = []
    for fn, name in parsed:
        if name is None:
            selected.append(func.count().label("count"))
            labels.append("count")
            continue
        column = reading.column(name, "measure")
        if fn in ("sum", "avg") and reading.types[name] not in ("integer", "number"):
            raise Invalid(
                f"« {fn} » demande un champ numérique (« {name} » ne l'est pas).",
                f"{fn!r} needs a numeric field ({name!r} is not).",
            )
        label = f"{fn}_{name}"
        selected.append(getattr(func, fn)(column).label(label))
        labels.append(label)
    where = list(reading.where) + [reading.condition(c) for c in conditions]
    query = (
        select(*groups, *selected).where(*where).group_by(*groups).order_by(*groups).limit(10_000)
    )
    names = [g.name for g in groups] + labels
    rows = [
        {n: buckets.label(v) if n in bucketed else _plain(v) for n, v in zip(names, r, strict=True)}
        for r in (await session.execute(query)).all()
    ]
    await audit.record(
        session=session,
        actor=actor,
        action="product.aggregate",
        resource_type="product",
        resource_ids=[product.id],
        labels=[product.label_level],
        detail={
            "data_version": version or product.data_version,
            "predicate": reading.fingerprint(
                {
                    "where": [c.__dict__ for c in conditions],
                    "group_by": list(group_by),
                    "measures": list(measures),
                }
            ),
            "rows": len(rows),
            "columns": sorted({*(g.split("@")[0] for g in group_by), *(n for _, n in parsed if n)}),
        },
    )
    return Aggregated(
        product=product,
        group_by=[g.name for g in groups],
        measures=labels,
        rows=rows,
        version=version or product.data_version,
    )


def _group(reading: _Reading, item: str, dialect: str) -> Any:
    """A column to group by, or ``field@hour|day|week|month``: the time bucket of a date or
    datetime field (Paris time; ``hypervision.core.buckets``), named as asked."""
    name, at, unit = item.partition("@")
    column = reading.column(name, "group_by")  # unknown: 422; hidden: 403
    if not at:
        return column
    kind = reading.types[name]
    if kind not in ("date", "datetime"):
        raise Invalid(
            f"« {name[:64]} » n'est pas une date : pas de regroupement « @{unit[:20]} ».",
            f"{name[:64]!r} is not a date: no '@{unit[:20]}' bucket.",
            extra={"fields": [{"field": "group_by", "message": "not a date field"}]},
        )
    buckets.check_unit(unit, field=name, is_date=kind == "date")
    return buckets.expression(column, unit, dialect, is_date=kind == "date").label(item)


# --- life cycle and rules ------------------------------------------------------------------------

TRANSITIONS = {
    ProductStatus.DRAFT: {ProductStatus.ACTIVE},
    ProductStatus.ACTIVE: {ProductStatus.DEPRECATED},
    ProductStatus.DEPRECATED: {ProductStatus.ACTIVE},
}


async def set_status(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    status: str,
    successor_id: uuid.UUID | None = None,
) -> DataProduct:
    """draft → active → deprecated (→ active again); a deprecated product may name its
    successor, a product the steward can see."""
    product = await find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    check_steward(actor, product)
    wanted = _choice(ProductStatus, status, "status", "Statut inconnu", "Unknown status")
    current = ProductStatus(product.status)
    if wanted not in TRANSITIONS[current]:
        raise Conflict(
            f"Passage de « {current.value} » à « {wanted.value} » impossible.",
            f"Cannot go from {current.value!r} to {wanted.value!r}.",
        )
    if successor_id is not None:
        if wanted is not ProductStatus.DEPRECATED or successor_id == product.id:
            raise Invalid(
                "Seul un produit obsolète nomme un successeur (un autre produit).",
                "Only a deprecated product names a successor (another product).",
                extra={"fields": [{"field": "successor_id", "message": "invalid"}]},
            )
        await find_product(session=session, settings=settings, actor=actor, product_id=successor_id)
    before = versions.snapshot(product)
    product.status = wanted.value
    product.successor_id = successor_id if wanted is ProductStatus.DEPRECATED else None
    product.version += 1
    product.updated_at = utcnow()
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="product",
        row=product,
        action="status",
        before=before,
        summary={"status": product.status},
    )
    return product


async def _apply_rules(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product: DataProduct,
    ruleset: RuleSet,
    action: str,
) -> None:
    """The new rules on the product record and in its table's read policy, one transaction."""
    before = versions.snapshot(product)
    product.rules = ruleset.to_tree()
    product.version += 1
    product.updated_at = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        table = product.storage_table
        await storage.run_ddl(
            session,
            settings,
            table,
            storage.policy_statements(table, product.id, _rls_rule(ruleset)),
        )
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="product",
        row=product,
        action=action,
        before=before,
        summary={"rules": ruleset.fingerprint()},
    )
    await derived.recompute_uses(
        session=session, settings=settings, actor=actor, product=product, trigger="rules"
    )


async def propose_rules(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    tree: Mapping[str, Any],
    reason: str = "",
) -> tuple[DataProduct, ProductRuleChange | None]:
    """New rules for a product: applied at once when they cannot widen access; otherwise kept
    as a change waiting for a second steward of the domain (returned)."""
    product = await find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    check_steward(actor, product)
    assert actor.user_id is not None
    schema = schema_of(product)
    ruleset = RuleSet.parse(tree, field_types(schema), settings.label_levels)
    if not ruleset.widens(rules_of(settings, product, schema)):
        await _apply_rules(session, settings, actor, product, ruleset, "rules")
        return product, None
    change = ProductRuleChange(
        product_id=product.id,
        rules=ruleset.to_tree(),
        reason=reason[:2000],
        status=RuleChangeStatus.PENDING.value,
        proposed_by=actor.user_id,
        proposed_at=utcnow(),
    )
    session.add(change)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="product.rules_proposed",
        resource_type="product",
        resource_ids=[product.id, change.id],
        labels=[product.label_level],
        detail={"rules": ruleset.fingerprint(), "widens": True},
    )
    return product, change


async def decide_rules(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    change_id: uuid.UUID,
    approve: bool,
) -> ProductRuleChange:
    """A second steward of the domain (never the proposer) applies or rejects a change."""
    product = await find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    check_steward(actor, product)
    change = await session.scalar(
        select(ProductRuleChange)
        .where(ProductRuleChange.id == change_id, ProductRuleChange.product_id == product.id)
        .with_for_update()
    )
    if change is None:
        raise NotFound("Demande de changement introuvable.", "Change request not found.")
    if change.status != RuleChangeStatus.PENDING.value:
        raise Conflict("Cette demande est déjà tranchée.", "This request is already decided.")
    if change.proposed_by == actor.user_id:
        raise Forbidden(
            "Un second gestionnaire doit valider : pas celui qui a proposé.",
            "A second steward must decide: not the one who proposed.",
        )
    change.status = (RuleChangeStatus.APPLIED if approve else RuleChangeStatus.REJECTED).value
    change.decided_by = actor.user_id
    change.decided_at = utcnow()
    if approve:
        ruleset = RuleSet.parse(
            change.rules, field_types(schema_of(product)), settings.label_levels
        )
        await _apply_rules(session, settings, actor, product, ruleset, "rules")
    else:
        await audit.record(
            session=session,
            actor=actor,
            action="product.rules_rejected",
            resource_type="product",
            resource_ids=[product.id, change.id],
            labels=[product.label_level],
        )
    return change


async def pending_rule_changes(
    *, session: AsyncSession, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> list[ProductRuleChange]:
    product = await find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    check_steward(actor, product)
    changes = list(
        await session.scalars(
            select(ProductRuleChange)
            .where(
                ProductRuleChange.product_id == product.id,
                ProductRuleChange.status == RuleChangeStatus.PENDING.value,
            )
            .order_by(ProductRuleChange.proposed_at)
        )
    )
    await audit.record(
        session=session,
        actor=actor,
        action="product.rule_changes",
        resource_type="product",
        resource_ids=[product.id, *(c.id for c in changes)],
        labels=[product.label_level],
    )
    return changes


# --- exports ---------------------------------------------------------------------------------


@dataclass
class Exported:
    product: DataProduct
    file: IO[bytes]
    format: str
    filename: str
    rows: int


EXPORT_BATCH = 5000


async def export_rows(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    fmt: str,
    conditions: Sequence[Condition] = (),
    version: int | None = None,
    action: str = "product.export",
    limit: int | None = None,
) -> Exported:
    """Every row the reader may see (filtered; the first ``limit``), in the columns they may
    see, as a file in ``fmt`` (CSV, JSON, GeoJSON with the first geometry field, Parquet); one
    audit record (``action``) with the row count. The caller throttles exports."""
    if fmt not in export.FORMATS:
        names = ", ".join(export.FORMATS)
        raise Invalid(
            f"Format d'export inconnu : {names}.",
            f"Unknown export format: {names}.",
            extra={"fields": [{"field": "format", "message": "invalid"}]},
        )
    product = await find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    await derived.check_reader(session=session, settings=settings, actor=actor, product=product)
    reading = _Reading(settings, actor, product, access.dialect_of(session), version)
    columns = reading.columns
    if fmt == "geojson" and not any(reading.types[c] == "geometry" for c in columns):
        raise Invalid(
            "Ce produit n'a pas de champ géométrique que vous puissiez lire : exportez en CSV, "
            "JSON ou Parquet.",
            "This product has no geometry field you may read: export as CSV, JSON or Parquet.",
            extra={"fields": [{"field": "format", "message": "no geometry"}]},
        )
    where = list(reading.where) + [reading.condition(c) for c in conditions]
    table = reading.table
    query = (
        select(*(table.c[n] for n in columns))
        .where(*where)
        .order_by(table.c._row)
        .limit(limit)
        .execution_options(yield_per=EXPORT_BATCH)
    )
    result = await session.stream(query)

    async def batches() -> AsyncIterator[Sequence[Sequence[Any]]]:
        async for partition in result.partitions():
            yield partition

    try:
        file, count = await export.write(fmt, columns, reading.types, batches())
    finally:
        await result.close()
    data_version = version or product.data_version
    await audit.record(
        session=session,
        actor=actor,
        action=action,
        resource_type="product",
        resource_ids=[product.id],
        labels=[product.label_level],
        detail={
            "data_version": data_version,
            "predicate": reading.fingerprint({"where": [c.__dict__ for c in conditions]}),
            "rows": count,
            "columns": list(columns),
            "format": fmt,
        },
    )
    return Exported(
        product=product,
        file=file,
        format=fmt,
        filename=f"{product.slug}-v{data_version}.{export.FORMATS[fmt].extension}",
        rows=count,
    )


# --- schema changes --------------------------------------------------------------------------


async def change_schema(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    table_schema: Mapping[str, Any],
) -> tuple[DataProduct, list[str]]:
    """A new schema for a product: fields added (optional ones: stored rows have no value for
    them), titles, descriptions and constraints changed (checked from the next import on).
    A change that would break stored rows or the rules — a field removed or retyped, another
    primary key, a new required field — is refused with the list of what breaks."""
    product = await find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    check_steward(actor, product)
    old = schema_of(product)
    try:
        new = TableSchema.from_descriptor(table_schema)
    except SchemaError as error:
        raise _invalid_schema(error) from None
    kept = {f.name: f for f in new.fields}
    added = [f for f in new.fields if f.name not in old.field_names]
    breaks = [f"champ supprimé : « {f.name} »" for f in old.fields if f.name not in kept]
    breaks += [
        f"champ « {f.name} » : le type ne change pas sur des données stockées"
        for f in old.fields
        if f.name in kept and kept[f.name].type != f.type
    ]
    breaks += [f"nouveau champ obligatoire : « {f.name} »" for f in added if f.required]
    breaks += [f"nom de champ réservé : « {f.name} »" for f in added if f.name in storage.RESERVED]
    if new.primary_key != old.primary_key:
        breaks.append("la clé primaire ne change pas sur des données stockées")
    breaks += await derived.schema_breaks(
        session=session,
        settings=settings,
        actor=actor,
        product=product,
        new_fields=field_types(new),
    )
    if breaks:
        raise Conflict(
            f"Ce changement de schéma casserait les données ou les règles : {' ; '.join(breaks)}.",
            f"This schema change would break the data or the rules ({len(breaks)} problem(s)).",
            code="schema_change_refused",
            extra={"problems": breaks},
        )
    changes = old.changes(new)
    if not changes and new.to_descriptor() == old.to_descriptor():
        raise Conflict("Le schéma est déjà celui-ci.", "The schema is already this one.")
    # Still valid over the new fields (a RuleError is an Invalid naming each bad node).
    RuleSet.parse(product.rules, field_types(new), settings.label_levels)
    dialect = session.get_bind().dialect.name
    table = storage.table_of(product.id, new)
    statements = storage.add_column_statements(table, [f.name for f in added], dialect)
    statements += storage.index_statements(
        table, [n for n in old.indexed if n not in new.indexed], dialect, drop=True
    )
    statements += storage.index_statements(
        table, [n for n in new.indexed if n not in old.indexed], dialect
    )
    if statements:
        await storage.run_ddl(session, settings, table.name, statements)
    before = versions.snapshot(product)
    product.table_schema = new.to_descriptor()
    product.version += 1
    product.updated_at = utcnow()
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="product",
        row=product,
        action="schema",
        before=before,
        summary={"changes": changes[:50]},
    )
    return product, changes
