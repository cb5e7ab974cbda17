"""Charts drawn as SVG for the PDFs: every kind gives well-formed SVG without script, the
drawing holds one mark per value (bars, slices, cells), stacking adds up, and text from the
data is escaped; any valid spec draws (Hypothesis)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from hypervision.core.chart_svg import PALETTE, svg_of
from hypervision.core.charts import ChartSpec

NS = "{http://www.w3.org/2000/svg}"


def drawn(spec: Mapping[str, object]) -> ET.Element:
    root = ET.fromstring(svg_of(ChartSpec.model_validate(spec), "Titre <b>"))  # noqa: S314 - ours
    assert root.tag == f"{NS}svg"
    assert all(el.tag != f"{NS}script" for el in root.iter())
    assert root.find(f"{NS}title").text == "Titre <b>"  # type: ignore[union-attr]
    return root


def filled(root: ET.Element, colour: str) -> list[ET.Element]:
    return [el for el in root.iter() if el.get("fill") == colour]


def test_grouped_and_stacked_bars_draw_one_bar_per_value() -> None:
    spec = {"kind": "bar", "categories": ["Nord", "Sud", "<script>x</script>"],
            "series": [{"name": "Bus", "values": [3, None, 5]},
                       {"name": "Métro", "values": [2, 4, 1]}]}  # fmt: skip
    grouped = drawn(spec)
    assert len(filled(grouped, PALETTE[0])) == 2 + 1  # two bars, and the legend's square
    assert len(filled(grouped, PALETTE[1])) == 3 + 1
    texts = [t.text for t in grouped.iter(f"{NS}text")]
    assert "<script>x</script>" in texts  # escaped in the file, read back as text
    assert "&lt;script&gt;" in svg_of(ChartSpec.model_validate(spec))

    stacked = drawn({**spec, "stacked": True})
    bars = [el for el in stacked.iter(f"{NS}rect") if el.get("fill") in PALETTE[:2]
            and float(el.get("width", 0)) > 9]  # fmt: skip
    nord = [b for b in bars if abs(float(b.get("x", 0)) - float(bars[0].get("x", 0))) < 0.1]
    assert len(nord) == 2
    heights = sorted(float(b.get("height", 0)) for b in nord)
    assert abs(heights[1] / heights[0] - 3 / 2) < 0.01  # Bus 3 on top of Métro 2


def test_lines_areas_pies_heatmaps_and_histograms() -> None:
    over_time = {"categories": ["08:00", "09:00", "10:00"],
                 "series": [{"name": "Appels", "values": [5, 8, 2]}]}  # fmt: skip
    line = drawn({"kind": "line", **over_time})
    (poly,) = list(line.iter(f"{NS}polyline"))
    assert len(poly.get("points", "").split()) == 3
    area = drawn({"kind": "area", **over_time})
    assert len(list(area.iter(f"{NS}polygon"))) == 1

    pie = drawn({"kind": "donut", "categories": ["A", "B", "C"],
                 "series": [{"name": "Part", "values": [1, 0, 3]}]})  # fmt: skip
    assert len(list(pie.iter(f"{NS}path"))) == 2  # a zero slice is not drawn
    assert any("75" in (t.text or "") for t in pie.iter(f"{NS}text"))  # C's share

    heat = drawn({"kind": "heatmap", "categories": ["L", "M"], "rows": ["Nuit", "Jour"],
                  "series": [{"name": "Nuit", "values": [1, 2]},
                             {"name": "Jour", "values": [None, 4]}]})  # fmt: skip
    assert len(filled(heat, "#000091")) == 3 and len(filled(heat, "#f6f6f6")) == 1

    histogram = drawn({"kind": "histogram", "horizontal": True, "categories": ["0–10", "10–20"],
                       "series": [{"name": "Lits", "values": [4, 9]}]})  # fmt: skip
    assert len(filled(histogram, PALETTE[0])) == 2


def test_nothing_to_draw_still_draws() -> None:
    empty = drawn({"kind": "pie", "categories": ["A"], "series": [{"name": "n", "values": [0]}]})
    assert [t.text for t in empty.iter(f"{NS}text")] == ["—"]
    negative = drawn({"kind": "bar", "categories": ["A", "B"],
                      "series": [{"name": "écart", "values": [-3, 2]}]})  # fmt: skip
    assert len(filled(negative, PALETTE[0])) == 2


names = st.text(min_size=1, max_size=30)
values = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False))


@st.composite
def specs(draw: st.DrawFn) -> ChartSpec:
    kind = draw(st.sampled_from(["bar", "line", "area", "pie", "donut", "heatmap", "histogram"]))
    width = draw(st.integers(1, 40))
    count = 1 if kind in ("pie", "donut", "histogram") else draw(st.integers(1, 4))
    rows = [f"r{i}" for i in range(count)] if kind == "heatmap" else []
    positive = st.one_of(st.none(), st.floats(0, 1e6)) if kind in ("pie", "donut") else values
    series = [{"name": draw(names), "values": draw(st.lists(positive, min_size=width,
                                                             max_size=width))}
              for _ in range(count)]  # fmt: skip
    return ChartSpec.model_validate({
        "kind": kind, "categories": draw(st.lists(names, min_size=width, max_size=width)),
        "series": series, "rows": rows,
        "stacked": kind in ("bar", "line", "area") and draw(st.booleans()),
        "horizontal": kind in ("bar", "histogram") and draw(st.booleans()),
    })  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(specs())
def test_any_valid_spec_draws_well_formed_svg(spec: ChartSpec) -> None:
    root = ET.fromstring(svg_of(spec, "t"))  # noqa: S314 - our own output
    assert all(el.tag != f"{NS}script" for el in root.iter())
    numbers = [el.get(a, "") for el in root.iter() for a in ("x", "y", "width", "height")]
    assert not any("nan" in n or "inf" in n for n in numbers)
