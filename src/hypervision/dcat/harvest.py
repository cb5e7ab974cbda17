"""Read a DCAT catalogue back, the way udata's DCAT harvester does (data.gouv.fr).

udata takes, per ``dcat:Dataset``: ``dct:title`` (a dataset without one is skipped),
``dct:description``, ``dcat:keyword``, the licence from ``dct:license`` on the dataset or
its distributions, ``dct:conformsTo`` as its schema, and per ``dcat:Distribution`` a
resource whose URL is ``dcat:downloadURL`` or else ``dcat:accessURL`` (no URL, no
resource), its format from ``dct:format`` (an EU file-type IRI becomes ``csv``), its
media type from ``dcat:mediaType`` and its ``spdx:checksum`` when the algorithm is md5,
sha1 or sha256. This reader extracts the same, so tests can check what a harvester sees.

JSON-LD is read without fetching anything: a remote ``@context`` is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from typing import Literal as Format

from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF
from rdflib.plugins.parsers.jsonld import to_rdf
from rdflib.term import Node

from hypervision.dcat.graph import EU_FILE_TYPE, IANA_MEDIA_TYPES, SPDX

CHECKSUM_ALGORITHMS: dict[URIRef, str] = {
    SPDX.checksumAlgorithm_md5: "md5",
    SPDX.checksumAlgorithm_sha1: "sha1",
    SPDX.checksumAlgorithm_sha256: "sha256",
}


class HarvestError(ValueError):
    """A document that cannot be read as a catalogue."""


@dataclass(frozen=True)
class HarvestedResource:
    url: str
    format: str | None
    media_type: str | None
    checksum_type: str | None
    checksum: str | None
    title: str | None
    schema_url: str | None


@dataclass(frozen=True)
class HarvestedDataset:
    uri: str | None
    title: str
    description: str
    keywords: list[str]
    licences: list[str]
    schema_url: str | None
    resources: list[HarvestedResource]


def _no_remote_context(value: Any) -> None:
    """Refuse any ``@context`` that is not inline (rdflib would fetch a URL)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "@context":
                contexts = item if isinstance(item, list) else [item]
                if any(not isinstance(c, dict) for c in contexts if c is not None):
                    raise HarvestError("remote JSON-LD @context refused")
            _no_remote_context(item)
    elif isinstance(value, list):
        for item in value:
            _no_remote_context(item)


def parse(text: str, fmt: Format["json-ld", "turtle"]) -> Graph:
    """Parse a catalogue document into a graph."""
    graph = Graph()
    try:
        if fmt == "json-ld":
            data = json.loads(text)
            _no_remote_context(data)
            # rdflib's JSON-LD plugin parses through a deprecated ConjunctiveGraph (a
            # DeprecationWarning on every call): its to_rdf fills a plain graph directly.
            to_rdf(data, graph)
        else:
            graph.parse(data=text, format="turtle")
    except HarvestError:
        raise
    except Exception as exc:  # any parser failure is a bad document
        raise HarvestError(f"not a {fmt} catalogue: {exc}") from exc
    return graph


def _text(graph: Graph, subject: Node, predicate: URIRef) -> str | None:
    value = graph.value(subject, predicate)
    return None if value is None else str(value)


def _format(graph: Graph, dist: Node) -> str | None:
    value = graph.value(dist, DCTERMS.format)
    if value is None:
        return None
    text = str(value)
    if text.startswith(str(EU_FILE_TYPE)) or text.startswith(IANA_MEDIA_TYPES):
        text = text.rstrip("/").rsplit("/", 1)[-1]
    return text.lower()


def _media_type(graph: Graph, dist: Node) -> str | None:
    value = graph.value(dist, DCAT.mediaType)
    if value is None:
        return None
    text = str(value)
    if text.startswith(IANA_MEDIA_TYPES):
        return text[len(IANA_MEDIA_TYPES) :]
    return text


def _resource(graph: Graph, dist: Node) -> HarvestedResource | None:
    url = _text(graph, dist, DCAT.downloadURL) or _text(graph, dist, DCAT.accessURL)
    if not url:
        return None
    checksum_type = checksum = None
    node = graph.value(dist, SPDX.checksum)
    if node is not None:
        algorithm = graph.value(node, SPDX.algorithm)
        if isinstance(algorithm, URIRef) and algorithm in CHECKSUM_ALGORITHMS:
            checksum_type = CHECKSUM_ALGORITHMS[algorithm]
            checksum = _text(graph, node, SPDX.checksumValue)
    return HarvestedResource(
        url=url,
        format=_format(graph, dist),
        media_type=_media_type(graph, dist),
        checksum_type=checksum_type,
        checksum=checksum,
        title=_text(graph, dist, DCTERMS.title),
        schema_url=_text(graph, dist, DCTERMS.conformsTo),
    )


def _dataset(graph: Graph, node: Node) -> HarvestedDataset | None:
    title = _text(graph, node, DCTERMS.title)
    if not title:
        return None  # udata: "missing title on dataset", skipped
    description = _text(graph, node, DCTERMS.description) or _text(graph, node, DCTERMS.abstract)
    keywords = sorted(str(k) for k in graph.objects(node, DCAT.keyword))
    distributions = sorted(graph.objects(node, DCAT.distribution), key=str)
    licences = {str(x) for x in graph.objects(node, DCTERMS.license)}
    resources: list[HarvestedResource] = []
    for dist in distributions:
        licences |= {str(x) for x in graph.objects(dist, DCTERMS.license)}
        resource = _resource(graph, dist)
        if resource is not None:
            resources.append(resource)
    return HarvestedDataset(
        uri=str(node) if isinstance(node, URIRef) else None,
        title=title,
        description=description or "",
        keywords=keywords,
        licences=sorted(licences),
        schema_url=_text(graph, node, DCTERMS.conformsTo),
        resources=resources,
    )


def harvest(text: str, fmt: Format["json-ld", "turtle"]) -> list[HarvestedDataset]:
    """The datasets a harvester would create from a catalogue document, by URI."""
    graph = parse(text, fmt)
    found = [_dataset(graph, node) for node in graph.subjects(RDF.type, DCAT.Dataset)]
    return sorted((d for d in found if d is not None), key=lambda d: (d.uri or "", d.title))


__all__ = [
    "HarvestError",
    "HarvestedDataset",
    "HarvestedResource",
    "harvest",
    "parse",
]
