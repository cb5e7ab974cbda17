from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from frictionless import Schema

from hypervision.dcat.model import Field
from hypervision.dcat.tableschema import table_schema
from hypervision.products.schema import TableSchema
from tests.dcat.catalogue import TRICKY, heat_alerts, transit_incidents


def _errors(descriptor: dict[str, Any]) -> list[str]:
    return [str(e.message) for e in Schema.validate_descriptor(descriptor).errors]


@pytest.mark.parametrize("dataset", [heat_alerts(), transit_incidents()], ids=lambda d: d.slug)
def test_table_schema_is_valid_frictionless(dataset: Any) -> None:
    descriptor = table_schema(dataset)
    assert _errors(descriptor) == []
    assert descriptor["missingValues"] == [""]
    assert [f["name"] for f in descriptor["fields"]] == [f.name for f in dataset.fields]
    for field in descriptor["fields"]:
        assert set(field) <= {"name", "type", "title", "description"}
        assert field["title"]
    # JSON-ready, as served.
    assert json.loads(json.dumps(descriptor, ensure_ascii=False)) == descriptor


def test_the_check_bites_on_a_broken_descriptor() -> None:
    descriptor = table_schema(heat_alerts())
    descriptor["fields"][0]["type"] = "texte"
    assert _errors(descriptor)


def test_metadata_and_units() -> None:
    descriptor = table_schema(heat_alerts())
    assert descriptor["name"] == "alertes-canicule-departements"
    assert descriptor["countryCode"] == "FR"
    assert descriptor["path"].endswith("/alertes-canicule-departements/schema.json")
    assert descriptor["created"] == "2024-06-01"
    assert descriptor["lastModified"] == "2024-08-15"
    fields = {f["name"]: f for f in descriptor["fields"]}
    assert fields["temperature_max"]["description"] == "(unité : °C)"
    assert fields["contour"]["type"] == "geojson"
    assert "description" not in fields["jour"]
    with_description = replace(
        heat_alerts(),
        fields=[Field("t", "number", "T", "Maximum du jour", unit="°C")],
    )
    assert table_schema(with_description)["fields"][0]["description"] == (
        "Maximum du jour (unité : °C)"
    )


def test_special_characters_survive() -> None:
    descriptor = table_schema(transit_incidents())
    assert descriptor["title"] == TRICKY
    assert json.loads(json.dumps(descriptor))["title"] == TRICKY


def test_the_product_store_reads_it_with_the_same_vocabulary() -> None:
    # A published schema can be read back as a data product's schema: geojson is geometry.
    schema = TableSchema.from_descriptor(table_schema(heat_alerts()))
    assert schema.field("contour").type == "geometry"
    assert schema.field("niveau").type == "integer"
