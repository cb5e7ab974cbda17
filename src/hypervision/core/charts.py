"""Charts (ADR 0043): what a chart shows, computed on the server from aggregates the policy
already filtered, never from rows sent to the browser.

``ChartSpec`` is the whole of a chart: its kind, its categories (x axis, slices or bins) and
its series of numbers. The browser draws it (``web/static/charts.js`` with ECharts) and the
page shows the same numbers as a table (``table_of``), the accessible alternative (RGAA).
``from_groups`` turns grouped aggregates (a product's, or the entries' counts) into a spec;
``histogram`` counts numbers into equal bins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from hypervision.core.errors import Invalid

ChartKind = Literal["bar", "line", "area", "pie", "donut", "heatmap", "histogram"]
KINDS: tuple[str, ...] = ("bar", "line", "area", "pie", "donut", "heatmap", "histogram")
STACKABLE = frozenset({"bar", "line", "area"})
TURNABLE = frozenset({"bar", "histogram"})  # may be drawn horizontally
ONE_SERIES = frozenset({"pie", "donut", "histogram"})
MAX_CATEGORIES = 1000
MAX_SERIES = 50
MAX_POINTS = 20_000
MISSING = "non renseigné"  # a cell without a value, and a group whose key is empty


def bilingual(fr: str, en: str) -> PydanticCustomError:
    """A validation error whose French the API's error handler shows (``core.errors``)."""
    return PydanticCustomError("bilingual", "{en}", {"fr": fr, "en": en})


class Series(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    values: list[float | None] = Field(max_length=MAX_CATEGORIES)


class ChartSpec(BaseModel):
    """A chart: ``categories`` along the x axis (the slices of a pie, the bins of a histogram,
    the columns of a heatmap); one value per category in each series; a heatmap has one
    series per entry of ``rows``, in the same order."""

    model_config = ConfigDict(extra="forbid")

    kind: ChartKind
    stacked: bool = False
    horizontal: bool = False
    categories: list[str] = Field(max_length=MAX_CATEGORIES)
    series: list[Series] = Field(min_length=1, max_length=MAX_SERIES)
    rows: list[str] = Field(default=[], max_length=MAX_SERIES)
    unit: str | None = Field(default=None, max_length=40)
    x_label: str | None = Field(default=None, max_length=200)
    y_label: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _coherent(self) -> ChartSpec:
        for fr, en in _problems(self):
            raise bilingual(fr, en)
        return self


def _problems(spec: ChartSpec) -> Iterable[tuple[str, str]]:
    width = len(spec.categories)
    for s in spec.series:
        if len(s.values) != width:
            yield (
                f"la série « {s.name} » a {len(s.values)} valeurs pour {width} catégories.",
                f"series {s.name!r} has {len(s.values)} values for {width} categories.",
            )
        if any(v is not None and not math.isfinite(v) for v in s.values):
            yield (
                f"la série « {s.name} » contient une valeur non finie.",
                f"series {s.name!r} holds a value that is not finite.",
            )
    if width * len(spec.series) > MAX_POINTS:
        yield (
            f"trop de points ({width * len(spec.series)}, au plus {MAX_POINTS}).",
            f"too many points ({width * len(spec.series)}, at most {MAX_POINTS}).",
        )
    if spec.stacked and spec.kind not in STACKABLE:
        yield (
            f"un graphique « {spec.kind} » ne s'empile pas (barres, lignes, aires seulement).",
            f"a {spec.kind!r} chart cannot be stacked (bar, line, area only).",
        )
    if spec.horizontal and spec.kind not in TURNABLE:
        yield (
            f"un graphique « {spec.kind} » ne se couche pas (barres, histogramme seulement).",
            f"a {spec.kind!r} chart cannot be horizontal (bar, histogram only).",
        )
    if spec.kind in ONE_SERIES and len(spec.series) != 1:
        yield (
            f"un graphique « {spec.kind} » a une seule série ({len(spec.series)} données).",
            f"a {spec.kind!r} chart has one series ({len(spec.series)} given).",
        )
    if spec.kind in ("pie", "donut") and any(
        v is not None and v < 0 for v in spec.series[0].values
    ):
        yield (
            "un camembert ne montre pas de valeur négative.",
            "a pie chart cannot show a negative value.",
        )
    if spec.kind == "heatmap" and len(spec.rows) != len(spec.series):
        yield (
            f"une carte de chaleur a une série par ligne ({len(spec.rows)} lignes, "
            f"{len(spec.series)} séries).",
            f"a heatmap has one series per row ({len(spec.rows)} rows, {len(spec.series)} series).",
        )
    if spec.kind != "heatmap" and spec.rows:
        yield (
            "seule une carte de chaleur a des lignes (« rows »).",
            "only a heatmap has rows.",
        )


def parse_spec(data: Any) -> ChartSpec:
    """A spec from JSON-like data, or a 422 saying in French (and English) what is wrong."""
    try:
        return ChartSpec.model_validate(data)
    except ValidationError as exc:
        raise invalid_of(exc) from None


def invalid_of(exc: ValidationError) -> Invalid:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "spec"
    ctx = first.get("ctx") or {}
    if first["type"] == "bilingual":
        fr, en = str(ctx["fr"]), str(ctx["en"])
    else:
        fr = en = f"{where} : {first['msg']}"
    return Invalid(
        f"Graphique invalide : {fr}",
        f"Invalid chart: {en}",
        extra={"fields": [{"field": where, "message": en}]},
    )


# --- the accessible table -------------------------------------------------------------------


def number(value: float | None, unit: str | None = None) -> str:
    """A value as French text: ``1 234,5`` (narrow no-break space, decimal comma)."""
    if value is None:
        return MISSING
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")
    text = text.replace(",", "\u202f").replace(".", ",")
    return f"{text}\u00a0{unit}" if unit else text


def table_of(spec: ChartSpec) -> tuple[list[str], list[list[str]]]:
    """The chart's numbers as a table: column headers, then rows whose first cell heads the
    row (``<th scope="row">``). Bars, lines, areas, histograms: a row per category and a
    column per series (and a total when stacked); pies: each slice with its share; heatmaps:
    a row per row, a column per category."""
    first = spec.x_label or ("Intervalle" if spec.kind == "histogram" else "Catégorie")
    if spec.kind == "heatmap":
        headers = [spec.y_label or "Série", *spec.categories]
        rows = [
            [row, *(number(v, spec.unit) for v in s.values)]
            for row, s in zip(spec.rows, spec.series, strict=True)
        ]
        return headers, rows
    if spec.kind in ("pie", "donut"):
        values = spec.series[0].values
        total = sum(v for v in values if v is not None)
        headers = [first, spec.series[0].name, "Part"]
        rows = [
            [c, number(v, spec.unit), _share(v, total)]
            for c, v in zip(spec.categories, values, strict=True)
        ]
        return headers, rows
    totals = spec.stacked and len(spec.series) > 1
    headers = [first, *(s.name for s in spec.series), *(["Total"] if totals else [])]
    rows = []
    for i, category in enumerate(spec.categories):
        values = [s.values[i] for s in spec.series]
        cells = [number(v, spec.unit) for v in values]
        if totals:
            cells.append(number(sum(v for v in values if v is not None), spec.unit))
        rows.append([category, *cells])
    return headers, rows


def _share(value: float | None, total: float) -> str:
    if value is None or not total:
        return MISSING
    return number(round(100 * value / total, 1), "%")


# --- from aggregates ------------------------------------------------------------------------


def from_groups(
    rows: Sequence[Mapping[str, Any]],
    *,
    category_key: str,
    series_key: str | None = None,
    measure_key: str = "count",
    kind: ChartKind = "bar",
    stacked: bool = False,
    horizontal: bool = False,
    series_name: str | None = None,
    missing: float | None = 0.0,
    unit: str | None = None,
    x_label: str | None = None,
    y_label: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> ChartSpec:
    """A spec from grouped aggregates (one mapping per group, as ``products.service.aggregate``
    or ``logbook.aggregates.aggregate_entries`` return them): ``category_key`` gives the
    categories, ``measure_key`` the value. With ``series_key`` the groups are pivoted, one
    series per value of that key (grouped or stacked bars, several lines; a heatmap's rows);
    a pair with no group gets ``missing`` (0: no group means nothing counted). Categories and
    series keep the order of ``rows``; ``labels`` renames keys' values for display (a code to
    its name); a pair seen twice adds up."""
    names = labels or {}
    categories: dict[str, None] = {}
    cells: dict[tuple[str, str], float | None] = {}
    default = series_name or measure_key
    series: dict[str, None] = {}
    for row in rows:
        category = _key(row.get(category_key), names)
        name = _key(row.get(series_key), names) if series_key else default
        categories.setdefault(category)
        series.setdefault(name)
        value = _measure(row.get(measure_key), measure_key)
        before = cells.get((category, name))
        cells[(category, name)] = value if before is None else before + (value or 0)
    if not series:
        series[default] = None
    data = {
        "kind": kind,
        "stacked": stacked,
        "horizontal": horizontal,
        "categories": list(categories),
        "series": [
            {"name": n, "values": [cells.get((c, n), missing) for c in categories]} for n in series
        ],
        "rows": list(series) if kind == "heatmap" else [],
        "unit": unit,
        "x_label": x_label,
        "y_label": y_label,
    }
    return parse_spec(data)


def _key(value: Any, names: Mapping[str, str]) -> str:
    if value is None or value == "":
        return MISSING
    text = str(value)
    return names.get(text, text)


def _measure(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise Invalid(
            f"Graphique invalide : la mesure « {key} » n'est pas un nombre.",
            f"Invalid chart: the measure {key!r} is not a number.",
        )
    return float(value)


def histogram(
    values: Iterable[float | None],
    bins: int = 10,
    *,
    name: str = "Effectif",
    unit: str | None = None,
    x_label: str | None = None,
    y_label: str | None = None,
) -> ChartSpec:
    """Numbers counted into ``bins`` equal intervals from the least to the greatest (the
    last one closed), labelled ``[a ; b[``; missing and non-finite values are left out."""
    if not 1 <= bins <= 100:
        raise Invalid("Un histogramme a de 1 à 100 intervalles.", "A histogram has 1 to 100 bins.")
    kept = sorted(float(v) for v in values if v is not None and math.isfinite(v))
    if not kept:
        return parse_spec(
            {"kind": "histogram", "categories": [], "series": [{"name": name, "values": []}]}
        )
    low, high = kept[0], kept[-1]
    width = (high - low) / bins if high > low else 1.0
    bins = bins if high > low else 1
    counts = [0.0] * bins
    for v in kept:
        counts[min(int((v - low) / width), bins - 1)] += 1
    edges = [low + i * width for i in range(bins + 1)]
    categories = [
        f"[{number(edges[i])} ; {number(edges[i + 1])}{']' if i == bins - 1 else '['}"
        for i in range(bins)
    ]
    return parse_spec(
        {
            "kind": "histogram",
            "categories": categories,
            "series": [{"name": name, "values": counts}],
            "unit": unit,
            "x_label": x_label,
            "y_label": y_label,
        }
    )
