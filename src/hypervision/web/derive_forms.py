"""The derived product form without code (issue 17, ADR 0028): what a steward fills in — the
sources, a join on keys, a few filters, then either columns kept or groups with figures —
read from the posted form (or the address, for the first step) and turned into the JSON
definition that ``products.derived_create`` validates and computes.

The form only offers the fields the steward may read of each source (``field_choices``,
from the same ``defs.Source`` the definition's validation uses); what it sends is checked
again by that validation, whose refusal names a path of the definition that ``control_of``
turns back into the control to correct."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import ImmutableMultiDict

from hypervision.core.errors import AppError, Conflict, Invalid
from hypervision.core.i18n import N_
from hypervision.products import definition as defs
from hypervision.products.schema import slugify_field

KEYS, FILTERS, GROUPS, MEASURES = 2, 3, 2, 3  # rows of each kind the form offers
OPERATORS = {  # the rows API's operators in words (the rules form's words)
    "eq": N_("is"),
    "ne": N_("is not"),
    "lt": N_("is less than"),
    "le": N_("is at most"),
    "gt": N_("is more than"),
    "ge": N_("is at least"),
    "in": N_("is one of (separate with commas)"),
    "contains": N_("contains"),
    "null": N_("is empty"),
    "notnull": N_("is not empty"),
}
FUNCTIONS = {
    "count": N_("Number of rows"),
    "sum": N_("Sum"),
    "avg": N_("Average"),
    "min": N_("Smallest value"),
    "max": N_("Largest value"),
}
JOINS = {
    "inner": N_("Only the rows found in both products"),
    "left": N_("Every row of the first product, completed when found in the second"),
}
SHAPES = {
    "columns": N_("Keep some columns, row by row"),
    "groups": N_("Group the rows and compute figures"),
}


Values = ImmutableMultiDict[str, object]  # a posted form or a query string


class FormProblem(Invalid):
    """A form the definition cannot even be built from, naming the control to correct."""

    def __init__(self, control: str, fr: str, en: str) -> None:
        super().__init__(fr, en, code="invalid_definition")
        self.control = control


@dataclass(frozen=True)
class FieldChoice:
    value: str  # what the form sends: "a.lits"
    alias: str  # the source's alias: "a" (first) or "b" (second)
    name: str
    words: str  # what the steward reads: the field's title, and its product's name
    plain: bool  # filters, keys, groups and figures take it (not a geometry)


def field_choices(sources: Sequence[defs.Source]) -> list[FieldChoice]:
    """The fields the steward may read of each source (``Source.readable``: a field that
    another domain's rules hide from them is not there), in the sources' order."""
    choices: list[FieldChoice] = []
    for source in sources:
        for name in source.readable:
            title = str(source.descriptors.get(name, {}).get("title") or name)
            words = f"{title} — {source.product.name}" if len(sources) > 1 else title
            plain = source.types[name] != "geometry"
            choices.append(FieldChoice(f"{source.alias}.{name}", source.alias, name, words, plain))
    return choices


@dataclass
class Filter:
    field: str = ""
    op: str = "eq"
    value: str = ""


@dataclass
class Measure:
    fn: str = ""
    field: str = ""
    name: str = ""


@dataclass
class Rows:
    """The form's row behind each item of the definition's lists (blank rows are skipped)."""

    keys: list[int] = field(default_factory=list)
    filters: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    measures: list[int] = field(default_factory=list)


def _text(values: Values, name: str, limit: int) -> str:
    found = values.get(name)
    return found.strip()[:limit] if isinstance(found, str) else ""


@dataclass
class DeriveForm:
    source: str = ""
    source2: str = ""
    name: str = ""
    slug: str = ""
    description: str = ""
    how: str = "inner"
    keys: list[tuple[str, str]] = field(default_factory=lambda: [("", "")] * KEYS)
    filters: list[Filter] = field(default_factory=lambda: [Filter() for _ in range(FILTERS)])
    shape: str = "columns"
    columns: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=lambda: [""] * GROUPS)
    measures: list[Measure] = field(default_factory=lambda: [Measure() for _ in range(MEASURES)])

    @classmethod
    def of(cls, values: Values) -> DeriveForm:
        """The form as sent (unknown choices are left to the definition's validation)."""
        op = [_text(values, f"filter_op_{i}", 10) for i in range(FILTERS)]
        fn = [_text(values, f"measure_fn_{i}", 10) for i in range(MEASURES)]
        return cls(
            source=_text(values, "source", 40),
            source2=_text(values, "source2", 40),
            name=_text(values, "name", 160),
            slug=_text(values, "slug", 63),
            description=_text(values, "description", 5000),
            how="left" if _text(values, "join_how", 10) == "left" else "inner",
            keys=[
                (_text(values, f"join_left_{i}", 130), _text(values, f"join_right_{i}", 130))
                for i in range(KEYS)
            ],
            filters=[
                Filter(
                    _text(values, f"filter_field_{i}", 130),
                    op[i] if op[i] in OPERATORS else "eq",
                    _text(values, f"filter_value_{i}", 400),
                )
                for i in range(FILTERS)
            ],
            shape="groups" if _text(values, "shape", 10) == "groups" else "columns",
            columns=[str(c)[:130] for c in values.getlist("column")][:100],
            groups=[_text(values, f"group_{i}", 130) for i in range(GROUPS)],
            measures=[
                Measure(
                    fn[i] if fn[i] in FUNCTIONS else "",
                    _text(values, f"measure_field_{i}", 130),
                    _text(values, f"measure_name_{i}", 63),
                )
                for i in range(MEASURES)
            ],
        )

    def product_slug(self) -> str:
        """The identifier typed, or one made from the name: "Lits par département" ->
        "lits-par-departement"."""
        if self.slug:
            return self.slug
        text = unicodedata.normalize("NFKD", self.name.casefold())
        text = "".join(c for c in text if not unicodedata.combining(c))
        return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:63].rstrip("-")

    def definition(self) -> tuple[dict[str, Any], Rows]:
        """The JSON definition the form describes, and the form's row behind each of its
        items; a ``FormProblem`` when the form is incomplete (a filter's value without its
        field, a figure without the name of its column, …)."""
        rows = Rows()
        sources = [{"product": self.source}] + ([{"product": self.source2}] if self.source2 else [])
        definition: dict[str, Any] = {"sources": sources}
        if self.source2:
            definition["join"] = {"how": self.how, "on": self._keys(rows)}
        definition["where"] = self._filters(rows)
        if self.shape == "columns":
            definition["columns"] = self._columns()
        else:
            definition["group_by"] = [g for g in self.groups if g]
            rows.groups = [i for i, g in enumerate(self.groups) if g]
            definition["measures"] = self._measures(rows)
        return definition, rows

    def _keys(self, rows: Rows) -> list[dict[str, str]]:
        on: list[dict[str, str]] = []
        for i, (left, right) in enumerate(self.keys):
            if bool(left) != bool(right):
                raise FormProblem(
                    f"join-{'right' if left else 'left'}-{i}",
                    f"Correspondance {i + 1} : choisissez un champ de chaque côté.",
                    f"Match {i + 1}: choose a field on each side.",
                )
            if left:
                on.append({"left": left, "right": right})
                rows.keys.append(i)
        if not on:
            raise FormProblem(
                "join-left-0",
                "Choisissez au moins un champ commun aux deux produits pour relier leurs lignes.",
                "Choose at least one field shared by both products to match their rows.",
            )
        return on

    def _filters(self, rows: Rows) -> list[dict[str, str]]:
        where: list[dict[str, str]] = []
        for i, condition in enumerate(self.filters):
            if not condition.field:
                if condition.value:
                    raise FormProblem(
                        f"filter-field-{i}",
                        f"Filtre {i + 1} : choisissez le champ auquel s'applique la valeur.",
                        f"Filter {i + 1}: choose the field the value applies to.",
                    )
                continue
            where.append({"field": condition.field, "op": condition.op, "value": condition.value})
            rows.filters.append(i)
        return where

    def _columns(self) -> list[dict[str, str]]:
        if not self.columns:
            raise FormProblem(
                "column-0", "Cochez au moins une colonne à garder.",
                "Tick at least one column to keep.",
            )  # fmt: skip
        columns: list[dict[str, str]] = []
        taken: set[str] = set()
        for chosen in self.columns:
            name = chosen.partition(".")[2] or chosen
            out, n = name, 1
            while out in taken:  # the same field name in both sources: "nom", "nom_2"
                n += 1
                out = f"{name[: 60 - len(str(n))]}_{n}"
            taken.add(out)
            columns.append({"field": chosen} | ({"name": out} if out != name else {}))
        return columns

    def _measures(self, rows: Rows) -> list[dict[str, str]]:
        measures: list[dict[str, str]] = []
        for i, measure in enumerate(self.measures):
            if not measure.fn:
                if measure.field or measure.name:
                    raise FormProblem(
                        f"measure-fn-{i}",
                        f"Calcul {i + 1} : choisissez ce qui est calculé.",
                        f"Figure {i + 1}: choose what is computed.",
                    )
                continue
            if not measure.name:
                raise FormProblem(
                    f"measure-name-{i}",
                    f"Calcul {i + 1} : donnez un nom à la colonne du résultat.",
                    f"Figure {i + 1}: give the result's column a name.",
                )
            item = {"fn": measure.fn, "name": slugify_field(measure.name)}
            if measure.field:
                item["field"] = measure.field
            measures.append(item)
            rows.measures.append(i)
        if not measures:
            raise FormProblem(
                "measure-fn-0",
                "Choisissez au moins un calcul (un nombre de lignes, une somme…).",
                "Choose at least one figure (a number of rows, a sum…).",
            )
        return measures


_PATH = re.compile(r"^definition\.(\w+)(?:\[(\d+)\])?(?:\.on\[(\d+)\])?(?:\.(\w+))?")


def control_of(error: AppError, rows: Rows | None) -> str | None:
    """The id of the control to correct for a refusal: the form's own, or the one behind the
    definition's path that the validation names (``definition.measures[1].field``)."""
    if isinstance(error, FormProblem):
        return error.control
    if isinstance(error, Conflict):
        return "derive-slug"  # the only conflict of a creation: the identifier is taken
    fields = error.extra.get("fields") or [{}]
    path = str(fields[0].get("field", ""))
    if path in ("slug", "name"):
        return f"derive-{path}"
    found = _PATH.match(path)
    if found is None or rows is None:
        return None
    part, index, key, leaf = found.groups()

    def row(taken: list[int], at: str | None) -> int:
        i = int(at or 0)
        return taken[i] if i < len(taken) else 0

    if part == "join":
        side = "right" if leaf == "right" else "left"
        return f"join-{side}-{row(rows.keys, key)}"
    if part == "where":
        return f"filter-field-{row(rows.filters, index)}"
    if part == "columns":  # duplicate names: a figure named like a group, or columns
        return f"measure-name-{rows.measures[0]}" if rows.measures else "column-0"
    if part == "group_by":
        return f"group-{row(rows.groups, index)}"
    if part == "measures":
        return f"measure-{leaf if leaf in ('field', 'name') else 'fn'}-{row(rows.measures, index)}"
    return None
