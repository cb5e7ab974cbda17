"""Quality rules written by stewards, without code (issue 17, ADR 0027): their JSON shape, their
validation against the product's schema, and each row rule compiled to a SQL predicate that is
true for a failing row.

A product's quality rules are a list stored on the product (``data_products.quality_rules``)::

    {"id": "r1", "kind": KIND, "severity": "blocking" | "warning", "field": "name",
     "min": …, "max": …, "values": [...], "pattern": "…", "product": "<uuid>",
     "product_field": "name", "max_age_minutes": 120, "note": "free text"}

Kinds: ``required`` (a value in every row), ``unique`` (no value twice among current rows),
``range`` (``min`` and/or ``max``, numbers for numeric fields, ISO 8601 text for dates and
datetimes), ``allowed`` (``values``), ``pattern`` (a regular expression the whole text must
match), ``reference`` (the value exists in the key field ``product_field`` of the product
``product``), then two rules over the whole product: ``freshness`` (a data version at least
every ``max_age_minutes``) and ``row_count`` (``min`` and/or ``max`` current rows).

Row rules score the share of current rows that pass; ``freshness`` and ``row_count`` pass or
fail. A ``blocking`` rule that fails refuses an import; a ``warning`` only flags it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import ColumnElement, Table, and_, false, func, or_, select

from hypervision.products.rules import Problem, RuleError

Kind = Literal[
    "required", "unique", "range", "allowed", "pattern", "reference", "freshness", "row_count"
]
ROW_KINDS = frozenset({"required", "unique", "range", "allowed", "pattern", "reference"})
PRODUCT_KINDS = frozenset({"freshness", "row_count"})
MAX_QUALITY_RULES = 100
MAX_VALUES = 500
ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
KIND_NAMES = {
    "required": ("valeur obligatoire", "required value"),
    "unique": ("valeur unique", "unique value"),
    "range": ("bornes", "range"),
    "allowed": ("valeurs permises", "allowed values"),
    "pattern": ("motif", "pattern"),
    "reference": ("référence à un autre produit", "reference to another product"),
    "freshness": ("fraîcheur", "freshness"),
    "row_count": ("nombre de lignes", "row count"),
}


class QualityRuleIn(BaseModel):
    """One rule as a steward writes it (API and web form)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=32, description="kept across changes")
    kind: Kind
    severity: Literal["blocking", "warning"] = "warning"
    field: str | None = Field(default=None, max_length=200)
    min: float | int | str | None = None
    max: float | int | str | None = None
    values: list[str | int | float | bool] | None = Field(default=None, max_length=MAX_VALUES)
    pattern: str | None = Field(default=None, max_length=500)
    product: str | None = Field(default=None, max_length=64, description="a product's id")
    product_field: str | None = Field(default=None, max_length=200)
    max_age_minutes: int | None = Field(default=None, ge=1, le=525_600)
    note: str = Field(default="", max_length=500)


@dataclass(frozen=True)
class QualityRule:
    """A validated rule: its bounds and values already of the field's type."""

    id: str
    kind: str
    severity: str
    field: str | None = None
    min: Any = None
    max: Any = None
    values: tuple[Any, ...] = ()
    pattern: str | None = None
    product: str | None = None
    product_field: str | None = None
    max_age_minutes: int | None = None
    note: str = ""

    @property
    def blocking(self) -> bool:
        return self.severity == "blocking"

    @property
    def per_row(self) -> bool:
        return self.kind in ROW_KINDS

    def to_tree(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "severity": self.severity}
        for name in ("field", "pattern", "product", "product_field", "max_age_minutes"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("min", "max"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat() if isinstance(value, date) else value
        if self.kind == "allowed":
            out["values"] = [v.isoformat() if isinstance(v, date) else v for v in self.values]
        if self.note:
            out["note"] = self.note
        return out

    def describe(self, english: bool = False) -> str:
        """The rule in a few words, for reports and pages."""
        name = KIND_NAMES[self.kind][1 if english else 0]
        on = f" « {self.field} »" if self.field and not english else ""
        on = f" {self.field!r}" if self.field and english else on
        if self.kind in ("range", "row_count"):
            low = "" if self.min is None else f"≥ {_shown(self.min)}"
            high = "" if self.max is None else f"≤ {_shown(self.max)}"
            return f"{name}{on} {' '.join(p for p in (low, high) if p)}"
        if self.kind == "allowed":
            return f"{name}{on} : {', '.join(_shown(v) for v in self.values[:10])}"
        if self.kind == "pattern":
            return f"{name}{on} : {self.pattern}"
        if self.kind == "reference":
            return f"{name}{on} → {self.product_field}"
        if self.kind == "freshness":
            return f"{name} : {self.max_age_minutes} min"
        return f"{name}{on}"


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


@dataclass(frozen=True)
class Target:
    """What a reference rule may point at: another product's id, its field types and key."""

    id: str
    types: Mapping[str, str]
    key: Sequence[str]


def _problem(path: str, fr: str, en: str) -> Problem:
    return Problem(path, fr, en)


def _typed(value: Any, kind: str) -> Any:
    """``value`` as a value of a field of type ``kind`` (ValueError when it cannot be)."""
    if isinstance(value, bool) and kind != "boolean":
        raise ValueError(value)
    if kind == "integer":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value)
    if kind == "number":
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(value)
        return number
    if kind == "date":
        return date.fromisoformat(str(value))
    if kind == "datetime":
        moment = datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            raise ValueError(value)
        return moment
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(value)
        return value
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def parse(
    items: Sequence[Mapping[str, Any]],
    types: Mapping[str, str],
    targets: Mapping[str, Target] | None = None,
) -> list[QualityRule]:
    """Validate a whole list of rules against the product's field types (``types``) and the
    products reference rules may point at (``targets``, by id; None: rules read back from the
    product, whose targets were checked when they were written): a RuleError (422) lists
    every problem with its path, in French and English."""
    problems: list[Problem] = []
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise RuleError.of([_problem("racine", "liste attendue", "a list is expected")])
    if len(items) > MAX_QUALITY_RULES:
        raise RuleError.of([_problem("racine", "trop de règles", "too many rules")])
    parsed: list[QualityRuleIn] = []
    for index, item in enumerate(items):
        try:
            parsed.append(QualityRuleIn.model_validate(item))
        except ValidationError as error:
            for err in error.errors(include_url=False):
                where = ".".join(str(p) for p in err["loc"])
                problems.append(
                    _problem(f"[{index}].{where}", f"valeur invalide ({err['msg']})", err["msg"])
                )
    if problems:
        raise RuleError.of(problems)
    taken = {r.id for r in parsed if r.id}
    rules: list[QualityRule] = []
    seen: set[str] = set()
    counter = 0
    for index, raw in enumerate(parsed):
        rule_id = raw.id
        if rule_id is None:
            counter += 1
            while f"r{counter}" in taken:
                counter += 1
            rule_id = f"r{counter}"
        if not ID.match(rule_id) or rule_id in seen:
            problems.append(
                _problem(
                    f"[{index}].id",
                    "identifiant invalide ou en double",
                    "invalid or repeated identifier",
                )
            )
        seen.add(rule_id)
        rule = _one(index, rule_id, raw, types, targets, problems)
        if rule is not None:
            rules.append(rule)
    if problems:
        raise RuleError.of(problems)
    return rules


def _one(
    index: int,
    rule_id: str,
    raw: QualityRuleIn,
    types: Mapping[str, str],
    targets: Mapping[str, Target] | None,
    problems: list[Problem],
) -> QualityRule | None:
    at = f"[{index}]"
    before = len(problems)
    kind = raw.kind
    field_type = ""
    if kind in ROW_KINDS:
        if not raw.field:
            problems.append(
                _problem(
                    f"{at}.field", "champ obligatoire pour cette règle", "this rule needs a field"
                )
            )
            return None
        if raw.field not in types:
            problems.append(
                _problem(
                    f"{at}.field", f"champ « {raw.field} » inconnu", f"unknown field {raw.field!r}"
                )
            )
            return None
        field_type = types[raw.field]
        if field_type == "geometry" and kind != "required":
            problems.append(
                _problem(
                    f"{at}.field",
                    "un champ géométrique ne se contrôle que par « obligatoire »",
                    "a geometry field takes only 'required'",
                )
            )
            return None
    elif raw.field:
        problems.append(
            _problem(
                f"{at}.field",
                "cette règle porte sur tout le produit, sans champ",
                "this rule is about the whole product: no field",
            )
        )
    low = high = None
    values: tuple[Any, ...] = ()
    if kind == "range":
        if field_type not in ("integer", "number", "date", "datetime"):
            problems.append(
                _problem(
                    f"{at}.field",
                    f"des bornes demandent un champ numérique ou "
                    f"une date (« {raw.field} » est {field_type})",
                    f"a range needs a numeric or date field ({raw.field!r} is {field_type})",
                )
            )
        else:
            low = _bound(raw.min, field_type, f"{at}.min", problems)
            high = _bound(raw.max, field_type, f"{at}.max", problems)
            _order(low, high, at, problems, raw.min is None and raw.max is None)
    elif kind == "row_count":
        low = _bound(raw.min, "integer", f"{at}.min", problems)
        high = _bound(raw.max, "integer", f"{at}.max", problems)
        if (low is not None and low < 0) or (high is not None and high < 0):
            problems.append(_problem(f"{at}.min", "nombre négatif", "negative count"))
        _order(low, high, at, problems, raw.min is None and raw.max is None)
    elif kind == "allowed":
        if not raw.values:
            problems.append(_problem(f"{at}.values", "au moins une valeur", "at least one value"))
        elif field_type not in ("string", "integer", "number", "boolean", "date", "datetime"):
            problems.append(
                _problem(
                    f"{at}.field",
                    "type de champ sans liste de valeurs",
                    "this field type takes no list of values",
                )
            )
        else:
            typed = []
            for i, v in enumerate(raw.values):
                try:
                    typed.append(_typed(v, field_type))
                except (ValueError, TypeError):
                    problems.append(
                        _problem(
                            f"{at}.values[{i}]",
                            f"« {v} » n'est pas du type {field_type}",
                            f"{v!r} is not of type {field_type}",
                        )
                    )
            values = tuple(dict.fromkeys(typed))
    elif kind == "pattern":
        if field_type != "string":
            problems.append(
                _problem(
                    f"{at}.field", "un motif demande un champ texte", "a pattern needs a text field"
                )
            )
        elif not raw.pattern:
            problems.append(_problem(f"{at}.pattern", "motif obligatoire", "pattern required"))
        else:
            try:
                re.compile(raw.pattern)
            except re.error as error:
                problems.append(
                    _problem(
                        f"{at}.pattern",
                        f"expression régulière invalide ({error})",
                        f"invalid regular expression ({error})",
                    )
                )
    elif kind == "reference":
        _reference(at, raw, field_type, targets, problems)
    elif kind == "freshness" and raw.max_age_minutes is None:
        problems.append(
            _problem(
                f"{at}.max_age_minutes", "délai obligatoire (minutes)", "max_age_minutes required"
            )
        )
    if len(problems) > before:
        return None
    return QualityRule(
        id=rule_id,
        kind=kind,
        severity=raw.severity,
        field=raw.field if kind in ROW_KINDS else None,
        min=low,
        max=high,
        values=values,
        pattern=raw.pattern if kind == "pattern" else None,
        product=str(raw.product).lower() if kind == "reference" else None,
        product_field=raw.product_field if kind == "reference" else None,
        max_age_minutes=raw.max_age_minutes if kind == "freshness" else None,
        note=" ".join(raw.note.split()),
    )


def _bound(value: Any, kind: str, path: str, problems: list[Problem]) -> Any:
    if value is None:
        return None
    try:
        return _typed(value, kind)
    except (ValueError, TypeError):
        problems.append(
            _problem(
                path, f"« {value} » n'est pas du type {kind}", f"{value!r} is not of type {kind}"
            )
        )
        return None


def _order(low: Any, high: Any, at: str, problems: list[Problem], neither: bool) -> None:
    if neither:
        problems.append(
            _problem(
                f"{at}.min",
                "donnez un minimum, un maximum ou les deux",
                "give a minimum, a maximum or both",
            )
        )
    elif low is not None and high is not None and low > high:
        problems.append(
            _problem(
                f"{at}.max",
                "le maximum est inférieur au minimum",
                "the maximum is below the minimum",
            )
        )


def _reference(
    at: str,
    raw: QualityRuleIn,
    field_type: str,
    targets: Mapping[str, Target] | None,
    problems: list[Problem],
) -> None:
    if targets is None:
        return
    target = targets.get(str(raw.product or "").lower())
    if target is None:
        problems.append(
            _problem(
                f"{at}.product", "produit de référence introuvable", "reference product not found"
            )
        )
        return
    name = raw.product_field or ""
    if name not in target.key:
        problems.append(
            _problem(
                f"{at}.product_field",
                "champ de la clé primaire du produit de référence attendu",
                "a field of the reference product's primary key is expected",
            )
        )
    elif target.types.get(name) != field_type:
        problems.append(
            _problem(
                f"{at}.product_field",
                f"types différents ({field_type}, {target.types.get(name)})",
                f"types differ ({field_type}, {target.types.get(name)})",
            )
        )


# --- SQL ---------------------------------------------------------------------------------------


def failing(rule: QualityRule, table: Table, target: Table | None = None) -> ColumnElement[bool]:
    """True for a current row of ``table`` that fails the row rule ``rule`` (``target``: the
    referenced product's table, for a reference rule; None when it is gone)."""
    assert rule.field is not None
    column = table.c[rule.field]
    present = column.is_not(None)
    if rule.kind == "required":
        return column.is_(None)
    if rule.kind == "unique":
        repeated = (
            select(column)
            .where(table.c._to.is_(None), present)
            .group_by(column)
            .having(func.count() > 1)
        )
        return and_(present, column.in_(repeated))
    if rule.kind == "range":
        parts = []
        if rule.min is not None:
            parts.append(column < rule.min)
        if rule.max is not None:
            parts.append(column > rule.max)
        return and_(present, or_(*parts))
    if rule.kind == "allowed":
        return and_(present, column.not_in(list(rule.values)))
    if rule.kind == "pattern":
        assert rule.pattern is not None
        return and_(present, ~column.regexp_match(f"^(?:{rule.pattern})$"))
    if rule.kind == "reference":
        if target is None:
            return present
        other = target.c[rule.product_field or ""]
        known = select(other).where(target.c._to.is_(None), other.is_not(None))
        return and_(present, column.not_in(known))
    return false()
