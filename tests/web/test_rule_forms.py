"""Stewards' rules without code (web/rule_forms.py): every demo tree reads back exactly from
its form, typed values become the literals the other side expects, validation paths read in
words, and trees the form cannot show are not offered for editing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from hypervision.config import Settings
from hypervision.core.i18n import Translator
from hypervision.demo.products import PRODUCTS
from hypervision.products.rules import RuleError, RuleSet
from hypervision.web import rule_forms
from hypervision.web.rule_forms import Atom, FormRule, RulesForm, Values

ORGS = {uuid.uuid4(): code for code in ("MINSANTE", "MININT", "SANTE", "PREF")}
BY_CODE = {code: str(org_id) for org_id, code in ORGS.items()}
FR = Translator("fr").gettext


@pytest.mark.parametrize("spec", [p for p in PRODUCTS if p.rules(BY_CODE)], ids=lambda p: p.slug)
def test_every_demo_tree_comes_back_unchanged(spec: Any) -> None:
    tree = spec.rules(BY_CODE)
    form = rule_forms.form_of(tree, ORGS)
    assert form.editable
    types = {f["name"]: f["type"] for f in spec.fields}
    assert rule_forms.tree_of(form, types, ORGS) == {**tree, "columns": tree.get("columns", [])}


def test_a_changed_condition_is_written_anew_with_typed_values() -> None:
    tree = PRODUCTS[0].rules(BY_CODE)
    assert tree is not None
    form = rule_forms.form_of(tree, ORGS)
    member = form.rows[1].atoms[0]  # "MINSANTE in the reader's organisations", read the other way
    assert (member.left, member.op, member.value) == (
        "user:organisation_ancestors",
        "contains",
        "MINSANTE",
    )
    member.value = "mininT"  # another organisation, by its code in any case
    written = rule_forms.tree_of(form, {}, ORGS)
    assert written["rows"][1]["when"] == {
        "op": "contains",
        "left": {"user": "organisation_ancestors"},
        "right": {"value": BY_CODE["MININT"]},
    }
    assert written["rows"][0] == tree["rows"][0]  # untouched: the very node


def test_values_take_the_type_of_the_other_side() -> None:
    values = Values({"lits": "integer", "taux": "number", "ouvert": "boolean",
                     "jour": "date", "vu": "datetime"}, ORGS)  # fmt: skip
    assert values.one("1 200", "integer") == 1200
    assert values.one("0,875", "number") == 0.875
    assert values.one("Oui", "boolean") is True and values.one("non", "boolean") is False
    assert values.one("02/08/2024", "date") == "2024-08-02"
    assert values.one("02/08/2024 14:30", "datetime") == "2024-08-02T14:30:00+02:00"
    assert values.one("douze", "integer") == "douze"  # left for the rules to refuse, by name
    assert values.literal(Atom("rec:lits", "in", "value", "1; 2 ;3")) == [1, 2, 3]
    assert values.literal(Atom("user:organisation", "eq", "value", "PREF")) == BY_CODE["PREF"]


def test_a_wrong_value_is_named_in_words() -> None:
    form = RulesForm(rows=[FormRule(atoms=[Atom("rec:lits", "eq", "value", "douze")])])
    tree = rule_forms.tree_of(form, {"lits": "integer"}, ORGS)
    with pytest.raises(RuleError) as refused:
        RuleSet.parse(tree, {"lits": "integer"}, Settings().label_levels)
    places = [rule_forms.where(p.path, FR) for p in refused.value.problems]
    assert places == ["Règle de lignes 1, condition 1 (terme de droite)"], places
    assert "entier attendu" in refused.value.problems[0].fr


def test_nested_trees_read_in_words_but_are_not_offered_for_editing() -> None:
    nested = {
        "rows": [{"effect": "deny", "when": {"any": [{"all": [
            {"op": "eq", "left": {"rec": "service"}, "right": {"value": "SAMU"}},
            {"op": "is_null", "left": {"user": "organisation"}},
        ]}]}}],
        "rows_default": "allow",
    }  # fmt: skip
    assert not rule_forms.form_of(nested, ORGS).editable
    words = rule_forms.Vocabulary({"service": "Service"}, ORGS, FR)
    described = rule_forms.describe(nested, words)
    assert described["rows"] == [
        "Masquer les lignes quand : (« Service » est SAMU ; l'organisation du lecteur est vide)"
    ], described
    assert described["default"] == "Sinon, la ligne est montrée."


def test_posted_actions_add_and_remove_rules_and_conditions() -> None:
    from starlette.datastructures import FormData

    base = [("rows_n", "1"), ("r0_n", "2"), ("r0_effect", "deny"), ("r0_match", "any"),
            ("r0_a0_left", "rec:service"), ("r0_a0_op", "eq"), ("r0_a0_value", "SAMU"),
            ("r0_a1_left", "user:groups"), ("r0_a1_op", "contains"), ("r0_a1_value", "X"),
            ("r0_a1_not", "1"), ("cols_n", "0"), ("rows_default", "deny")]  # fmt: skip
    form, action = rule_forms.posted(FormData([*base, ("action", "del_atom:r0a0")]))
    assert action == "edit" and [a.left for a in form.rows[0].atoms] == ["user:groups"]
    assert form.rows[0].atoms[0].negate and form.rows_default == "deny"
    form, _ = rule_forms.posted(FormData([*base, ("action", "add_col")]))
    assert len(form.columns) == 1 and form.columns[0].effect == "deny"
    form, _ = rule_forms.posted(FormData([*base, ("action", "del_rule:r0")]))
    assert form.rows == []
    form, action = rule_forms.posted(FormData([*base, ("action", "save")]))
    assert action == "save"
    assert rule_forms.tree_of(form, {"service": "string"}, ORGS)["rows"] == [
        {"effect": "deny", "when": {"any": [
            {"op": "eq", "left": {"rec": "service"}, "right": {"value": "SAMU"}},
            {"not": {"op": "contains", "left": {"user": "groups"}, "right": {"value": "X"}}},
        ]}}
    ]  # fmt: skip
    forged, _ = rule_forms.posted(FormData([("rows_n", "99999"), ("action", "del_rule:r7")]))
    assert forged.rows == []  # more rules than allowed: none read
