"""Table Schema descriptors: reading, checking, writing back, diffing (products/schema.py)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from hypervision.products.schema import (
    Field,
    ForeignKey,
    SchemaError,
    TableSchema,
    slugify_field,
    slugify_headers,
)

DESCRIPTOR: dict[str, Any] = {
    "fields": [
        {
            "name": "code",
            "type": "string",
            "title": "Code FINESS",
            "constraints": {"required": True, "pattern": "[0-9]{9}", "maxLength": 9},
        },
        {"name": "lits", "type": "integer", "constraints": {"minimum": 0, "maximum": 5000}},
        {"name": "taux", "type": "number", "description": "en %"},
        {"name": "ouvert", "type": "boolean"},
        {"name": "jour", "type": "date"},
        {"name": "vu", "type": "datetime"},
        {"name": "lieu", "type": "geojson"},
        {
            "name": "niveau",
            "type": "string",
            "constraints": {"enum": ["vert", "rouge"], "unique": True},
        },
        {"name": "departement", "type": "string"},
    ],
    "primaryKey": ["code"],
    "foreignKeys": [
        {"fields": ["departement"], "reference": {"resource": "departements", "fields": ["code"]}}
    ],
}


def test_descriptor_round_trip() -> None:
    schema = TableSchema.from_descriptor(DESCRIPTOR)
    assert schema.field("lieu").type == "geometry"
    assert schema.field("code") == Field(
        name="code",
        type="string",
        title="Code FINESS",
        required=True,
        pattern="[0-9]{9}",
        max_length=9,
    )
    assert schema.field("niveau").enum == ("vert", "rouge")
    assert schema.primary_key == ("code",)
    assert schema.foreign_keys == (ForeignKey(("departement",), "departements", ("code",)),)
    assert schema.to_descriptor() == DESCRIPTOR
    assert TableSchema.from_descriptor(schema.to_descriptor()) == schema


def test_arrow_schema() -> None:
    schema = TableSchema.from_descriptor(DESCRIPTOR)
    arrow = schema.arrow_schema()
    assert [str(f.type) for f in arrow] == [
        "string",
        "int64",
        "double",
        "bool",
        "date32[day]",
        "timestamp[us, tz=UTC]",
        "string",
        "string",
        "string",
    ]
    assert arrow.field("code").nullable is False and arrow.field("lits").nullable is True
    assert isinstance(arrow, pa.Schema)


@pytest.mark.parametrize(
    ("descriptor", "problem"),
    [
        ({"fields": [{"name": "Lits", "type": "integer"}]}, "nom de champ invalide « Lits »"),
        ({"fields": [{"name": "a" * 64, "type": "string"}]}, "nom de champ invalide"),
        ({"fields": [{"name": "x", "type": "year"}]}, "type « year » non pris en charge"),
        (
            {"fields": [{"name": "x", "type": "string", "constraints": {"minimum": 3}}]},
            'constraint "minimum" is not supported by type "string"',
        ),
        (
            {"fields": [{"name": "x", "type": "string", "constraints": {"pattern": "(?=a)b"}}]},
            "motif invalide",
        ),
        (
            {"fields": [{"name": "x", "type": "date", "constraints": {"minimum": "2024-01-01"}}]},
            "minimum doit être un nombre sur un champ numérique",
        ),
        (
            {"fields": [{"name": "x", "type": "integer", "constraints": {"maxLength": 3}}]},
            "not supported by type",
        ),
        ({"fields": [{"name": "x"}, {"name": "x"}]}, "names of the fields are not unique"),
        ({"fields": [{"name": "x"}], "primaryKey": ["y"]}, "primary key"),
        (
            {
                "fields": [{"name": "x"}],
                "foreignKeys": [{"fields": ["x"], "reference": {"resource": "", "fields": ["a"]}}],
            },
            "clé étrangère",
        ),
        ({"fields": "x"}, "is not of type 'array'"),
        ({"fields": []}, "aucun champ"),
    ],
)
def test_bad_descriptors_list_their_problems(descriptor: dict[str, Any], problem: str) -> None:
    with pytest.raises(SchemaError) as e:
        TableSchema.from_descriptor(descriptor)
    assert any(problem in p for p in e.value.problems), e.value.problems
    assert e.value.fr and e.value.en


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(SchemaError) as e:
        TableSchema.from_descriptor({"fields": [{"name": "A"}, {"name": "b", "type": "any"}]})
    assert len(e.value.problems) == 2


def test_field_lookup_names_the_missing_field() -> None:
    schema = TableSchema.from_descriptor(DESCRIPTOR)
    with pytest.raises(SchemaError) as e:
        schema.field("patients")
    assert e.value.fr == "Le champ « patients » n'existe pas dans le schéma."


def test_changes() -> None:
    before = TableSchema.from_descriptor(DESCRIPTOR)
    d = dict(DESCRIPTOR)
    d["fields"] = [
        {"name": "code", "type": "string", "constraints": {"required": True}},
        {"name": "lits", "type": "number", "constraints": {"minimum": 0, "maximum": 5000}},
        {"name": "patients", "type": "integer"},
    ]
    d["primaryKey"] = ["code", "lits"]
    d.pop("foreignKeys")
    after = TableSchema.from_descriptor(d)
    changes = before.changes(after)
    assert "champ ajouté : « patients » (nombre entier)" in changes
    assert "champ supprimé : « taux »" in changes
    assert "champ « lits » : type nombre entier → nombre" in changes
    assert "champ « code » : contrainte pattern '[0-9]{9}' → None" in changes
    assert "clé primaire : code → code, lits" in changes
    assert "clés étrangères modifiées" in changes
    assert before.changes(before) == []


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Nombre de lits (J)", "nombre_de_lits_j"),
        ("Établissement — Hôpital", "etablissement_hopital"),
        ("  Cœur  ", "coeur"),
        ("2024 total", "c_2024_total"),
        ("***", "colonne"),
        ("x" * 100, "x" * 63),
        ("taux_d'occupation", "taux_d_occupation"),
    ],
)
def test_slugify_field(header: str, name: str) -> None:
    assert slugify_field(header) == name


def test_slugify_headers_deduplicates() -> None:
    assert slugify_headers(["Code", "code", "CODE ", "", ""]) == [
        "code",
        "code_2",
        "code_3",
        "colonne",
        "colonne_2",
    ]
    long = slugify_headers(["y" * 70, "y" * 80])
    assert long[1] == "y" * 61 + "_2" and all(len(n) <= 63 for n in long)
