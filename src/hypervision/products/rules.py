"""Rules written by stewards: which rows and columns of a data product a reader sees (issue 17).

A product's rules are a JSON tree, stored as is (``RuleSet.to_tree``)::

    {"rows": [{"effect": "allow" | "deny", "when": COND, "note": "free text"}, ...],
     "rows_default": "allow" | "deny",
     "columns": [{"columns": ["field", ...], "effect": "allow" | "deny", "when": UCOND,
                  "note": "free text"}, ...]}

**Rows.** The row rules are read in order; the first whose ``when`` holds for (reader, row)
decides; when none holds, ``rows_default`` decides. Rules only narrow what the product's label
already allows: the label is checked by the one policy (``policy.rules``) and a row is delivered
only when both allow it, so a rule can never widen the label.

**Columns.** For each column, the column rules that name it are read in order; the first whose
``when`` holds for the reader decides; no rule holds: the column is visible. A column condition
(UCOND) names no ``rec`` operand: a column is shown or hidden for the whole answer.

**Conditions.** ``{"all": [...]}`` (true when empty), ``{"any": [...]}`` (false when empty),
``{"not": COND}``, ``{"op": OP, "left": A, "right": B}``, ``{"op": "is_null" | "not_null",
"left": A}``. Operands:

- ``{"user": "organisation"}``: the reader's organisation id, as lowercase UUID text; null for a
  reader without one. Compared (eq, ne) with string fields and UUID literals.
- ``{"user": "organisation_ancestors"}``: the set of the reader's organisation and its parents
  (empty without one); ``{"user": "groups"}``, ``{"user": "roles"}``: sets of strings.
- ``{"user": "clearance"}``: the reader's clearance, a level compared by its rank in
  ``settings.label_levels``; null when the reader has none. Compared with level-name literals and
  with string fields holding level names (a name that is not a level is null).
- ``{"rec": "field"}``: the row's value of a field of the product's schema (null when absent);
  geometry fields may not appear in conditions (a column rule may hide one).
- ``{"value": literal}``: a JSON literal, coerced at validation to the type of the other side
  (a UUID for an organisation, a level name for a clearance, ISO 8601 text for a date or a
  datetime — which must carry its offset); a list only as the set of in, not_in, contains.

Operators: ``eq ne`` on scalars of one type (string and organisation, string and level mix);
``lt le gt ge`` on integers, numbers, dates, datetimes and levels only (no ordering of text:
collations differ between engines); ``in``/``not_in``: left scalar, right a set (a user set or a
list); ``contains``: left a set, right a scalar (``x in S`` written the other way round);
``is_null``/``not_null`` on a scalar ``rec`` or ``user`` operand. Integer and number do not mix
(a large integer is not exactly a double: the engines would round where Python does not), nor
date and datetime. Each condition names at least one ``user`` or ``rec`` operand.

**Two-valued logic.** An atom with a null scalar operand is false — ``ne`` and ``not_in`` too;
only ``is_null``/``not_null`` see nulls — so ``not`` is the plain negation everywhere. The SQL
filter guards every column with ``IS NOT NULL``; the RLS predicate wraps every atom in
``coalesce(…, false)``.

**Compilations**, proven equal by tests/products/test_rules_differential.py:
``row_allows`` (Python), ``row_filter`` (SQLAlchemy, SQLite and PostgreSQL; the reader's side is
evaluated in Python first, only the row's side stays in SQL), ``rls_predicate`` (PostgreSQL text
for a ``CREATE POLICY``, the reader read from the signed context functions, each in a sub-select
so it runs once per query; the clearance's rank is ``array_length(hv_ctx_levels(), 1) - 1``, the
levels up to the reader's), and ``visible_columns`` (column projection, Python). Rows hold the
field's Python type: str, int, finite float (no NaN), bool, date, aware datetime (naive is read
as UTC); the SQL columns, the field's type (text, bigint, double precision, boolean, date,
timestamptz).

**Review.** ``widens`` tells whether a new rule set may show some reader more than the previous
one (then a second steward approves it); ``fingerprint`` names a rule set in audit records.
Trees are bounded (``MAX_*``): 200 rules, 1,000 items per list, 40 levels, 20,000 values.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    ValidationError,
)
from sqlalchemy import ColumnElement, and_, false, not_, or_, true

from hypervision.config import Settings
from hypervision.core.errors import Invalid
from hypervision.policy.roles import Actor

Effect = Literal["allow", "deny"]
FIELD_TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "geometry")
MAX_RULES = 200
MAX_ITEMS = 1000  # conditions in an all/any, values in a list, columns in a column rule
MAX_DEPTH = 40  # nesting of the JSON tree
MAX_VALUES = 20_000  # JSON values in the whole tree
MAX_TEXT = 1000
INT64 = (-(2**63), 2**63 - 1)

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
SQL_OPERATORS = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
ORDERED = frozenset({"integer", "number", "date", "datetime", "level"})
NULL_TESTS = ("is_null", "not_null")
# user attribute -> its type ("set:<element type>" for sets)
USER_TYPES = {
    "organisation": "organisation",
    "organisation_ancestors": "set:organisation",
    "groups": "set:string",
    "roles": "set:string",
    "clearance": "level",
}
# The reader's side in RLS: each context function in a sub-select (one InitPlan per query).
CONTEXT_SQL = {
    "organisation": "(SELECT hv_ctx_org()::text)",
    "organisation_ancestors": "(SELECT hv_ctx_ancestry())",
    "groups": "(SELECT ARRAY(SELECT jsonb_array_elements_text(hv_ctx_groups())))",
    "roles": "(SELECT hv_ctx_roles())",
    "clearance": "(SELECT array_length(hv_ctx_levels(), 1) - 1)",
}

# The reader's roles in the signed context (``policy.rls.reader_context``), for RLS policies;
# like hv_ctx_ancestry (migration 0007). For a migration, as the owner.
CTX_ROLES_FUNCTION = """CREATE FUNCTION hv_ctx_roles() RETURNS text[] LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$ SELECT coalesce(array(SELECT jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(hv_context() -> 'roles') = 'array'
             THEN hv_context() -> 'roles' ELSE '[]'::jsonb END)), '{}') $$"""


@dataclass(frozen=True)
class Reader:
    """What the rules know of a reader (the ``user`` operands)."""

    organisation: str | None
    ancestors: frozenset[str]  # own organisation and its parents
    groups: frozenset[str]
    clearance_rank: int  # rank in settings.label_levels; -1: no (known) clearance
    roles: frozenset[str]

    @classmethod
    def of(cls, settings: Settings, principal: Actor) -> Reader:
        clearance = principal.clearance
        rank = settings.level_rank(clearance) if clearance in settings.label_levels else -1
        return cls(
            organisation=str(principal.organisation_id) if principal.organisation_id else None,
            ancestors=frozenset(str(o) for o in principal.organisation_ancestry),
            groups=frozenset(principal.groups),
            clearance_rank=rank,
            roles=frozenset(principal.roles),
        )


# --- the tree, as stored (Pydantic) --------------------------------------------------------


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class UserOperand(_Node):
    user: Literal["organisation", "organisation_ancestors", "groups", "clearance", "roles"]


class RecOperand(_Node):
    rec: str = Field(min_length=1, max_length=200)


class ValueOperand(_Node):
    value: JsonValue


def _operand_tag(value: Any) -> str | None:
    if isinstance(value, _Node):  # serialising
        tags: dict[type[_Node], str] = {
            UserOperand: "user",
            RecOperand: "rec",
            ValueOperand: "value",
        }
        return tags.get(type(value))
    if isinstance(value, Mapping):
        return next((key for key in ("user", "rec", "value") if key in value), None)
    return None


def _cond_tag(value: Any) -> str | None:
    if isinstance(value, _Node):  # serialising
        return _NODE_TAGS.get(type(value))
    if isinstance(value, Mapping):
        for key in ("all", "any", "not"):
            if key in value:
                return key
        if "op" in value:
            return "null_test" if value["op"] in NULL_TESTS else "compare"
    return None


Operand = Annotated[
    Annotated[UserOperand, Tag("user")]
    | Annotated[RecOperand, Tag("rec")]
    | Annotated[ValueOperand, Tag("value")],
    Discriminator(
        _operand_tag,
        custom_error_type="operand",
        custom_error_message='expected {"user": …}, {"rec": …} or {"value": …}',
    ),
]


class AllNode(_Node):
    all: list[Cond] = Field(max_length=MAX_ITEMS)


class AnyNode(_Node):
    any: list[Cond] = Field(max_length=MAX_ITEMS)


class NotNode(_Node):
    not_: Cond = Field(alias="not")


class CompareNode(_Node):
    op: Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "contains"]
    left: Operand
    right: Operand


class NullNode(_Node):
    op: Literal["is_null", "not_null"]
    left: Operand


Cond = Annotated[
    Annotated[AllNode, Tag("all")]
    | Annotated[AnyNode, Tag("any")]
    | Annotated[NotNode, Tag("not")]
    | Annotated[CompareNode, Tag("compare")]
    | Annotated[NullNode, Tag("null_test")],
    Discriminator(
        _cond_tag,
        custom_error_type="condition",
        custom_error_message='expected {"all": …}, {"any": …}, {"not": …} or {"op": …}',
    ),
]


class RowRule(_Node):
    effect: Effect
    when: Cond
    note: str = Field(default="", max_length=MAX_TEXT)


class ColumnRule(_Node):
    columns: list[str] = Field(min_length=1, max_length=MAX_ITEMS)
    effect: Effect
    when: Cond
    note: str = Field(default="", max_length=MAX_TEXT)


class Tree(_Node):
    rows: list[RowRule] = Field(default_factory=list, max_length=MAX_RULES)
    rows_default: Effect
    columns: list[ColumnRule] = Field(default_factory=list, max_length=MAX_RULES)


_NODE_TAGS: dict[type[_Node], str] = {
    AllNode: "all",
    AnyNode: "any",
    NotNode: "not",
    CompareNode: "compare",
    NullNode: "null_test",
}

for _model in (AllNode, AnyNode, NotNode, RowRule, ColumnRule, Tree):
    _model.model_rebuild()


# --- errors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. rows[2].when.all[0].left
    fr: str
    en: str


class RuleError(Invalid):
    code = "invalid_rules"

    def __init__(self, fr: str, en: str, problems: Sequence[Problem]) -> None:
        listed = [{"path": p.path, "fr": p.fr, "en": p.en} for p in problems]
        super().__init__(fr, en, extra={"problems": listed})
        self.problems = tuple(problems)

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> RuleError:
        shown = problems[:10]
        more = f" (+{len(problems) - 10})" if len(problems) > 10 else ""
        return cls(
            "Règles invalides : " + " ; ".join(f"{p.path} : {p.fr}" for p in shown) + more,
            "Invalid rules: " + "; ".join(f"{p.path}: {p.en}" for p in shown) + more,
            problems,
        )


_FRENCH = {
    "missing": "champ obligatoire",
    "extra_forbidden": "champ inconnu",
    "literal_error": "valeur non autorisée",
    "condition": 'nœud inconnu : attendu {"all": …}, {"any": …}, {"not": …} ou {"op": …}',
    "operand": 'opérande inconnu : attendu {"user": …}, {"rec": …} ou {"value": …}',
    "too_long": "trop d'éléments",
    "too_short": "au moins un élément",
    "string_too_long": "texte trop long",
    "string_too_short": "texte vide",
    "string_type": "texte attendu",
    "list_type": "liste attendue",
    "model_type": "objet attendu",
    "model_attributes_type": "objet attendu",
    "dict_type": "objet attendu",
}
_UNION_HOLDERS = frozenset({"when", "not", "left", "right"})
_TAGS = frozenset({"all", "any", "not", "compare", "null_test", "user", "rec", "value"})


def _path(loc: Sequence[int | str]) -> str:
    """A Pydantic location as a path, without the tags of the discriminated unions."""
    out = ""
    expect_tag = False
    previous: int | str | None = None
    for part in loc:
        if expect_tag and part in _TAGS:
            expect_tag = False
            previous = None
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        expect_tag = part in _UNION_HOLDERS or (
            isinstance(part, int) and previous in {"all", "any"}
        )
        previous = part
    return out or "racine"


def _structure_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for err in error.errors(include_url=False):
        kind = str(err["type"])
        en = str(err["msg"])
        if kind == "literal_error":
            expected = (err.get("ctx") or {}).get("expected", "")
            fr = f"valeur non autorisée (attendu : {expected.replace(' or ', ' ou ')})"
        else:
            fr = _FRENCH.get(kind, f"valeur invalide ({en})")
        problems.append(Problem(_path(err["loc"]), fr, en))
    return problems


def _too_big(tree: Any) -> bool:
    """Nested deeper than MAX_DEPTH or holding more than MAX_VALUES JSON values (checked
    before Pydantic walks it)."""
    count, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        count += 1
        if level > MAX_DEPTH or count > MAX_VALUES:
            return True
        if isinstance(node, Mapping):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return False


# --- the compiled form -------------------------------------------------------------------


@dataclass(frozen=True)
class _User:
    attr: str
    type: str


@dataclass(frozen=True)
class _Rec:
    field: str
    type: str
    ranks: tuple[tuple[str, int], ...] | None = None  # compared as levels: name -> rank


@dataclass(frozen=True)
class _Lit:
    value: Any  # coerced to the type (a rank for a level, lowercase UUID text)
    type: str


@dataclass(frozen=True)
class _LitSet:
    values: tuple[Any, ...]  # sorted
    type: str
    members: frozenset[Any]


@dataclass(frozen=True)
class _Raw:
    """A literal before it meets its other side's type."""

    value: JsonValue


_Scalar = _User | _Rec | _Lit


@dataclass(frozen=True)
class _All:
    parts: tuple[_Cond, ...]


@dataclass(frozen=True)
class _Any:
    parts: tuple[_Cond, ...]


@dataclass(frozen=True)
class _Not:
    part: _Cond


@dataclass(frozen=True)
class _Cmp:
    op: str
    left: _Scalar
    right: _Scalar


@dataclass(frozen=True)
class _In:
    item: _Scalar
    within: _User | _LitSet
    negated: bool


@dataclass(frozen=True)
class _Null:
    operand: _Scalar
    negated: bool  # not_null


_Cond = _All | _Any | _Not | _Cmp | _In | _Null


@dataclass(frozen=True)
class _Rule:
    effect: str
    when: _Cond
    key: str  # canonical JSON of (effect, when), to compare rule sets


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- validation: the tree's meaning against the product's schema ----------------------------


class _Checker:
    def __init__(self, fields: Mapping[str, str], levels: Sequence[str]) -> None:
        self.fields = fields
        self.ranks = tuple((name, rank) for rank, name in enumerate(levels))
        self.problems: list[Problem] = []

    def fail(self, path: str, fr: str, en: str) -> None:
        self.problems.append(Problem(path, fr, en))

    def cond(self, node: Any, path: str, *, rows: bool) -> _Cond | None:
        if isinstance(node, AllNode | AnyNode):
            name = "all" if isinstance(node, AllNode) else "any"
            items = node.all if isinstance(node, AllNode) else node.any
            parts = [self.cond(c, f"{path}.{name}[{i}]", rows=rows) for i, c in enumerate(items)]
            if any(p is None for p in parts):
                return None
            done = tuple(p for p in parts if p is not None)
            return _All(done) if name == "all" else _Any(done)
        if isinstance(node, NotNode):
            part = self.cond(node.not_, f"{path}.not", rows=rows)
            return None if part is None else _Not(part)
        if isinstance(node, NullNode):
            side = self.side(node.left, f"{path}.left", rows=rows)
            if side is None:
                return None
            if not isinstance(side, _User | _Rec) or side.type.startswith("set:"):
                self.fail(
                    f"{path}.left",
                    f"{node.op} s'applique à un champ ou à un attribut simple du lecteur",
                    f"{node.op} applies to a field or a single-valued reader attribute",
                )
                return None
            return _Null(side, negated=node.op == "not_null")
        assert isinstance(node, CompareNode)
        left = self.side(node.left, f"{path}.left", rows=rows)
        right = self.side(node.right, f"{path}.right", rows=rows)
        if left is None or right is None:
            return None
        if node.op in COMPARISONS:
            return self.compare(node.op, left, right, path)
        if node.op == "contains":
            return self.member(right, left, path, negated=False, item_at="right", set_at="left")
        return self.member(left, right, path, negated=node.op == "not_in")

    def side(self, operand: Any, path: str, *, rows: bool) -> _User | _Rec | _Raw | None:
        if isinstance(operand, UserOperand):
            return _User(operand.user, USER_TYPES[operand.user])
        if isinstance(operand, ValueOperand):
            return _Raw(operand.value)
        name = operand.rec
        if not rows:
            self.fail(
                path,
                f"une règle de colonnes ne dépend que du lecteur (rec « {name} » interdit)",
                f"a column rule depends on the reader only (rec {name!r} not allowed)",
            )
        elif name not in self.fields:
            self.fail(
                path,
                f"le champ « {name} » n'existe pas dans le schéma du produit",
                f"field {name!r} is not in the product's schema",
            )
        elif self.fields[name] == "geometry":
            self.fail(
                path,
                f"le champ géométrique « {name} » ne peut pas figurer dans une condition",
                f"geometry field {name!r} may not appear in a condition",
            )
        elif self.fields[name] not in FIELD_TYPES:
            self.fail(path, f"type de champ inconnu « {self.fields[name]} »", "unknown field type")
        else:
            return _Rec(name, self.fields[name])
        return None

    def scalar(self, side: _User | _Rec | _Raw, path: str) -> bool:
        if isinstance(side, _User) and side.type.startswith("set:"):
            self.fail(
                path,
                f"user.{side.attr} est un ensemble : utilisez in, not_in ou contains",
                f"user.{side.attr} is a set: use in, not_in or contains",
            )
            return False
        if isinstance(side, _Raw) and isinstance(side.value, list | dict):
            self.fail(path, "valeur simple attendue", "a single value is expected")
            return False
        return True

    def compare(self, op: str, left: Any, right: Any, path: str) -> _Cond | None:
        if not (self.scalar(left, f"{path}.left") & self.scalar(right, f"{path}.right")):
            return None
        if isinstance(left, _Raw) and isinstance(right, _Raw):
            self.fail(path, "comparaison de deux valeurs fixes", "two literals compared")
            return None
        if isinstance(left, _Raw):
            lit = self.coerce(left.value, right.type, f"{path}.left")
            kind = right.type
            pair: tuple[Any, Any] = (lit, right)
        elif isinstance(right, _Raw):
            lit = self.coerce(right.value, left.type, f"{path}.right")
            kind = left.type
            pair = (left, lit)
        else:
            found = _common(left.type, right.type)
            if found is None:
                self.fail(
                    path,
                    f"types incompatibles : {_fr(left.type)} et {_fr(right.type)}",
                    f"incompatible types: {left.type} and {right.type}",
                )
                return None
            kind, pair = found, (left, right)
        if None in pair:
            return None
        if op not in ("eq", "ne") and kind not in ORDERED:
            self.fail(
                path,
                f"{op} ne s'applique pas au type {_fr(kind)} (seulement eq, ne)",
                f"{op} does not apply to type {kind} (only eq, ne)",
            )
            return None
        a, b = (self.as_level(s) if kind == "level" else s for s in pair)
        return _Cmp(op, a, b)

    def as_level(self, side: Any) -> Any:
        return _Rec(side.field, side.type, self.ranks) if isinstance(side, _Rec) else side

    def member(
        self,
        item: Any,
        within: Any,
        path: str,
        *,
        negated: bool,
        item_at: str = "left",
        set_at: str = "right",
    ) -> _Cond | None:
        if not self.scalar(item, f"{path}.{item_at}"):
            return None
        if isinstance(within, _Raw) and isinstance(within.value, list):
            if isinstance(item, _Raw):
                self.fail(path, "comparaison de deux valeurs fixes", "two literals compared")
                return None
            if len(within.value) > MAX_ITEMS:
                self.fail(f"{path}.{set_at}", "liste trop longue", "list too long")
                return None
            values = [self.coerce(v, item.type, f"{path}.{set_at}") for v in within.value]
            if any(v is None for v in values):
                return None
            lits = tuple(sorted({v.value for v in values if v is not None}))
            return _In(item, _LitSet(lits, item.type, frozenset(lits)), negated)
        if not (isinstance(within, _User) and within.type.startswith("set:")):
            self.fail(
                f"{path}.{set_at}",
                "ensemble attendu : user.organisation_ancestors, user.groups, user.roles ou une "
                "liste de valeurs",
                "a set is expected: user.organisation_ancestors, user.groups, user.roles or a "
                "list of values",
            )
            return None
        element = within.type.removeprefix("set:")
        if isinstance(item, _Raw):
            lit = self.coerce(item.value, element, f"{path}.{item_at}")
            return None if lit is None else _In(lit, within, negated)
        rec_text = isinstance(item, _Rec) and item.type == "string"
        if item.type != element and not rec_text:
            self.fail(
                path,
                f"types incompatibles : {_fr(item.type)} et un ensemble de {_fr(element)}",
                f"incompatible types: {item.type} and a set of {element}",
            )
            return None
        return _In(item, within, negated)

    def coerce(self, value: JsonValue, kind: str, path: str) -> _Lit | None:
        try:
            return _Lit(_coerce(value, kind, self.ranks), kind)
        except ValueError as exc:
            fr, _, en = str(exc).partition("|")
            self.fail(path, fr, en)
            return None


_FRENCH_TYPES = {
    "string": "texte",
    "integer": "entier",
    "number": "nombre",
    "boolean": "booléen",
    "date": "date",
    "datetime": "date et heure",
    "organisation": "organisation",
    "level": "niveau",
}


def _fr(kind: str) -> str:
    return _FRENCH_TYPES.get(kind, kind)


def _common(a: str, b: str) -> str | None:
    if a == b:
        return a
    for pair in ({"organisation", "string"}, {"level", "string"}):
        if {a, b} == pair:
            return (pair - {"string"}).pop()
    return None


def _coerce(value: JsonValue, kind: str, ranks: tuple[tuple[str, int], ...]) -> Any:
    """A literal as the type ``kind``; ValueError("français|English") when it is not one."""
    if value is None:
        raise ValueError("valeur nulle : utilisez is_null|null literal: use is_null")
    if kind in ("string", "organisation", "level", "date", "datetime"):
        if not isinstance(value, str):
            raise ValueError(f"texte attendu ({_fr(kind)})|text expected ({kind})")
        if len(value) > MAX_TEXT or "\x00" in value:
            raise ValueError("texte trop long ou invalide|text too long or invalid")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("texte invalide (UTF-8)|invalid text (UTF-8)") from None
    if kind == "string":
        return value
    if kind == "organisation":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise ValueError(
                "identifiant d'organisation attendu|organisation id expected"
            ) from None
    if kind == "level":
        found = dict(ranks).get(str(value))
        if found is None:
            names = ", ".join(name for name, _ in ranks)
            raise ValueError(f"niveau inconnu (niveaux : {names})|unknown level ({names})")
        return found
    if kind == "integer":
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not INT64[0] <= value <= INT64[1]
        ):
            raise ValueError("entier attendu|integer expected")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("nombre attendu|number expected")
        if not math.isfinite(value):
            raise ValueError("nombre fini attendu|finite number expected")
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError("booléen attendu (true, false)|boolean expected (true, false)")
        return value
    if kind == "date":
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ValueError("date AAAA-MM-JJ attendue|date YYYY-MM-DD expected") from None
    if kind == "datetime":
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise ValueError(
                "date et heure ISO 8601 avec fuseau attendues"
                "|ISO 8601 datetime with offset expected"
            )
        return moment.astimezone(UTC)
    raise ValueError(f"type {kind} sans valeur possible|type {kind} takes no literal")


# --- the rule set and its compilations ------------------------------------------------------


class RuleSet:
    """A product's rules, validated against its schema and compiled four ways."""

    def __init__(
        self, tree: Tree, rows: tuple[_Rule, ...], columns: tuple[tuple[frozenset[str], _Rule], ...]
    ) -> None:
        self.tree = tree
        self._rows = rows
        self._allow_by_default = tree.rows_default == "allow"
        self._columns = columns

    @classmethod
    def parse(
        cls, tree: Mapping[str, Any], fields: Mapping[str, str], levels: Sequence[str]
    ) -> RuleSet:
        """Validate ``tree`` against the product's ``fields`` (name -> type) and the platform's
        ordered ``levels``; RuleError names every bad node."""
        if not isinstance(tree, Mapping):
            raise RuleError.of([Problem("racine", "objet JSON attendu", "JSON object expected")])
        if _too_big(tree):
            raise RuleError.of(
                [
                    Problem(
                        "racine", "arbre trop profond ou trop grand", "tree too deep or too large"
                    )
                ]
            )
        try:
            model = Tree.model_validate(tree)
        except ValidationError as exc:
            raise RuleError.of(_structure_problems(exc)) from None
        checker = _Checker(fields, levels)
        rows = []
        for i, row_rule in enumerate(model.rows):
            when = checker.cond(row_rule.when, f"rows[{i}].when", rows=True)
            if when is not None:
                rows.append(_Rule(row_rule.effect, when, _key(row_rule.effect, row_rule.when)))
        columns = []
        for i, column_rule in enumerate(model.columns):
            for j, name in enumerate(column_rule.columns):
                if name not in fields:
                    checker.fail(
                        f"columns[{i}].columns[{j}]",
                        f"le champ « {name} » n'existe pas dans le schéma du produit",
                        f"field {name!r} is not in the product's schema",
                    )
            when = checker.cond(column_rule.when, f"columns[{i}].when", rows=False)
            if when is not None:
                rule = _Rule(column_rule.effect, when, _key(column_rule.effect, column_rule.when))
                columns.append((frozenset(column_rule.columns), rule))
        if checker.problems:
            raise RuleError.of(checker.problems)
        return cls(model, tuple(rows), tuple(columns))

    def to_tree(self) -> dict[str, Any]:
        return self.tree.model_dump(mode="json", by_alias=True)

    def fingerprint(self) -> str:
        """SHA-256 of the canonical tree, for audit records."""
        return hashlib.sha256(_canonical(self.to_tree()).encode()).hexdigest()

    # Python

    def row_allows(self, reader: Reader, rec: Mapping[str, Any]) -> bool:
        for rule in self._rows:
            if _holds(rule.when, reader, rec):
                return rule.effect == "allow"
        return self._allow_by_default

    def visible_columns(self, reader: Reader, names: Sequence[str]) -> list[str]:
        """``names`` less the columns the column rules hide from ``reader`` (order kept)."""
        return [name for name in names if self._column_visible(reader, name)]

    def _column_visible(self, reader: Reader, name: str) -> bool:
        for named, rule in self._columns:
            if name in named and _holds(rule.when, reader, {}):
                return rule.effect == "allow"
        return True

    # SQL

    def row_filter(
        self, reader: Reader, columns: Mapping[str, ColumnElement[Any]], dialect: str
    ) -> ColumnElement[bool]:
        """The row rules as a WHERE clause over ``columns`` (field name -> column expression
        of the field's type), for SQLite and PostgreSQL alike (``dialect`` kept for storages
        that need their own form). The reader's side is already evaluated: only the row's
        side is left to SQL."""
        del dialect  # one form serves both engines
        result: _Part = self._allow_by_default
        for rule in reversed(self._rows):
            when = _sql(rule.when, reader, columns)
            result = _or(when, result) if rule.effect == "allow" else _and(_neg(when), result)
        if isinstance(result, bool):
            return true() if result else false()
        return result

    # PostgreSQL row-level security

    def rls_predicate(self, column: Callable[[str], str]) -> str:
        """The row rules as the SQL of a ``CREATE POLICY … USING (…)``: the reader's side read
        from the signed context (hv_ctx_org, hv_ctx_ancestry, hv_ctx_groups, hv_ctx_levels,
        hv_ctx_roles — ``CTX_ROLES_FUNCTION``). ``column(name)`` gives the SQL of a field's
        column (quoted: ``policy.rls.quote_ident``) of the field's natural type (text, bigint,
        double precision, boolean, date, timestamptz). Literals are rendered by this module
        only (escaped E'' strings and typed casts), operators come from a fixed list."""
        result = "true" if self._allow_by_default else "false"
        for rule in reversed(self._rows):
            when = _pg(rule.when, column)
            if rule.effect == "allow":
                result = when if result == "false" else f"({when} OR {result})"
            else:
                result = f"(NOT {when})" if result == "true" else f"(NOT {when} AND {result})"
        return result

    # review

    def widens(self, previous: RuleSet | None) -> bool:
        """Whether this rule set may let some reader see more than ``previous`` did
        (conservative: False only when provably not). Not wider: ``previous`` is None (no rules:
        the label alone), or these rules are the previous ones with deny rules inserted and
        allow rules removed anywhere (notes aside), the default unchanged or allow → deny, and
        the same holds of the rules of every column."""
        if previous is None:
            return False
        if self._allow_by_default and not previous._allow_by_default:
            return True
        if not _narrows(previous._row_keys(), self._row_keys()):
            return True
        names = set().union(*(named for named, _ in (*self._columns, *previous._columns)))
        return any(
            not _narrows(previous._column_keys(name), self._column_keys(name)) for name in names
        )

    def restricts(self) -> bool:
        """Whether a reader the label lets in may see less than every row and column
        (conservative): a row rule that denies, a default of deny, or any column rule."""
        if not self._allow_by_default or any(rule.effect == "deny" for rule in self._rows):
            return True
        return bool(self._columns)

    def _row_keys(self) -> list[tuple[str, str]]:
        return [(rule.effect, rule.key) for rule in self._rows]

    def _column_keys(self, name: str) -> list[tuple[str, str]]:
        return [(rule.effect, rule.key) for named, rule in self._columns if name in named]


def _key(effect: str, when: BaseModel) -> str:
    return _canonical([effect, when.model_dump(mode="json", by_alias=True)])


def _narrows(old: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]) -> bool:
    """``new`` is ``old`` with deny rules inserted and allow rules removed, anywhere: first
    match semantics then allow nothing ``old`` did not (an alignment, found by dynamic
    programming from the ends)."""
    n, m = len(old), len(new)
    reach = [[False] * (m + 1) for _ in range(n + 1)]
    for i in range(n, -1, -1):
        for j in range(m, -1, -1):
            if i == n and j == m:
                reach[i][j] = True
                continue
            ok = i < n and j < m and old[i] == new[j] and reach[i + 1][j + 1]
            ok = ok or (i < n and old[i][0] == "allow" and reach[i + 1][j])
            ok = ok or (j < m and new[j][0] == "deny" and reach[i][j + 1])
            reach[i][j] = ok
    return reach[0][0]


# Python


def _user_value(attr: str, reader: Reader) -> Any:
    if attr == "organisation":
        return reader.organisation
    if attr == "clearance":
        return reader.clearance_rank if reader.clearance_rank >= 0 else None
    if attr == "organisation_ancestors":
        return reader.ancestors
    return reader.groups if attr == "groups" else reader.roles


def _value(side: _Scalar, reader: Reader, rec: Mapping[str, Any]) -> Any:
    if isinstance(side, _Lit):
        return side.value
    if isinstance(side, _User):
        return _user_value(side.attr, reader)
    value = rec.get(side.field)
    if side.ranks is not None:
        return next((rank for name, rank in side.ranks if name == value), None)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _holds(cond: _Cond, reader: Reader, rec: Mapping[str, Any]) -> bool:
    if isinstance(cond, _Cmp):
        a = _value(cond.left, reader, rec)
        b = _value(cond.right, reader, rec)
        return a is not None and b is not None and bool(COMPARISONS[cond.op](a, b))
    if isinstance(cond, _In):
        item = _value(cond.item, reader, rec)
        if item is None:
            return False
        within = cond.within
        members = (
            within.members if isinstance(within, _LitSet) else _user_value(within.attr, reader)
        )
        return (item in members) != cond.negated
    if isinstance(cond, _Null):
        return (_value(cond.operand, reader, rec) is None) != cond.negated
    if isinstance(cond, _All):
        return all(_holds(part, reader, rec) for part in cond.parts)
    if isinstance(cond, _Any):
        return any(_holds(part, reader, rec) for part in cond.parts)
    return not _holds(cond.part, reader, rec)


# SQL (SQLAlchemy): a part is a constant (the reader's side alone) or an expression that is
# never NULL.

_Part = bool | ColumnElement[bool]
_FLIPPED = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}


def _and(*parts: _Part) -> _Part:
    if any(part is False for part in parts):
        return False
    rest = [part for part in parts if not isinstance(part, bool)]
    return True if not rest else rest[0] if len(rest) == 1 else and_(*rest)


def _or(*parts: _Part) -> _Part:
    if any(part is True for part in parts):
        return True
    rest = [part for part in parts if not isinstance(part, bool)]
    return False if not rest else rest[0] if len(rest) == 1 else or_(*rest)


def _neg(part: _Part) -> _Part:
    return (not part) if isinstance(part, bool) else not_(part)


def _member_sql(column: ColumnElement[Any], values: Sequence[Any], negated: bool) -> _Part:
    if not values:
        return column.is_not(None) if negated else False
    inside = column.not_in(values) if negated else column.in_(values)
    return and_(column.is_not(None), inside)


def _sql(cond: _Cond, reader: Reader, cols: Mapping[str, ColumnElement[Any]]) -> _Part:
    if isinstance(cond, _All):
        return _and(*(_sql(part, reader, cols) for part in cond.parts))
    if isinstance(cond, _Any):
        return _or(*(_sql(part, reader, cols) for part in cond.parts))
    if isinstance(cond, _Not):
        return _neg(_sql(cond.part, reader, cols))
    if isinstance(cond, _Null):
        if isinstance(cond.operand, _Rec):
            column = cols[cond.operand.field]
            return column.is_not(None) if cond.negated else column.is_(None)
        return _holds(cond, reader, {})
    if isinstance(cond, _In):
        if not isinstance(cond.item, _Rec):
            return _holds(cond, reader, {})
        within = cond.within
        values = (
            within.values
            if isinstance(within, _LitSet)
            else sorted(_user_value(within.attr, reader))
        )
        return _member_sql(cols[cond.item.field], values, cond.negated)
    left, right = cond.left, cond.right
    if isinstance(left, _Rec) and isinstance(right, _Rec):
        a, b = cols[left.field], cols[right.field]
        return and_(a.is_not(None), b.is_not(None), COMPARISONS[cond.op](a, b))
    if not isinstance(left, _Rec) and not isinstance(right, _Rec):
        return _holds(cond, reader, {})
    # One side is the row's, the other a constant: the row's on the left.
    op = cond.op if isinstance(left, _Rec) else _FLIPPED[cond.op]
    rec, constant = (left, right) if isinstance(left, _Rec) else (right, left)
    assert isinstance(rec, _Rec) and not isinstance(constant, _Rec)
    value = _value(constant, reader, {})
    if value is None:
        return False
    column = cols[rec.field]
    if rec.ranks is not None:  # a level name in the row: the names whose rank compares
        names = [name for name, rank in rec.ranks if COMPARISONS[op](rank, value)]
        return _member_sql(column, names, negated=False)
    return and_(column.is_not(None), COMPARISONS[op](column, value))


# PostgreSQL text: the reader's side from the context functions, every atom coalesced.

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _-.,/@")


def _pg_text(text: str) -> str:
    """A string literal made of safe ASCII only: every other character as a Unicode escape
    (no quote, backslash, colon or percent sign reaches the SQL text)."""
    out = [
        ch if ch in _SAFE else (f"\\u{ord(ch):04X}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08X}")
        for ch in text
    ]
    return "E'" + "".join(out) + "'"


def _pg_literal(value: Any, kind: str) -> str:
    if kind in ("string", "organisation"):
        return _pg_text(str(value))
    if kind == "level":
        return str(int(value))
    if kind == "integer":
        return f"CAST({int(value)} AS bigint)"
    if kind == "number":
        return f"CAST({_pg_text(repr(float(value)))} AS double precision)"
    if kind == "boolean":
        return "true" if value is True else "false"
    if kind == "date" and isinstance(value, date):
        return f"CAST({_pg_text(value.isoformat())} AS date)"
    if kind == "datetime" and isinstance(value, datetime):
        return f"CAST({_pg_text(value.isoformat())} AS timestamptz)"
    raise ValueError(f"no SQL literal for type {kind}")


def _pg_scalar(side: _Scalar, column: Callable[[str], str]) -> str:
    if isinstance(side, _Lit):
        return _pg_literal(side.value, side.type)
    if isinstance(side, _User):
        return CONTEXT_SQL[side.attr]
    sql = column(side.field)
    if side.ranks is None:
        return sql
    cases = " ".join(f"WHEN {_pg_text(name)} THEN {rank}" for name, rank in side.ranks)
    return f"(CASE {sql} {cases} END)"


def _pg(cond: _Cond, column: Callable[[str], str]) -> str:
    if isinstance(cond, _All | _Any):
        joiner = " AND " if isinstance(cond, _All) else " OR "
        parts = [_pg(part, column) for part in cond.parts]
        return "(" + joiner.join(parts) + ")" if parts else str(isinstance(cond, _All)).lower()
    if isinstance(cond, _Not):
        return f"(NOT {_pg(cond.part, column)})"
    if isinstance(cond, _Null):
        return f"({_pg_scalar(cond.operand, column)} IS {'NOT ' if cond.negated else ''}NULL)"
    if isinstance(cond, _Cmp):
        left, right = _pg_scalar(cond.left, column), _pg_scalar(cond.right, column)
        return f"coalesce(({left} {SQL_OPERATORS[cond.op]} {right}), false)"
    item, within = _pg_scalar(cond.item, column), cond.within
    if isinstance(within, _LitSet):
        if not within.values:
            return f"({item} IS NOT NULL)" if cond.negated else "false"
        listed = ", ".join(_pg_literal(v, within.type) for v in within.values)
        inside = f"{item} {'NOT IN' if cond.negated else 'IN'} ({listed})"
    else:
        array = f"{CONTEXT_SQL[within.attr]}::text[]"  # the cast: an array, not a sub-query
        inside = f"{'NOT ' if cond.negated else ''}({item} = ANY ({array}))"
    # NULL = ANY('{}') is false, not NULL: the guard keeps a null item false under NOT.
    return f"coalesce(({item} IS NOT NULL AND {inside}), false)"
