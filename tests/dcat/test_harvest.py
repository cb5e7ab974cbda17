from __future__ import annotations

import json

import pytest
from rdflib import URIRef
from rdflib.namespace import DCTERMS

from hypervision.dcat.graph import catalogue_graph, to_jsonld, to_turtle
from hypervision.dcat.harvest import HarvestedDataset, HarvestError, harvest
from hypervision.dcat.model import LICENCE_OUVERTE_2, ODBL, Dataset
from tests.dcat.catalogue import SHA_A, SHA_B, SHA_C, SHA_GEO, TRICKY, catalogue


def _both() -> dict[str, list[HarvestedDataset]]:
    cat = catalogue()
    return {
        "json-ld": harvest(to_jsonld(cat), "json-ld"),
        "turtle": harvest(to_turtle(cat), "turtle"),
    }


def test_jsonld_and_turtle_harvest_to_the_same_datasets() -> None:
    found = _both()
    assert found["json-ld"] == found["turtle"]
    assert [d.uri for d in found["turtle"]] == [
        f"{d.landing_page}#dataset" for d in sorted(catalogue().datasets, key=lambda d: d.slug)
    ]


@pytest.mark.parametrize("fmt", ["json-ld", "turtle"])
def test_the_harvester_sees_every_download_url_and_checksum(fmt: str) -> None:
    cat = catalogue()
    harvested = {d.uri: d for d in _both()[fmt]}
    expected_checksums = {
        (1, "csv"): SHA_A,
        (2, "csv"): SHA_B,
        (2, "geojson"): SHA_GEO,
    }
    for ds in cat.datasets:
        got = harvested[f"{ds.landing_page}#dataset"]
        assert got.title == ds.title
        assert got.description == ds.description
        assert got.keywords == sorted(ds.keywords)
        assert got.licences == [ds.licence_uri]
        assert got.schema_url == ds.schema_url
        urls = {r.url: r for r in got.resources}
        wanted = {url: (rel, f) for rel in ds.releases for f, url in rel.downloads.items()}
        assert set(urls) == set(wanted)
        for url, (rel, f) in wanted.items():
            resource = urls[url]
            assert resource.format == f
            assert resource.media_type is not None
            if ds.slug.startswith("incidents"):
                checksum = SHA_C if f == "csv" else None
            else:
                checksum = expected_checksums.get((rel.number, f))
            assert resource.checksum == checksum
            assert resource.checksum_type == ("sha256" if checksum else None)
            assert resource.schema_url == (ds.schema_url if f == "csv" else None)


def test_media_types_and_licences_as_udata_reads_them() -> None:
    by_title = {d.title: d for d in _both()["turtle"]}
    heat = by_title["Alertes canicule par département"]
    assert heat.licences == [LICENCE_OUVERTE_2]
    assert {r.media_type for r in heat.resources} == {
        "text/csv",
        "application/json",
        "application/geo+json",
        "application/vnd.apache.parquet",
    }
    assert by_title[TRICKY].licences == [ODBL]


@pytest.mark.parametrize("fmt", ["json-ld", "turtle"])
def test_special_characters_survive(fmt: str) -> None:
    transit = next(d for d in _both()[fmt] if "incidents" in (d.uri or ""))
    assert transit.title == TRICKY
    assert transit.description.endswith(TRICKY)
    assert "comptes < 11" in transit.description
    assert "l'été « chaud »" in transit.keywords
    assert all(TRICKY in (r.title or "") for r in transit.resources)


def test_a_dataset_without_title_is_skipped_like_udata_does() -> None:
    graph = catalogue_graph(catalogue())
    transit = URIRef(
        "https://donnees.hypervision.example/datasets/incidents-transport-quotidiens#dataset"
    )
    graph.remove((transit, DCTERMS.title, None))
    titles = [d.title for d in harvest(graph.serialize(format="turtle"), "turtle")]
    assert titles == ["Alertes canicule par département"]


def test_a_remote_jsonld_context_is_refused() -> None:
    doc = json.loads(to_jsonld(catalogue()))
    doc["@context"] = "https://attacker.example/context.jsonld"
    with pytest.raises(HarvestError, match="remote JSON-LD @context"):
        harvest(json.dumps(doc), "json-ld")
    doc["@context"] = [{"dcat": "http://www.w3.org/ns/dcat#"}]
    doc["@graph"][0]["@context"] = "http://169.254.169.254/latest"
    with pytest.raises(HarvestError, match="remote JSON-LD @context"):
        harvest(json.dumps(doc), "json-ld")


@pytest.mark.parametrize(
    ("text", "fmt"),
    [("{not json", "json-ld"), ("<a> <b> .", "turtle"), ("", "json-ld")],
)
def test_broken_documents_raise_harvest_errors(text: str, fmt: str) -> None:
    with pytest.raises(HarvestError, match=f"not a {fmt} catalogue"):
        harvest(text, fmt)  # type: ignore[arg-type]


def test_an_empty_catalogue_harvests_nothing() -> None:
    empty: list[Dataset] = []
    cat = catalogue()
    text = to_turtle(type(cat)(**{**cat.__dict__, "datasets": empty}))
    assert harvest(text, "turtle") == []
