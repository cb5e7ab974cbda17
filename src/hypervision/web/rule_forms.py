"""Stewards' rules without code (issue 17): a product's rule tree (``products.rules``) read out
in words, and edited through a plain form — rules made of conditions ("the reader's
organisation is among …", "the field « service » ≠ SAMU"), each rule one list of conditions that
must all (or any) hold.

The form covers the trees people write: a rule's condition is one comparison, or all / any of
comparisons, each possibly negated. A tree written through the API with deeper nesting reads in
words but is edited through the API (``RulesForm.editable`` is False).

A condition the steward did not touch goes back exactly as it came (its node is carried in the
form), so saving unchanged rules never looks like a widening to the four-eyes check."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.datastructures import FormData

from hypervision.core.i18n import N_
from hypervision.core.timezone import PARIS

Gettext = Callable[..., str]

USER_OPERANDS = {  # user attribute -> words
    "organisation": N_("the reader's organisation"),
    "organisation_ancestors": N_("the reader's organisations (own and parents)"),
    "groups": N_("the reader's groups"),
    "roles": N_("the reader's roles"),
    "clearance": N_("the reader's clearance"),
}
USER_SETS = frozenset({"organisation_ancestors", "groups", "roles"})
OPERATORS = {
    "eq": N_("is"),
    "ne": N_("is not"),
    "lt": N_("is less than"),
    "le": N_("is at most"),
    "gt": N_("is more than"),
    "ge": N_("is at least"),
    "in": N_("is one of"),
    "not_in": N_("is none of"),
    "contains": N_("contains"),
    "is_null": N_("is empty"),
    "not_null": N_("is not empty"),
}
FLIPPED = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
MATCHES = {
    "all": N_("all these conditions hold"),
    "any": N_("at least one of these conditions holds"),
    "always": N_("always (no condition)"),
}
TRUE_WORDS = frozenset({"oui", "vrai", "true", "yes", "1"})
FALSE_WORDS = frozenset({"non", "faux", "false", "no", "0"})
MAX_FORM_RULES = 50
MAX_FORM_ATOMS = 20


# --- reading a tree in words -------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """What the words need: the product's fields (name -> title) and organisations."""

    fields: Mapping[str, str]
    orgs: Mapping[uuid.UUID, str]  # id -> code
    _: Gettext

    def operand(self, node: Mapping[str, Any]) -> str:
        if "user" in node:
            return self._(USER_OPERANDS.get(str(node["user"]), str(node["user"])))
        if "rec" in node:
            name = str(node["rec"])
            return "« " + (self.fields.get(name) or name) + " »"
        return self.literal(node.get("value"))

    def literal(self, value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(self.literal(v) for v in value)
        if isinstance(value, bool):
            return self._("yes") if value else self._("no")
        if isinstance(value, str):
            try:
                return self.orgs.get(uuid.UUID(value)) or value
            except ValueError:
                return value
        return str(value)

    def condition(self, node: Mapping[str, Any]) -> str:
        if "all" in node:
            parts = [self.condition(c) for c in node["all"]]
            return " ; ".join(parts) if parts else self._("always")
        if "any" in node:
            parts = [self.condition(c) for c in node["any"]]
            return (" " + self._("or") + " ").join(f"({p})" for p in parts) or self._("never")
        if "not" in node:
            return self._("not") + " (" + self.condition(node["not"]) + ")"
        op = str(node.get("op", ""))
        left = self.operand(node.get("left", {}))
        words = self._(OPERATORS.get(op, op))
        if op in ("is_null", "not_null"):
            return f"{left} {words}"
        return f"{left} {words} {self.operand(node.get('right', {}))}"


def describe(tree: Mapping[str, Any], words: Vocabulary) -> dict[str, Any]:
    """The rules as sentences: rows in order, the default, then the column rules."""
    _ = words._
    rows = [
        (
            _("Show the rows when: %(c)s")
            if r.get("effect") == "allow"
            else _("Hide the rows when: %(c)s")
        )
        % {"c": words.condition(r.get("when", {}))}
        for r in tree.get("rows", [])
    ]
    default = tree.get("rows_default", "allow")
    columns = [
        (
            _("Show %(cols)s when: %(c)s")
            if c.get("effect") == "allow"
            else _("Hide %(cols)s when: %(c)s")
        )
        % {
            "cols": ", ".join(words.operand({"rec": n}) for n in c.get("columns", [])),
            "c": words.condition(c.get("when", {})),
        }
        for c in tree.get("columns", [])
    ]
    return {
        "rows": rows,
        "default": _("Otherwise, show the row.")
        if default == "allow"
        else _("Otherwise, hide the row."),
        "columns": columns,
        "notes": [r.get("note", "") for r in tree.get("rows", [])],
    }


# --- the form ----------------------------------------------------------------------------


@dataclass
class Atom:
    left: str = ""  # "user:<attribute>" or "rec:<field>"
    op: str = "eq"
    right: str = "value"  # "value", "user:<attribute>" or "rec:<field>"
    value: str = ""  # the literal typed, when right is "value"
    negate: bool = False
    original: str = ""  # the node this atom was read from (JSON), kept when untouched


@dataclass
class FormRule:
    effect: str = "allow"
    match: str = "all"  # all | any | always
    atoms: list[Atom] = field(default_factory=list)
    note: str = ""
    columns: list[str] = field(default_factory=list)  # column rules only


@dataclass
class RulesForm:
    rows: list[FormRule] = field(default_factory=list)
    rows_default: str = "allow"
    columns: list[FormRule] = field(default_factory=list)
    editable: bool = True


def _operand_key(node: Mapping[str, Any]) -> str | None:
    if "user" in node:
        return f"user:{node['user']}"
    if "rec" in node:
        return f"rec:{node['rec']}"
    return None


def _text_of(value: Any, orgs: Mapping[uuid.UUID, str]) -> str:
    if isinstance(value, list):
        return " ; ".join(_text_of(v, orgs) for v in value)
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, str):
        try:
            return orgs.get(uuid.UUID(value)) or value
        except ValueError:
            return value
    return "" if value is None else str(value)


def _atom_of(node: Mapping[str, Any], orgs: Mapping[uuid.UUID, str]) -> Atom | None:
    negate = False
    original = json.dumps(node, sort_keys=True, ensure_ascii=False)
    if "not" in node and isinstance(node["not"], Mapping):
        negate, node = True, node["not"]
    op = node.get("op")
    if op not in OPERATORS or not isinstance(node.get("left"), Mapping):
        return None
    left = node["left"]
    if op in ("is_null", "not_null"):
        key = _operand_key(left)
        return Atom(key, op, "value", "", negate, original) if key else None
    right = node.get("right")
    if not isinstance(right, Mapping):
        return None
    if "value" in left:  # a literal on the left reads the other way round
        key = _operand_key(right)
        if key is None:
            return None
        if op == "in":
            op = "contains"
        elif op in FLIPPED:
            op = FLIPPED[op]
        else:
            return None
        return Atom(key, op, "value", _text_of(left["value"], orgs), negate, original)
    key = _operand_key(left)
    if key is None:
        return None
    if "value" in right:
        return Atom(key, op, "value", _text_of(right["value"], orgs), negate, original)
    other = _operand_key(right)
    return Atom(key, op, other, "", negate, original) if other else None


def _rule_of(rule: Mapping[str, Any], orgs: Mapping[uuid.UUID, str]) -> FormRule | None:
    when = rule.get("when", {})
    if not isinstance(when, Mapping):
        return None
    match, nodes = "all", [when]
    for key in ("all", "any"):
        if key in when:
            match, nodes = key, list(when[key])
    if not nodes:
        if match == "any":
            return None
        match = "always"
    atoms = [_atom_of(n, orgs) if isinstance(n, Mapping) else None for n in nodes]
    if any(a is None for a in atoms):
        return None
    return FormRule(
        effect=str(rule.get("effect", "allow")),
        match=match,
        atoms=[a for a in atoms if a is not None],
        note=str(rule.get("note", "")),
        columns=[str(c) for c in rule.get("columns", [])],
    )


def form_of(tree: Mapping[str, Any] | None, orgs: Mapping[uuid.UUID, str]) -> RulesForm:
    """The form showing ``tree`` (not editable when it holds what the form cannot show)."""
    if not tree:
        return RulesForm()
    rows = [_rule_of(r, orgs) for r in tree.get("rows", [])]
    columns = [_rule_of(c, orgs) for c in tree.get("columns", [])]
    editable = all(r is not None for r in (*rows, *columns))
    return RulesForm(
        rows=[r for r in rows if r is not None],
        rows_default=str(tree.get("rows_default", "allow")),
        columns=[c for c in columns if c is not None],
        editable=editable,
    )


def _index(raw: str, limit: int) -> int | None:
    return int(raw) if raw.isdigit() and int(raw) < limit else None


def posted(form: FormData) -> tuple[RulesForm, str]:
    """The form as posted, with the steward's action applied (``add_row``, ``del_row:2``,
    ``add_atom:c0``, …); returns the form and ``"save"`` when it is to be saved."""

    def text(name: str, limit: int = 1000) -> str:
        value = form.get(name)
        return value[:limit] if isinstance(value, str) else ""

    def rule(prefix: str, column: bool) -> FormRule:
        count = _index(text(f"{prefix}_n"), MAX_FORM_ATOMS + 1) or 0
        atoms = [
            Atom(
                left=text(f"{prefix}_a{j}_left", 300),
                op=text(f"{prefix}_a{j}_op", 20),
                right=text(f"{prefix}_a{j}_right", 300) or "value",
                value=text(f"{prefix}_a{j}_value"),
                negate=bool(text(f"{prefix}_a{j}_not", 10)),
                original=text(f"{prefix}_a{j}_orig", 20_000),
            )
            for j in range(count)
        ]
        return FormRule(
            effect="deny" if text(f"{prefix}_effect", 10) == "deny" else "allow",
            match=text(f"{prefix}_match", 10) or "all",
            atoms=atoms,
            note=text(f"{prefix}_note"),
            columns=[str(c)[:200] for c in form.getlist(f"{prefix}_cols")][:200] if column else [],
        )

    rows_n = _index(text("rows_n"), MAX_FORM_RULES + 1) or 0
    cols_n = _index(text("cols_n"), MAX_FORM_RULES + 1) or 0
    result = RulesForm(
        rows=[rule(f"r{i}", False) for i in range(rows_n)],
        rows_default="deny" if text("rows_default", 10) == "deny" else "allow",
        columns=[rule(f"c{k}", True) for k in range(cols_n)],
    )
    action = text("action", 40)
    verb, _, target = action.partition(":")
    lists = {"r": result.rows, "c": result.columns}
    found = re.fullmatch(r"([rc])(\d+)(?:a(\d+))?", target)
    if verb == "add_row" and len(result.rows) < MAX_FORM_RULES:
        result.rows.append(FormRule(atoms=[Atom()]))
    elif verb == "add_col" and len(result.columns) < MAX_FORM_RULES:
        result.columns.append(FormRule(effect="deny", atoms=[Atom(left="user:groups")]))
    elif found and int(found[2]) < len(lists[found[1]]):
        chosen = lists[found[1]][int(found[2])]
        if verb == "del_rule":
            del lists[found[1]][int(found[2])]
        elif verb == "add_atom" and len(chosen.atoms) < MAX_FORM_ATOMS:
            chosen.atoms.append(Atom(left="user:groups" if found[1] == "c" else ""))
        elif verb == "del_atom" and found[3] is not None and int(found[3]) < len(chosen.atoms):
            del chosen.atoms[int(found[3])]
    return result, "save" if verb == "save" else "edit"


class Values:
    """Turns typed text into the literal the other side of a condition expects."""

    def __init__(self, types: Mapping[str, str], orgs: Mapping[uuid.UUID, str]) -> None:
        self.types = types
        self.by_code = {code.casefold(): str(org_id) for org_id, code in orgs.items()}

    def expected(self, operand: str) -> str:
        kind, _, name = operand.partition(":")
        if kind == "rec":
            return self.types.get(name, "string")
        return {"organisation": "organisation", "organisation_ancestors": "organisation"}.get(
            name, "string"
        )

    def one(self, raw: str, kind: str) -> Any:
        raw = raw.strip()
        if kind == "organisation":
            return self.by_code.get(raw.casefold(), raw)
        if kind == "integer":
            digits = raw.replace(" ", "").replace("\u202f", "").lstrip("+")
            return int(digits) if re.fullmatch(r"-?\d+", digits) else raw
        if kind == "number":
            number = raw.replace(" ", "").replace("\u202f", "").replace(",", ".")
            try:
                return float(number)
            except ValueError:
                return raw
        if kind == "boolean":
            folded = raw.casefold()
            return True if folded in TRUE_WORDS else False if folded in FALSE_WORDS else raw
        if kind == "date":
            found = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", raw)
            return f"{found[3]}-{int(found[2]):02}-{int(found[1]):02}" if found else raw
        if kind == "datetime":
            try:  # dd/mm/yyyy hh:mm, read in Paris time
                moment = datetime.strptime(raw, "%d/%m/%Y %H:%M").replace(tzinfo=PARIS)
                return moment.isoformat()
            except ValueError:
                return raw
        return raw

    def literal(self, atom: Atom) -> Any:
        kind = self.expected(atom.left)
        if atom.op in ("in", "not_in"):
            return [self.one(part, kind) for part in re.split(r"[;\n]", atom.value) if part.strip()]
        return self.one(atom.value, kind)


def _operand(key: str) -> dict[str, Any]:
    kind, _, name = key.partition(":")
    if kind in ("user", "rec") and name:
        return {kind: name}
    return {"rec": key}  # left for the rules' own validation to name


def _shape(atom: Atom) -> tuple[str, str, str, str, bool]:
    return atom.left, atom.op, atom.right, atom.value.strip(), atom.negate


def _node(atom: Atom, values: Values, orgs: Mapping[uuid.UUID, str]) -> dict[str, Any]:
    if atom.original:
        try:
            original = json.loads(atom.original)
        except ValueError:
            original = None
        if isinstance(original, dict):
            again = _atom_of(original, orgs)
            if again is not None and _shape(again) == _shape(atom):
                return original
    node: dict[str, Any] = {"op": atom.op, "left": _operand(atom.left)}
    if atom.op not in ("is_null", "not_null"):
        if atom.right == "value":
            node["right"] = {"value": values.literal(atom)}
        else:
            node["right"] = _operand(atom.right)
    return {"not": node} if atom.negate else node


def _when(rule: FormRule, values: Values, orgs: Mapping[uuid.UUID, str]) -> dict[str, Any]:
    nodes = [_node(a, values, orgs) for a in rule.atoms if a.left]
    if rule.match == "always" or not nodes:
        return {"all": []}
    if len(nodes) == 1 and rule.match == "all":
        return nodes[0]
    return {"any" if rule.match == "any" else "all": nodes}


def tree_of(
    form: RulesForm, types: Mapping[str, str], orgs: Mapping[uuid.UUID, str]
) -> dict[str, Any]:
    """The rule tree the form says (validated afterwards by ``RuleSet.parse``)."""
    values = Values(types, orgs)

    def noted(node: dict[str, Any], rule: FormRule) -> dict[str, Any]:
        return node | ({"note": rule.note} if rule.note else {})

    return {
        "rows": [noted({"effect": r.effect, "when": _when(r, values, orgs)}, r) for r in form.rows],
        "rows_default": form.rows_default,
        "columns": [
            noted({"columns": c.columns, "effect": c.effect, "when": _when(c, values, orgs)}, c)
            for c in form.columns
        ],
    }


_PATH = re.compile(r"(rows|columns)\[(\d+)\](?:\.when(?:\.(?:all|any)\[(\d+)\])?)?(.*)")


def where(path: str, _: Gettext) -> str:
    """A validation path (``rows[2].when.all[0].right``) in words: "Row rule 3, condition 1"."""
    found = _PATH.match(path)
    if not found:
        return path
    kind, index, atom, rest = found.groups()
    words = (_("Row rule %(n)s") if kind == "rows" else _("Column rule %(n)s")) % {
        "n": int(index) + 1
    }
    if ".when" in path:
        words += ", " + _("condition %(n)s") % {"n": int(atom or 0) + 1}
    if rest.endswith(".left") or ".left." in rest:
        words += " (" + _("left side") + ")"
    elif rest.endswith(".right") or ".right." in rest:
        words += " (" + _("right side") + ")"
    return words


def operand_choices(
    fields: Sequence[Mapping[str, Any]], _: Gettext, *, rows: bool
) -> list[tuple[str, str]]:
    """The sides a condition may compare: the reader's attributes, then (row rules) the
    product's fields that conditions may name (not geometries)."""
    choices = [(f"user:{k}", _(words)) for k, words in USER_OPERANDS.items()]
    if rows:
        choices += [
            (f"rec:{f['name']}", _("field « %(f)s »") % {"f": f.get("title") or f["name"]})
            for f in fields
            if f.get("type") not in ("geometry", "geojson")
        ]
    return choices
