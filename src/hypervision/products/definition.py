"""The definition of a derived product (ADR 0028): one or two sources, joined on keys, rows
filtered like the rows API's ``filter``, then either columns chosen or groups with
aggregates. Validated by Pydantic (structure) and against the sources' schemas and what the
defining steward may read of them (fields, types); compiled to one SQL query whose result is
the derived product's next data version, and to the Table Schema of that result.

A JSON definition::

    {"sources": [{"product": "<id>", "alias": "h"}, {"product": "<id>", "alias": "r"}],
     "join": {"how": "inner" | "left", "on": [{"left": "field", "right": "field"}]},
     "where": [{"field": "h.service", "op": "ne", "value": "SAMU"}],
     "columns": [{"field": "h.hopital", "name": "hopital"}],
     "group_by": ["h.departement"],
     "measures": [{"fn": "sum", "field": "h.lits", "name": "lits"}]}

A field is named ``alias.field`` or, when only one source has it, ``field``. Aliases default
to ``a`` and ``b``. ``columns`` and ``group_by`` exclude each other; without either, every
field of the sources the steward may read is kept (a join drops the right side's keys).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import ColumnElement, Select, Table, and_, func, select
from sqlalchemy.sql.elements import Label as SqlLabel

from hypervision.config import Settings
from hypervision.core.errors import Invalid
from hypervision.products import storage
from hypervision.products.models import DataProduct
from hypervision.products.rules import RuleSet
from hypervision.products.schema import TableSchema
from hypervision.products.values import typed

IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
Operator = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "null", "notnull"]
Aggregate = Literal["count", "sum", "avg", "min", "max"]
MAX_ROWS = 1_000_000  # a derived product's rows, per computation


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceRef(_Model):
    product: uuid.UUID
    alias: str | None = Field(default=None, pattern=IDENT)


class JoinKey(_Model):
    left: str = Field(min_length=1, max_length=130)
    right: str = Field(min_length=1, max_length=130)


class Join(_Model):
    how: Literal["inner", "left"] = "inner"
    on: list[JoinKey] = Field(min_length=1, max_length=5)


class Where(_Model):
    field: str = Field(min_length=1, max_length=130)
    op: Operator
    value: str = Field(default="", max_length=400)


class Column(_Model):
    field: str = Field(min_length=1, max_length=130)
    name: str | None = Field(default=None, pattern=IDENT)


class Measure(_Model):
    fn: Aggregate
    field: str | None = Field(default=None, max_length=130)
    name: str = Field(pattern=IDENT)


class Definition(_Model):
    sources: list[SourceRef] = Field(min_length=1, max_length=2)
    join: Join | None = None
    where: list[Where] = Field(default_factory=list, max_length=20)
    columns: list[Column] = Field(default_factory=list, max_length=100)
    group_by: list[str] = Field(default_factory=list, max_length=5)
    measures: list[Measure] = Field(default_factory=list, max_length=10)

    def aliases(self) -> list[str]:
        return [s.alias or "ab"[i] for i, s in enumerate(self.sources)]


def bad(path: str, fr: str, en: str) -> Invalid:
    """A 422 naming the definition's bad field."""
    return Invalid(
        f"Définition invalide ({path}) : {fr}",
        f"Invalid definition ({path}): {en}",
        code="invalid_definition",
        extra={"fields": [{"field": path, "message": en}]},
    )


def parse(raw: Mapping[str, Any]) -> Definition:
    """The definition, or a 422 naming every bad field (``definition.sources[1].product``)."""
    try:
        definition = Definition.model_validate(raw)
    except ValidationError as error:
        fields = []
        for problem in error.errors():
            path = "definition" + "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem["loc"]
            )
            fields.append({"field": path, "message": problem["msg"]})
        first = fields[0]
        raise Invalid(
            f"Définition invalide ({first['field']}) : {first['message']}.",
            f"Invalid definition ({first['field']}): {first['message']}.",
            code="invalid_definition",
            extra={"fields": fields},
        ) from None
    aliases = definition.aliases()
    if len(set(aliases)) != len(aliases):
        raise bad(
            "definition.sources", "deux sources ont le même alias.", "two sources share an alias."
        )
    if len({s.product for s in definition.sources}) != len(definition.sources):
        raise bad("definition.sources", "une source figure deux fois.", "a source appears twice.")
    if (len(definition.sources) == 2) != (definition.join is not None):
        raise bad(
            "definition.join",
            "une jointure demande deux sources, et deux sources une jointure.",
            "a join needs two sources, and two sources need a join.",
        )
    if definition.columns and (definition.group_by or definition.measures):
        raise bad(
            "definition.columns",
            "choisissez des colonnes ou des regroupements, pas les deux.",
            "choose columns or groups, not both.",
        )
    if definition.group_by and not definition.measures:
        raise bad("definition.measures", "un regroupement demande au moins une mesure.",
                  "a group by needs at least one measure.")  # fmt: skip
    return definition


@dataclass
class Source:
    """One source as the computation reads it: its table at its current version, the fields
    the defining steward may read, and the rows its rules let through for them (none of its
    rules when it is read whole: a source of the steward's own domain)."""

    product: DataProduct
    alias: str
    table: Table
    types: dict[str, str]
    descriptors: dict[str, dict[str, Any]]
    readable: list[str]
    where: list[ColumnElement[bool]]
    used: set[str] = field(default_factory=set)


@dataclass
class Output:
    name: str
    expression: Any
    descriptor: dict[str, Any]


@dataclass
class Plan:
    """The compiled definition: its query, the derived product's Table Schema."""

    outputs: list[Output]
    query: Select[Any]
    primary_key: list[str]

    @property
    def table_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"fields": [o.descriptor for o in self.outputs]}
        if self.primary_key:
            schema["primaryKey"] = list(self.primary_key)
        return schema


def schema_of(product: DataProduct) -> TableSchema:
    return TableSchema.from_descriptor(product.table_schema)


def field_types(schema: TableSchema) -> dict[str, str]:
    return {f.name: f.type for f in schema.fields}


def rules_of(settings: Settings, product: DataProduct, schema: TableSchema) -> RuleSet:
    """The stewards' rules of ``product`` (as ``service.rules_of``, which builds on this
    package's lower modules only)."""
    return RuleSet.parse(product.rules, field_types(schema), settings.label_levels)


def source_of(product: DataProduct, alias: str) -> Source:
    schema = schema_of(product)
    table = storage.table_of(product.id, schema)
    descriptors = {f["name"]: dict(f) for f in product.table_schema.get("fields", [])}
    names = [f.name for f in schema.fields]
    return Source(
        product=product,
        alias=alias,
        table=table,
        types=field_types(schema),
        descriptors=descriptors,
        readable=names,
        where=[storage.at_version(table, None)],
    )


class _Resolver:
    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = list(sources)

    def __call__(self, ref: str, path: str, *, plain: bool = False) -> tuple[Source, str]:
        """``alias.field`` or ``field`` → (source, field), the field readable by the steward;
        ``plain``: a geometry is refused (filters, keys, groups, measures)."""
        alias, dot, name = ref.partition(".")
        if dot:
            found = [s for s in self.sources if s.alias == alias]
            if not found:
                raise bad(path, f"source « {alias} » inconnue.", f"unknown source {alias!r}.")
        else:
            name = ref
            found = [s for s in self.sources if name in s.types]
            if len(found) > 1:
                raise bad(path, f"« {name} » est dans les deux sources : préfixez-le.",
                          f"{name!r} is in both sources: prefix it.")  # fmt: skip
        source = found[0] if found else self.sources[0]
        if name not in source.types:
            raise bad(path, f"champ « {name} » inconnu.", f"unknown field {name!r}.")
        if name not in source.readable:
            raise bad(path, f"le champ « {name} » ne vous est pas lisible.",
                      f"the field {name!r} is not readable by you.")  # fmt: skip
        if plain and source.types[name] == "geometry":
            raise bad(path, "un champ géométrique ne sert qu'en colonne.",
                      "a geometry field may only be a column.")  # fmt: skip
        source.used.add(name)
        return source, name


def _condition(source: Source, name: str, where: Where) -> ColumnElement[bool]:
    column = source.table.c[name]
    kind = source.types[name]
    if where.op == "null":
        return column.is_(None)
    if where.op == "notnull":
        return column.is_not(None)
    if where.op == "in":
        return column.in_([typed(kind, v, name) for v in where.value.split(",")][:200])
    if where.op == "contains":
        if kind != "string":
            raise Invalid("« contains » ne s'applique qu'aux textes.",
                          "'contains' applies to text fields only.")  # fmt: skip
        escaped = where.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return func.lower(column).like(f"%{escaped.lower()}%", escape="\\")
    value = typed(kind, where.value, name)
    return {
        "eq": column.__eq__,
        "ne": column.__ne__,
        "lt": column.__lt__,
        "le": column.__le__,
        "gt": column.__gt__,
        "ge": column.__ge__,
    }[where.op](value)


def _descriptor(source: Source, name: str, out: str) -> dict[str, Any]:
    original = source.descriptors.get(name, {})
    kept: dict[str, Any] = {k: original[k] for k in ("title", "description") if k in original}
    return {"name": out, "type": source.types[name], **kept}


MEASURE_TITLES = {"count": "nombre de lignes", "sum": "somme", "avg": "moyenne",
                  "min": "minimum", "max": "maximum"}  # fmt: skip


def compile_plan(definition: Definition, sources: Sequence[Source]) -> Plan:
    """The query and schema of ``definition`` over ``sources`` (in the definition's order);
    a 422 naming the definition's field for any reference it cannot honour."""
    resolve = _Resolver(sources)
    left = sources[0]
    from_: Any = left.table
    where: list[ColumnElement[bool]] = list(left.where)
    if definition.join is not None:
        right = sources[1]
        on: list[ColumnElement[bool]] = []
        for i, key in enumerate(definition.join.on):
            _, lname = resolve(
                f"{left.alias}.{key.left}", f"definition.join.on[{i}].left", plain=True
            )
            _, rname = resolve(
                f"{right.alias}.{key.right}", f"definition.join.on[{i}].right", plain=True
            )
            if left.types[lname] != right.types[rname]:
                raise bad(f"definition.join.on[{i}]", "les deux clés n'ont pas le même type.",
                          "the two keys differ in type.")  # fmt: skip
            on.append(left.table.c[lname] == right.table.c[rname])
        # The right side's version and rules go in ON: a left join keeps unmatched rows.
        from_ = left.table.join(
            right.table, and_(*on, *right.where), isouter=definition.join.how == "left"
        )
    for i, condition in enumerate(definition.where):
        source, name = resolve(condition.field, f"definition.where[{i}].field", plain=True)
        where.append(_condition(source, name, condition))
    outputs: list[Output] = []
    groups: list[Any] = []
    primary_key: list[str] = []
    if definition.group_by or definition.measures:
        for i, ref in enumerate(definition.group_by):
            source, name = resolve(ref, f"definition.group_by[{i}]", plain=True)
            column = source.table.c[name]
            groups.append(column)
            outputs.append(Output(name, column, _descriptor(source, name, name)))
        primary_key = [o.name for o in outputs]
        for i, measure in enumerate(definition.measures):
            outputs.append(_measure(resolve, measure, f"definition.measures[{i}]"))
    else:
        chosen = definition.columns or _every_column(definition, sources)
        for i, column_ref in enumerate(chosen):
            source, name = resolve(column_ref.field, f"definition.columns[{i}].field")
            out = column_ref.name or name
            outputs.append(Output(out, source.table.c[name], _descriptor(source, name, out)))
        if definition.join is None:
            source_key = list(schema_of(left.product).primary_key)
            renamed = {
                column.field.split(".")[-1]: o.name
                for column, o in zip(chosen, outputs, strict=True)
            }
            if source_key and all(k in renamed for k in source_key):
                primary_key = [renamed[k] for k in source_key]
    names = [o.name for o in outputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise bad("definition.columns", f"noms de colonne en double : {', '.join(duplicates)} ; "
                  "nommez-les (« name »).", f"duplicate column names: {', '.join(duplicates)}; "
                  "name them.")  # fmt: skip
    if any(n in storage.RESERVED for n in names):
        raise bad("definition.columns", "noms réservés (_row, _from, _to).",
                  "reserved names (_row, _from, _to).")  # fmt: skip
    selected: list[SqlLabel[Any]] = [o.expression.label(o.name) for o in outputs]
    query = select(*selected).select_from(from_).where(*where)
    if groups:
        query = query.group_by(*groups).order_by(*groups)
    else:
        query = query.order_by(*(s.table.c._row for s in sources))
    return Plan(outputs=outputs, query=query.limit(MAX_ROWS + 1), primary_key=primary_key)


def _every_column(definition: Definition, sources: Sequence[Source]) -> list[Column]:
    """Every field the steward may read, the right side's join keys left out."""
    columns = [Column(field=f"{sources[0].alias}.{n}") for n in sources[0].readable]
    if definition.join is not None:
        keys = {k.right for k in definition.join.on}
        right = sources[1]
        columns += [Column(field=f"{right.alias}.{n}") for n in right.readable if n not in keys]
    return columns


def _measure(resolve: _Resolver, measure: Measure, path: str) -> Output:
    title = MEASURE_TITLES[measure.fn]
    if measure.fn == "count":
        expression: Any = func.count()
        if measure.field:
            source, name = resolve(measure.field, f"{path}.field", plain=True)
            expression = func.count(source.table.c[name])
        return Output(measure.name, expression,
                      {"name": measure.name, "type": "integer", "title": title})  # fmt: skip
    if not measure.field:
        raise bad(f"{path}.field", f"« {measure.fn} » demande un champ.",
                  f"{measure.fn!r} needs a field.")  # fmt: skip
    source, name = resolve(measure.field, f"{path}.field", plain=True)
    kind = source.types[name]
    if measure.fn in ("sum", "avg") and kind not in ("integer", "number"):
        raise bad(f"{path}.field", f"« {measure.fn} » demande un champ numérique.",
                  f"{measure.fn!r} needs a numeric field.")  # fmt: skip
    out_type = "number" if measure.fn == "avg" else kind
    column = source.table.c[name]
    original = source.descriptors.get(name, {}).get("title") or name
    return Output(
        measure.name,
        getattr(func, measure.fn)(column),
        {"name": measure.name, "type": out_type, "title": f"{title} de {original}"},
    )
