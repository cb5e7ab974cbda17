"""Chart specs: what is refused (in French and English), the accessible table of each kind,
grouped aggregates pivoted into series, numbers counted into bins."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from hypothesis import given
from hypothesis import strategies as st

from hypervision.core.charts import (
    MISSING,
    ChartSpec,
    from_groups,
    histogram,
    number,
    parse_spec,
    table_of,
)
from hypervision.core.errors import Invalid, install_handlers


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "bar",
        "categories": ["Stade", "Arena"],
        "series": [{"name": "Entrées", "values": [3, 1]}],
        **extra,
    }


def refusal(data: dict[str, Any]) -> Invalid:
    with pytest.raises(Invalid) as caught:
        parse_spec(data)
    assert caught.value.status == 422
    return caught.value


def test_a_well_formed_spec_round_trips_as_json() -> None:
    chart = parse_spec(spec(stacked=True, unit="lits", y_label="Nombre"))
    assert chart.series[0].values == [3.0, 1.0]
    assert ChartSpec.model_validate(chart.model_dump(mode="json")) == chart


@pytest.mark.parametrize(
    ("data", "fr", "en"),
    [
        (
            spec(series=[{"name": "Entrées", "values": [3]}]),
            "la série « Entrées » a 1 valeurs pour 2 catégories",
            "series 'Entrées' has 1 values for 2 categories",
        ),
        (spec(kind="pie", stacked=True), "ne s'empile pas", "cannot be stacked"),
        (spec(kind="line", horizontal=True), "ne se couche pas", "cannot be horizontal"),
        (
            spec(kind="donut", series=[{"name": "a", "values": [1, 2]}] * 2),
            "une seule série (2 données)",
            "has one series (2 given)",
        ),
        (spec(kind="pie", series=[{"name": "a", "values": [1, -2]}]), "négative", "negative"),
        (spec(kind="heatmap"), "une série par ligne (0 lignes, 1 séries)", "one series per row"),
        (spec(rows=["x"]), "seule une carte de chaleur", "only a heatmap"),
        (
            spec(series=[{"name": "a", "values": [1, float("inf")]}]),
            "valeur non finie",
            "not finite",
        ),
    ],
)
def test_incoherent_specs_are_refused_in_both_languages(
    data: dict[str, Any], fr: str, en: str
) -> None:
    error = refusal(data)
    assert fr in error.fr and error.fr.startswith("Graphique invalide : ")
    assert en in error.en and error.en.startswith("Invalid chart: ")


def test_structural_errors_name_the_field() -> None:
    error = refusal(spec(kind="radar"))
    assert error.extra["fields"][0]["field"] == "kind"
    error = refusal(spec(colour="red"))
    assert error.extra["fields"][0]["field"] == "colour"
    assert refusal(spec(series=[])).extra["fields"][0]["field"] == "series"


async def test_an_api_body_holding_a_spec_gets_the_french_message() -> None:
    app = FastAPI()
    install_handlers(app)

    @app.post("/chart")
    def take(chart: ChartSpec) -> int:
        return len(chart.categories)

    body = spec(kind="pie", stacked=True)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        bad = await http.post("/chart", json=body)
        english = await http.post("/chart", json=body, headers={"Accept-Language": "en"})
        good = await http.post("/chart", json=spec())
    assert bad.status_code == 422
    assert "ne s'empile pas" in bad.json()["error"]["message"]
    assert "cannot be stacked" in english.json()["error"]["message"]
    assert good.json() == 2


def test_numbers_read_the_french_way() -> None:
    assert number(1234.5) == "1\u202f234,5"
    assert number(3.0) == "3"
    assert number(2.5) == "2,5" and number(1 / 3) == "0,33" and number(-1200) == "-1\u202f200"
    assert number(12, "lits") == "12\u00a0lits"
    assert number(None) == MISSING


def test_table_of_bars_has_a_row_per_category_and_a_total_when_stacked() -> None:
    chart = parse_spec(
        spec(
            stacked=True,
            x_label="Site",
            series=[
                {"name": "Entrées", "values": [3, 1]},
                {"name": "Sorties", "values": [2, None]},
            ],
        )
    )
    headers, rows = table_of(chart)
    assert headers == ["Site", "Entrées", "Sorties", "Total"]
    assert rows == [["Stade", "3", "2", "5"], ["Arena", "1", MISSING, "1"]]
    headers, rows = table_of(chart.model_copy(update={"stacked": False}))
    assert headers == ["Site", "Entrées", "Sorties"] and rows[1] == ["Arena", "1", MISSING]


def test_table_of_a_pie_gives_each_slice_its_share() -> None:
    chart = parse_spec(spec(kind="donut", series=[{"name": "Entrées", "values": [3, 1]}]))
    headers, rows = table_of(chart)
    assert headers == ["Catégorie", "Entrées", "Part"]
    assert rows == [["Stade", "3", "75\u00a0%"], ["Arena", "1", "25\u00a0%"]]


def test_table_of_a_heatmap_has_a_row_per_row() -> None:
    chart = parse_spec(
        {
            "kind": "heatmap",
            "categories": ["lun.", "mar."],
            "rows": ["Matin", "Soir"],
            "series": [{"name": "Matin", "values": [1, 2]}, {"name": "Soir", "values": [0, 5]}],
            "y_label": "Moment",
        }
    )
    assert table_of(chart) == (
        ["Moment", "lun.", "mar."],
        [["Matin", "1", "2"], ["Soir", "0", "5"]],
    )


GROUPS: list[dict[str, Any]] = [
    {"category": "securite", "severity": "major", "count": 4},
    {"category": "securite", "severity": "minor", "count": 1},
    {"category": "sante", "severity": "minor", "count": 2},
    {"category": None, "severity": "info", "count": 7},
]


def test_from_groups_pivots_series_and_fills_absent_pairs() -> None:
    chart = from_groups(
        GROUPS,
        category_key="category",
        series_key="severity",
        measure_key="count",
        stacked=True,
        labels={"securite": "Sécurité", "major": "Majeure"},
    )
    assert chart.categories == ["Sécurité", "sante", MISSING]
    assert [s.name for s in chart.series] == ["Majeure", "minor", "info"]
    assert [s.values for s in chart.series] == [[4, 0, 0], [1, 2, 0], [0, 0, 7]]
    gaps = from_groups(GROUPS, category_key="category", series_key="severity", missing=None)
    assert gaps.series[0].values == [4, None, None]


def test_from_groups_without_series_and_as_heatmap() -> None:
    chart = from_groups(GROUPS, category_key="category", kind="pie", series_name="Entrées")
    assert chart.categories == ["securite", "sante", MISSING]
    assert chart.series[0].name == "Entrées" and chart.series[0].values == [5, 2, 7]
    heat = from_groups(GROUPS, category_key="category", series_key="severity", kind="heatmap")
    assert heat.rows == ["major", "minor", "info"] and len(heat.series) == 3
    assert from_groups([], category_key="x").categories == []


def test_from_groups_refuses_a_measure_that_is_not_a_number() -> None:
    with pytest.raises(Invalid) as caught:
        from_groups([{"x": "a", "count": "12"}], category_key="x")
    assert "n'est pas un nombre" in caught.value.fr
    with pytest.raises(Invalid):
        from_groups(GROUPS, category_key="category", series_key="severity", kind="pie")


def test_histogram_counts_into_equal_bins() -> None:
    chart = histogram([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, None, float("nan")], bins=5)
    assert chart.kind == "histogram"
    assert chart.categories[0] == "[0 ; 2[" and chart.categories[-1] == "[8 ; 10]"
    assert chart.series[0].values == [2, 2, 2, 2, 2]
    assert histogram([3, 3], bins=4).categories == ["[3 ; 4]"]
    assert histogram([]).categories == []
    with pytest.raises(Invalid):
        histogram([1], bins=0)


@given(st.lists(st.floats(-1e6, 1e6), max_size=200), st.integers(1, 30))
def test_histogram_counts_every_value_once(values: list[float], bins: int) -> None:
    chart = histogram(values, bins)
    assert sum(v or 0 for v in chart.series[0].values) == len(values)
    assert len(chart.categories) == len(chart.series[0].values)
