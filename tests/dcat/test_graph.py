from __future__ import annotations

import json

import pytest
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, XSD

from hypervision.dcat.graph import (
    DATA_THEME,
    EU_LANGUAGE,
    GEOJSON_LITERAL,
    GSP,
    LOCN,
    SPDX,
    catalogue_graph,
    to_jsonld,
    to_turtle,
    validate,
)
from tests.dcat.catalogue import SHA_A, SHA_B, SHA_GEO, catalogue

HEAT_PAGE = "https://donnees.hypervision.example/datasets/alertes-canicule-departements"
HEAT = URIRef(f"{HEAT_PAGE}#dataset")
TRANSIT_PAGE = "https://donnees.hypervision.example/datasets/incidents-transport-quotidiens"
TRANSIT = URIRef(f"{TRANSIT_PAGE}#dataset")
CATALOGUE = URIRef("https://donnees.hypervision.example/catalogue")


def test_the_two_dataset_catalogue_conforms() -> None:
    conforms, report = validate(catalogue_graph(catalogue()))
    assert conforms, report
    assert "Conforms: True" in report


@pytest.mark.parametrize("fmt", ["turtle", "json-ld"])
def test_the_serialised_catalogue_conforms_once_parsed_back(fmt: str) -> None:
    from hypervision.dcat.harvest import parse

    text = to_turtle(catalogue()) if fmt == "turtle" else to_jsonld(catalogue())
    graph = parse(text, fmt)  # type: ignore[arg-type]
    conforms, report = validate(graph)
    assert conforms, report
    assert len(graph) == len(catalogue_graph(catalogue()))


def _without(graph: Graph, subject: URIRef | BNode, predicate: URIRef) -> Graph:
    assert (subject, predicate, None) in graph
    graph.remove((subject, predicate, None))
    return graph


def test_a_dataset_without_title_does_not_conform() -> None:
    graph = _without(catalogue_graph(catalogue()), TRANSIT, DCTERMS.title)
    conforms, report = validate(graph)
    assert not conforms
    assert "Dataset: dct:title is mandatory" in report
    assert str(TRANSIT) in report


@pytest.mark.parametrize(
    ("subject", "predicate", "message"),
    [
        (HEAT, DCTERMS.description, "Dataset: dct:description is mandatory"),
        (CATALOGUE, DCTERMS.title, "Catalogue: dct:title is mandatory"),
        (CATALOGUE, DCTERMS.description, "Catalogue: dct:description is mandatory"),
        (CATALOGUE, DCTERMS.publisher, "Catalogue: exactly one dct:publisher"),
        (CATALOGUE, DCAT.dataset, "Catalogue: dcat:dataset"),
        (URIRef(f"{HEAT_PAGE}#release-1-csv"), DCAT.accessURL, "dcat:accessURL is mandatory"),
        (URIRef(f"{HEAT_PAGE}#release-1-csv"), DCTERMS.license, "dct:license is recommended"),
    ],
)
def test_each_mandatory_property_is_checked(
    subject: URIRef, predicate: URIRef, message: str
) -> None:
    conforms, report = validate(_without(catalogue_graph(catalogue()), subject, predicate))
    assert not conforms
    assert message in report


def test_an_agent_without_name_and_bad_values_do_not_conform() -> None:
    graph = catalogue_graph(catalogue())
    agent = graph.value(CATALOGUE, DCTERMS.publisher)
    assert isinstance(agent, URIRef)
    graph.remove((agent, FOAF.name, None))
    dist = URIRef(f"{HEAT_PAGE}#release-2-csv")
    checksum = graph.value(dist, SPDX.checksum)
    assert isinstance(checksum, BNode)
    graph.set((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_md4))
    graph.set((checksum, SPDX.checksumValue, Literal("not hex", datatype=XSD.hexBinary)))
    graph.add((HEAT, DCAT.theme, URIRef("http://example.org/themes/TRAN")))
    graph.set((HEAT, DCTERMS.issued, Literal("hier")))
    conforms, report = validate(graph)
    assert not conforms
    for message in (
        "Agent: foaf:name is mandatory",
        "Checksum: exactly one spdx:algorithm",
        "Checksum: exactly one spdx:checksumValue",
        "Dataset: dcat:theme is a concept of the EU data-theme table",
        "Dataset: at most one dct:issued",
    ):
        assert message in report


def test_one_distribution_per_release_and_format() -> None:
    graph = catalogue_graph(catalogue())
    assert len(list(graph.objects(HEAT, DCAT.distribution))) == 8  # 2 releases x 4 formats
    assert len(list(graph.objects(TRANSIT, DCAT.distribution))) == 3
    assert len(list(graph.subjects(RDF.type, DCAT.Distribution))) == 11
    dist = URIRef(f"{HEAT_PAGE}#release-2-parquet")
    assert graph.value(dist, DCAT.downloadURL) == URIRef(f"{HEAT_PAGE}/releases/2/data.parquet")
    assert graph.value(dist, DCAT.accessURL) == URIRef(HEAT_PAGE)
    assert graph.value(dist, DCAT.mediaType) == URIRef(
        "https://www.iana.org/assignments/media-types/application/vnd.apache.parquet"
    )
    assert graph.value(dist, DCTERMS.format) == URIRef(
        "http://publications.europa.eu/resource/authority/file-type/PARQUET"
    )
    assert graph.value(dist, SPDX.checksum) is None  # no checksum known for that file


@pytest.mark.parametrize(
    ("fmt", "checksum"),
    [("release-1-csv", SHA_A), ("release-2-csv", SHA_B), ("release-2-geojson", SHA_GEO)],
)
def test_checksums_are_spdx_sha256(fmt: str, checksum: str) -> None:
    graph = catalogue_graph(catalogue())
    node = graph.value(URIRef(f"{HEAT_PAGE}#{fmt}"), SPDX.checksum)
    assert node is not None
    assert graph.value(node, SPDX.algorithm) == SPDX.checksumAlgorithm_sha256
    value = graph.value(node, SPDX.checksumValue)
    assert value == Literal(checksum, datatype=XSD.hexBinary)


def test_byte_size_only_where_known() -> None:
    graph = catalogue_graph(catalogue())
    size = graph.value(URIRef(f"{HEAT_PAGE}#release-2-csv"), DCAT.byteSize)
    assert size == Literal("412345", datatype=XSD.nonNegativeInteger)
    assert graph.value(URIRef(f"{HEAT_PAGE}#release-1-csv"), DCAT.byteSize) is None


def test_dates_are_typed_datetimes() -> None:
    graph = catalogue_graph(catalogue())
    issued = graph.value(HEAT, DCTERMS.issued)
    assert isinstance(issued, Literal)
    assert issued.datatype == XSD.dateTime
    assert str(issued) == "2024-06-01T08:00:00+00:00"
    modified = graph.value(CATALOGUE, DCTERMS.modified)
    assert isinstance(modified, Literal)
    assert modified.datatype == XSD.dateTime


def test_temporal_and_spatial_coverage() -> None:
    graph = catalogue_graph(catalogue())
    period = graph.value(HEAT, DCTERMS.temporal)
    assert (period, RDF.type, DCTERMS.PeriodOfTime) in graph
    assert graph.value(period, DCAT.startDate) == Literal("2024-06-01", datatype=XSD.date)
    assert graph.value(period, DCAT.endDate) == Literal("2024-09-30", datatype=XSD.date)
    place = graph.value(HEAT, DCTERMS.spatial)
    assert (place, RDF.type, DCTERMS.Location) in graph
    bbox = graph.value(place, DCAT.bbox)
    assert isinstance(bbox, Literal)
    assert bbox.datatype == GSP.wktLiteral
    assert str(bbox) == ("POLYGON((-5.2 41.3, 9.6 41.3, 9.6 51.1, -5.2 51.1, -5.2 41.3))")
    geometry = graph.value(place, LOCN.geometry)
    assert isinstance(geometry, Literal)
    assert geometry.datatype == GEOJSON_LITERAL
    assert json.loads(str(geometry))["coordinates"][0][2] == [9.6, 51.1]
    # The aggregated dataset has neither.
    assert graph.value(TRANSIT, DCTERMS.temporal) is None
    assert graph.value(TRANSIT, DCTERMS.spatial) is None


def test_vocabularies() -> None:
    graph = catalogue_graph(catalogue())
    assert set(graph.objects(HEAT, DCAT.theme)) == {DATA_THEME.HEAL, DATA_THEME.ENVI}
    assert graph.value(CATALOGUE, DCTERMS.language) == EU_LANGUAGE.FRA
    licence = graph.value(URIRef(f"{TRANSIT_PAGE}#release-1-csv"), DCTERMS.license)
    assert licence == URIRef("https://opendatacommons.org/licenses/odbl/1-0/")
    assert (licence, RDF.type, DCTERMS.LicenseDocument) in graph
    assert graph.value(HEAT, DCTERMS.conformsTo) == URIRef(f"{HEAT_PAGE}/schema.json")
    publisher = graph.value(TRANSIT, DCTERMS.publisher)
    assert (publisher, RDF.type, FOAF.Agent) in graph
    assert str(graph.value(publisher, FOAF.name)) == 'Préfecture de police <Paris> & "DRIEAT"'


def test_jsonld_has_a_compact_context() -> None:
    doc = json.loads(to_jsonld(catalogue()))
    assert doc["@context"]["dcat"] == "http://www.w3.org/ns/dcat#"
    types: set[str] = set()
    for node in doc["@graph"]:
        found = node.get("@type", [])
        types |= set(found if isinstance(found, list) else [found])
    assert {"dcat:Catalog", "dcat:Dataset", "dcat:Distribution", "foaf:Agent"} <= types


def test_the_output_is_stable() -> None:
    assert to_turtle(catalogue()) == to_turtle(catalogue())
