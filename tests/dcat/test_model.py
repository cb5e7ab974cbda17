from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from hypervision.dcat.model import Catalogue, Field, Release, media_type
from tests.dcat.catalogue import BASE, SHA_A, catalogue, heat_alerts


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("csv", "text/csv"),
        ("json", "application/json"),
        ("geojson", "application/geo+json"),
        ("parquet", "application/vnd.apache.parquet"),
    ],
)
def test_media_type(fmt: str, expected: str) -> None:
    assert media_type(fmt) == expected


@pytest.mark.parametrize("fmt", ["xlsx", "CSV", ""])
def test_media_type_refuses_unknown_formats(fmt: str) -> None:
    with pytest.raises(ValueError, match="unknown download format"):
        media_type(fmt)


def test_latest_release_is_the_highest_number() -> None:
    latest = heat_alerts().latest
    assert latest is not None
    assert latest.number == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"themes": ["TRANSPORT"]}, "unknown EU data themes"),
        ({"licence_uri": "/licence"}, "absolute http"),
        ({"landing_page": "javascript:alert(1)"}, "absolute http"),
        ({"issued": datetime(2024, 6, 1)}, "naive datetime"),  # noqa: DTZ001 - the point
        ({"bbox": (9.6, 41.3, -5.2, 51.1)}, "impossible bounding box"),
        ({"temporal_end": date(2024, 5, 1)}, "ends before it starts"),
        ({"slug": "Alertes Canicule"}, "invalid dataset slug"),
        ({"title": "  "}, "needs a title"),
        ({"fields": []}, "no field"),
    ],
)
def test_dataset_refuses_what_would_make_the_catalogue_lie(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        replace(heat_alerts(), **changes)  # type: ignore[arg-type]


def test_field_type_must_be_a_table_schema_type() -> None:
    with pytest.raises(ValueError, match="not a Table Schema type"):
        Field("contour", "geometry", "Contour")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"checksum_sha256": "A" * 64}, "not a SHA-256"),
        ({"checksum_sha256": "abc"}, "not a SHA-256"),
        ({"downloads": {}}, "no download"),
        ({"downloads": {"xls": f"{BASE}/x.xls"}}, "unknown download format"),
        ({"downloads": {"csv": "data.csv"}}, "absolute http"),
        ({"downloads": {"csv": f"{BASE}/a b.csv"}}, "characters an IRI may not"),
        ({"downloads": {"json": f"{BASE}/x.json"}}, "no csv download"),
        ({"byte_sizes": {"parquet": 10}}, "bad byte size"),
        ({"number": 0}, "starts at 1"),
    ],
)
def test_release_refusals(changes: dict[str, object], message: str) -> None:
    base = Release(
        number=1,
        created=datetime(2024, 6, 1, tzinfo=UTC),
        row_count=3,
        checksum_sha256=SHA_A,
        downloads={"csv": f"{BASE}/x.csv"},
    )
    with pytest.raises(ValueError, match=message):
        replace(base, **changes)  # type: ignore[arg-type]


def test_catalogue_refuses_two_datasets_with_one_slug() -> None:
    with pytest.raises(ValueError, match="share a slug"):
        catalogue(heat_alerts(), heat_alerts())


def test_catalogue_refuses_an_unknown_language() -> None:
    with pytest.raises(ValueError, match="language"):
        replace(catalogue(), language="xx")


def test_catalogue_is_frozen() -> None:
    cat: Catalogue = catalogue()
    with pytest.raises(AttributeError):
        cat.title = "autre"  # type: ignore[misc]
