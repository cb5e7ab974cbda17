"""The derived product form read into a definition (no database): blank rows are skipped and
a refusal's path leads back to the form's row; a field in both sources is renamed; an
incomplete row is named in words."""

from __future__ import annotations

import pytest
from starlette.datastructures import ImmutableMultiDict

from hypervision.core.errors import Conflict
from hypervision.products import definition as defs
from hypervision.web.derive_forms import DeriveForm, FormProblem, control_of

A, B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def form(*pairs: tuple[str, str]) -> DeriveForm:
    return DeriveForm.of(ImmutableMultiDict([("source", A), ("name", "Lits"), *pairs]))


def test_blank_rows_are_skipped_and_refusals_point_at_the_right_row() -> None:
    sent = form(
        ("shape", "groups"), ("group_1", "a.departement"),
        ("filter_field_2", "a.service"), ("filter_op_2", "zz"), ("filter_value_2", "SAMU"),
        ("measure_fn_2", "sum"), ("measure_field_2", "a.lits"), ("measure_name_2", "Lits dispo"),
    )  # fmt: skip
    definition, rows = sent.definition()
    assert definition == {
        "sources": [{"product": A}],
        "where": [{"field": "a.service", "op": "eq", "value": "SAMU"}],  # unknown op: "is"
        "group_by": ["a.departement"],
        "measures": [{"fn": "sum", "name": "lits_dispo", "field": "a.lits"}],
    }
    assert defs.parse(definition).measures[0].name == "lits_dispo"
    found = defs.bad("definition.measures[0].field", "x", "x")
    assert control_of(found, rows) == "measure-field-2"
    assert control_of(defs.bad("definition.where[0].field", "x", "x"), rows) == "filter-field-2"
    assert control_of(defs.bad("definition.group_by[0]", "x", "x"), rows) == "group-1"
    assert control_of(Conflict("pris", "taken"), rows) == "derive-slug"
    assert sent.product_slug() == "lits"
    assert form(("name", "Lits par département")).product_slug() == "lits-par-departement"


def test_two_sources_need_a_match_and_same_names_are_renamed() -> None:
    two = [("source2", B), ("column", "a.nom"), ("column", "b.nom"), ("column", "b.code")]
    with pytest.raises(FormProblem) as refused:
        form(*two).definition()
    assert refused.value.control == "join-left-0" and "champ commun" in refused.value.fr
    with pytest.raises(FormProblem) as half:
        form(*two, ("join_right_1", "code")).definition()
    assert half.value.control == "join-left-1"
    definition, rows = form(*two, ("join_left_1", "code"), ("join_right_1", "code")).definition()
    assert definition["join"] == {"how": "inner", "on": [{"left": "code", "right": "code"}]}
    assert definition["columns"] == [
        {"field": "a.nom"}, {"field": "b.nom", "name": "nom_2"}, {"field": "b.code"},
    ]  # fmt: skip
    assert control_of(defs.bad("definition.join.on[0].right", "x", "x"), rows) == "join-right-1"


@pytest.mark.parametrize(
    ("pairs", "control", "words"),
    [
        ((("shape", "groups"), ("measure_fn_0", "count")), "measure-name-0", "donnez un nom"),
        ((("shape", "groups"), ("measure_name_1", "n")), "measure-fn-1", "ce qui est calculé"),
        ((("shape", "groups"),), "measure-fn-0", "au moins un calcul"),
        ((("shape", "columns"),), "column-0", "au moins une colonne"),
        ((("filter_value_1", "75"), ("column", "a.lits")), "filter-field-1", "le champ"),
    ],
)
def test_an_incomplete_form_is_named_in_words(
    pairs: tuple[tuple[str, str], ...], control: str, words: str
) -> None:
    with pytest.raises(FormProblem) as refused:
        form(*pairs).definition()
    assert refused.value.control == control and words in refused.value.fr
    assert refused.value.status == 422
