"""Vectorised constraint checks (products/checks.py), and a differential test against
frictionless's own row-by-row validation on generated schemas and data."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pyarrow as pa
import pytest
from frictionless import Resource, Schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypervision.products.checks import check_constraints
from hypervision.products.readers import read_table
from hypervision.products.schema import TableSchema

SCHEMA = TableSchema.from_descriptor(
    {
        "fields": [
            {
                "name": "region",
                "type": "string",
                "constraints": {"required": True, "pattern": "[A-Z]{3}"},
            },
            {"name": "site", "type": "integer"},
            {"name": "lits", "type": "integer", "constraints": {"minimum": 0, "maximum": 100}},
            {
                "name": "niveau",
                "type": "string",
                "constraints": {"enum": ["vert", "rouge"], "maxLength": 4},
            },
            {"name": "ticket", "type": "string", "constraints": {"unique": True}},
        ],
        "primaryKey": ["region", "site"],
    }
)


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA.arrow_schema())


def test_each_constraint_names_row_and_field() -> None:
    rows: list[dict[str, Any]] = [
        {"region": "IDF", "site": 1, "lits": 5, "niveau": "vert", "ticket": "a"},
        {"region": "idf", "site": 2, "lits": -1, "niveau": "bleu", "ticket": "b"},
        {"region": None, "site": 3, "lits": 101, "niveau": None, "ticket": "a"},
        {"region": "IDF", "site": 1, "lits": None, "niveau": "vert", "ticket": None},
    ]
    errors, count, by_field = check_constraints(table(rows), SCHEMA)
    assert [e.message for e in errors] == [
        "ligne 3, champ « region » : « idf » ne respecte pas le motif [A-Z]{3}",
        "ligne 3, champ « lits » : « -1 » est inférieur au minimum 0",
        "ligne 3, champ « niveau » : « bleu » n'est pas une valeur permise (vert, rouge)",
        "ligne 4, champ « region » : valeur obligatoire manquante",
        "ligne 4, champ « lits » : « 101 » est supérieur au maximum 100",
        "ligne 4, champ « ticket » : « a » est déjà en ligne 2 (valeur unique attendue)",
        "ligne 5 : clé primaire (region, site) « IDF, 1 » en double, déjà en ligne 2",
    ]
    assert count == 7
    assert by_field == {"region": 2, "lits": 2, "niveau": 1, "ticket": 1, "": 1}
    assert [e.row for e in check_constraints(table(rows), SCHEMA, first_row=10)[0]][:1] == [11]


def test_max_length() -> None:
    schema = TableSchema.from_descriptor(
        {"fields": [{"name": "t", "type": "string", "constraints": {"maxLength": 3}}]}
    )
    t = pa.table({"t": ["abc", "abcé", None]})
    errors, _, _ = check_constraints(t, schema)
    assert [e.message for e in errors] == ["ligne 3, champ « t » : « abcé » dépasse 3 caractères"]


def test_large_table_is_checked_whole_but_reports_the_first_hundred() -> None:
    n = 200_000
    t = table(
        [
            {"region": "IDF", "site": i % 1000, "lits": i % 150, "niveau": "vert", "ticket": str(i)}
            for i in range(n)
        ]
    )
    errors, count, by_field = check_constraints(t, SCHEMA)
    assert len(errors) == 100 and errors[0].row == 103  # lits 101 on row 103
    assert by_field["lits"] == sum(1 for i in range(n) if i % 150 > 100)
    assert by_field[""] == n - 1000  # every (IDF, site) after its first
    assert count == sum(by_field.values())


# --- differential: our vectorised reading + checks = frictionless row by row -----------------

JUNK = st.text(alphabet="abdz", min_size=2, max_size=4)
CELLS: dict[str, st.SearchStrategy[str]] = {
    "integer": st.one_of(
        st.integers(-10, 10).map(str),
        JUNK,
        st.just(""),
        st.sampled_from(["1.5", "--1", "1e3", "-0", "0"]),
    ),
    "number": st.one_of(
        st.floats(-10, 10, allow_nan=False).map(repr),
        st.integers(-10, 10).map(str),
        JUNK,
        st.just(""),
        st.sampled_from(["1.", ".5", "1.5.2", "2e1", "-0.0", "0.0", "-0"]),
    ),
    "string": st.text(alphabet="abc01 ", max_size=5),
    "boolean": st.one_of(st.sampled_from(["true", "false", "True", "FALSE", "1", "0", ""]), JUNK),
    "date": st.one_of(
        st.dates(dt.date(1000, 1, 1), dt.date(2999, 12, 31)).map(dt.date.isoformat),
        JUNK,
        st.just(""),
        st.sampled_from(["2024-13-01", "2024-02-30"]),
    ),
}


@st.composite
def descriptors(draw: st.DrawFn) -> dict[str, Any]:
    fields = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(sorted(CELLS)))
        c: dict[str, Any] = {}
        if draw(st.booleans()):
            c["required"] = True
        if draw(st.integers(0, 3)) == 0:
            c["unique"] = True
        if kind in ("integer", "number"):
            for key in ("minimum", "maximum"):
                if draw(st.booleans()):
                    c[key] = draw(st.integers(-5, 5))
            if kind == "integer" and draw(st.integers(0, 3)) == 0:
                c["enum"] = draw(st.lists(st.integers(-3, 3), min_size=1, max_size=3, unique=True))
        if kind == "string":
            if draw(st.booleans()):
                c["maxLength"] = draw(st.integers(0, 4))
            if draw(st.integers(0, 2)) == 0:
                c["pattern"] = draw(st.sampled_from(["[a-c]+", "a.*", "[0-9]{2}", "(ab|c)?"]))
            if draw(st.integers(0, 3)) == 0:
                c["enum"] = draw(
                    st.lists(
                        st.sampled_from(["a", "b", "ab", "c 0"]),
                        min_size=1,
                        max_size=3,
                        unique=True,
                    )
                )
        field: dict[str, Any] = {"name": f"f{i}", "type": kind}
        if c:
            field["constraints"] = c
        fields.append(field)
    return {"fields": fields}


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], list[list[str]]]:
    d = draw(descriptors())
    kinds = [f["type"] for f in d["fields"]]
    rows = draw(st.lists(st.tuples(*(CELLS[k] for k in kinds)).map(list), max_size=12))
    return d, rows


def frictionless_errors(d: dict[str, Any], rows: list[list[str]]) -> set[tuple[int, str]]:
    header = [f["name"] for f in d["fields"]]
    resource = Resource(data=[header, *rows], schema=Schema.from_descriptor(d))
    report = resource.validate()
    return {
        (int(getattr(e, "row_number", 0)), str(getattr(e, "field_name", "")))
        for e in report.tasks[0].errors
        if getattr(e, "field_name", None)
    }


def our_errors(d: dict[str, Any], rows: list[list[str]]) -> set[tuple[int, str]]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f["name"] for f in d["fields"]])
    writer.writerows(rows)
    result = read_table(
        io.BytesIO(out.getvalue().encode()),
        filename="g.csv",
        media_type=None,
        schema=TableSchema.from_descriptor(d),
        max_bytes=1 << 20,
    )
    assert all(e.field is not None for e in result.errors), result.errors
    return {(e.row, e.field) for e in result.errors if e.field is not None}


def agree_with_frictionless(case: tuple[dict[str, Any], list[list[str]]]) -> None:
    d, rows = case
    assert our_errors(d, rows) == frictionless_errors(d, rows), (d, rows)


# make test: 100 generated tables; make test-deep (CI): 300.
@pytest.mark.parametrize(
    "examples", [pytest.param(100, id="quick"), pytest.param(300, id="300", marks=pytest.mark.deep)]
)
def test_vectorised_checks_agree_with_frictionless(examples: int) -> None:
    check = settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )(given(cases())(agree_with_frictionless))
    check()
