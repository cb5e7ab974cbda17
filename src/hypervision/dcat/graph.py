"""A catalogue as a DCAT-AP 3 graph (compatible with DCAT-AP 2.1), in JSON-LD or Turtle.

One ``dcat:Distribution`` per release and per download format. Vocabularies are the ones
DCAT-AP names and udata reads: EU data themes, EU languages, EU file types for
``dct:format``, IANA media types for ``dcat:mediaType``, SPDX checksums, a GeoSPARQL WKT
``dcat:bbox`` and a GeoJSON ``locn:geometry`` (the literal udata turns into coverage).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from importlib.resources import files

from pyshacl import validate as shacl_validate
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD

from hypervision.dcat.model import FORMATS, LANGUAGES, LICENCE_LABELS, Catalogue, Dataset, Release

ADMS = Namespace("http://www.w3.org/ns/adms#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
DATA_THEME = Namespace("http://publications.europa.eu/resource/authority/data-theme/")
EU_LANGUAGE = Namespace("http://publications.europa.eu/resource/authority/language/")
EU_FILE_TYPE = Namespace("http://publications.europa.eu/resource/authority/file-type/")
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"
# GeoDCAT-AP's datatype for a GeoJSON literal (the one udata recognises).
GEOJSON_LITERAL = URIRef(IANA_MEDIA_TYPES + "application/vnd.geo+json")

PREFIXES: dict[str, str] = {
    "dcat": str(DCAT),
    "dct": str(DCTERMS),
    "foaf": str(FOAF),
    "adms": str(ADMS),
    "spdx": str(SPDX),
    "locn": str(LOCN),
    "gsp": str(GSP),
    "skos": str(SKOS),
    "rdfs": str(RDFS),
    "xsd": str(XSD),
}
# The compact @context of the JSON-LD output: prefixes only, so every term keeps its IRI.
JSONLD_CONTEXT: dict[str, str] = dict(PREFIXES)


def media_type_uri(fmt: str) -> URIRef:
    return URIRef(IANA_MEDIA_TYPES + FORMATS[fmt][0])


def file_type_uri(fmt: str) -> URIRef:
    return EU_FILE_TYPE[FORMATS[fmt][1]]


def _when(value: datetime) -> Literal:
    return Literal(value.isoformat(), datatype=XSD.dateTime)


def _day(value: date) -> Literal:
    if isinstance(value, datetime):
        return _when(value)
    return Literal(value.isoformat(), datatype=XSD.date)


def _agent(g: Graph, cat: Catalogue, name: str) -> URIRef:
    """One foaf:Agent per publisher name, with a stable IRI in the catalogue's namespace."""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    agent = URIRef(f"{cat.base_url.rstrip('/')}/catalogue#agent-{digest}")
    if (agent, RDF.type, FOAF.Agent) not in g:
        g.add((agent, RDF.type, FOAF.Agent))
        g.add((agent, FOAF.name, Literal(name, lang=cat.language)))
    return agent


def dataset_uri(ds: Dataset) -> URIRef:
    """The dataset itself, described by its landing page (a hash IRI: not the page)."""
    return URIRef(f"{ds.landing_page}#dataset")


def _coverage(g: Graph, ds: Dataset, node: URIRef) -> None:
    if ds.temporal_start is not None or ds.temporal_end is not None:
        period = BNode()
        g.add((node, DCTERMS.temporal, period))
        g.add((period, RDF.type, DCTERMS.PeriodOfTime))
        if ds.temporal_start is not None:
            g.add((period, DCAT.startDate, _day(ds.temporal_start)))
        if ds.temporal_end is not None:
            g.add((period, DCAT.endDate, _day(ds.temporal_end)))
    if ds.bbox is not None:
        w, s, e, n = ds.bbox
        ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
        wkt = "POLYGON((" + ", ".join(f"{x!r} {y!r}" for x, y in ring) + "))"
        geojson = json.dumps({"type": "Polygon", "coordinates": [ring]}, separators=(",", ":"))
        place = BNode()
        g.add((node, DCTERMS.spatial, place))
        g.add((place, RDF.type, DCTERMS.Location))
        g.add((place, DCAT.bbox, Literal(wkt, datatype=GSP.wktLiteral)))
        g.add((place, LOCN.geometry, Literal(geojson, datatype=GEOJSON_LITERAL)))


def _distribution(
    g: Graph, cat: Catalogue, ds: Dataset, release: Release, fmt: str, url: str
) -> URIRef:
    dist = URIRef(f"{ds.landing_page}#release-{release.number}-{fmt}")
    lang = cat.language
    g.add((dist, RDF.type, DCAT.Distribution))
    g.add((dist, DCTERMS.identifier, Literal(f"{ds.slug}/{release.number}/{fmt}")))
    g.add(
        (dist, DCTERMS.title, Literal(f"{ds.title} — version {release.number} ({fmt})", lang=lang))
    )
    g.add(
        (
            dist,
            DCTERMS.description,
            Literal(f"Version {release.number}, {release.row_count} lignes.", lang="fr"),
        )
    )
    g.add((dist, DCAT.accessURL, URIRef(ds.landing_page)))
    g.add((dist, DCAT.downloadURL, URIRef(url)))
    g.add((dist, DCTERMS.format, file_type_uri(fmt)))
    g.add((file_type_uri(fmt), RDF.type, DCTERMS.MediaTypeOrExtent))
    g.add((dist, DCAT.mediaType, media_type_uri(fmt)))
    g.add((media_type_uri(fmt), RDF.type, DCTERMS.MediaType))
    g.add((dist, DCTERMS.license, URIRef(ds.licence_uri)))
    g.add((dist, DCTERMS.issued, _when(release.created)))
    g.add((dist, DCTERMS.modified, _when(release.created)))  # a release is never rewritten
    if fmt == "csv":
        g.add((dist, DCTERMS.conformsTo, URIRef(ds.schema_url)))
    checksum = release.checksum(fmt)
    if checksum is not None:
        node = BNode()
        g.add((dist, SPDX.checksum, node))
        g.add((node, RDF.type, SPDX.Checksum))
        g.add((node, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        g.add((node, SPDX.checksumValue, Literal(checksum, datatype=XSD.hexBinary)))
    if fmt in release.byte_sizes:
        size = Literal(str(release.byte_sizes[fmt]), datatype=XSD.nonNegativeInteger)
        g.add((dist, DCAT.byteSize, size))
    return dist


def _dataset(g: Graph, cat: Catalogue, ds: Dataset) -> URIRef:
    node = dataset_uri(ds)
    lang = cat.language
    g.add((node, RDF.type, DCAT.Dataset))
    g.add((node, DCTERMS.title, Literal(ds.title, lang=lang)))
    g.add((node, DCTERMS.description, Literal(ds.description, lang=lang)))
    g.add((node, DCTERMS.identifier, Literal(str(node))))
    ident = BNode()
    g.add((node, ADMS.identifier, ident))
    g.add((ident, RDF.type, ADMS.Identifier))
    g.add((ident, SKOS.notation, Literal(ds.slug)))
    for keyword in ds.keywords:
        g.add((node, DCAT.keyword, Literal(keyword, lang=lang)))
    for theme in ds.themes:
        g.add((node, DCAT.theme, DATA_THEME[theme]))
        g.add((DATA_THEME[theme], RDF.type, SKOS.Concept))
        g.add((DATA_THEME[theme], SKOS.inScheme, URIRef(str(DATA_THEME).rstrip("/"))))
    g.add((node, DCTERMS.publisher, _agent(g, cat, ds.publisher_name)))
    g.add((node, DCTERMS.issued, _when(ds.issued)))
    g.add((node, DCTERMS.modified, _when(ds.modified)))
    g.add((node, DCTERMS.language, EU_LANGUAGE[LANGUAGES[lang]]))
    g.add((node, DCAT.landingPage, URIRef(ds.landing_page)))
    g.add((URIRef(ds.landing_page), RDF.type, FOAF.Document))
    g.add((node, DCTERMS.conformsTo, URIRef(ds.schema_url)))
    g.add((URIRef(ds.schema_url), RDF.type, DCTERMS.Standard))
    _coverage(g, ds, node)
    licence = URIRef(ds.licence_uri)
    g.add((licence, RDF.type, DCTERMS.LicenseDocument))
    if ds.licence_uri in LICENCE_LABELS:
        g.add((licence, RDFS.label, Literal(LICENCE_LABELS[ds.licence_uri])))
    for release in sorted(ds.releases, key=lambda r: r.number):
        for fmt, url in release.downloads.items():
            g.add((node, DCAT.distribution, _distribution(g, cat, ds, release, fmt, url)))
    return node


def catalogue_graph(cat: Catalogue) -> Graph:
    """The whole catalogue as one RDF graph."""
    g = Graph()
    for prefix, uri in PREFIXES.items():
        g.bind(prefix, uri)
    node = URIRef(f"{cat.base_url.rstrip('/')}/catalogue")
    lang = cat.language
    g.add((node, RDF.type, DCAT.Catalog))
    g.add((node, DCTERMS.title, Literal(cat.title, lang=lang)))
    g.add((node, DCTERMS.description, Literal(cat.description, lang=lang)))
    g.add((node, DCTERMS.publisher, _agent(g, cat, cat.publisher_name)))
    g.add((node, FOAF.homepage, URIRef(cat.homepage)))
    g.add((URIRef(cat.homepage), RDF.type, FOAF.Document))
    language = EU_LANGUAGE[LANGUAGES[lang]]
    g.add((node, DCTERMS.language, language))
    g.add((language, RDF.type, DCTERMS.LinguisticSystem))
    g.add((node, DCTERMS.modified, _when(cat.modified)))
    g.add((node, DCAT.themeTaxonomy, URIRef(str(DATA_THEME).rstrip("/"))))
    for ds in cat.datasets:
        g.add((node, DCAT.dataset, _dataset(g, cat, ds)))
    return g


def to_jsonld(cat: Catalogue) -> str:
    """JSON-LD with a compact @context of prefixes, the nodes under ``@graph``."""
    text: str = catalogue_graph(cat).serialize(
        format="json-ld", context=JSONLD_CONTEXT, auto_compact=True, indent=2
    )
    return text


def to_turtle(cat: Catalogue) -> str:
    text: str = catalogue_graph(cat).serialize(format="turtle")
    return text


def shapes_graph() -> Graph:
    """The project's DCAT-AP shapes (``shapes/dcat-ap-mandatory.ttl``)."""
    text = files("hypervision.dcat").joinpath("shapes", "dcat-ap-mandatory.ttl").read_text("utf-8")
    return Graph().parse(data=text, format="turtle")


def validate(graph: Graph) -> tuple[bool, str]:
    """Check a graph against the shapes: (conforms, pyshacl's text report).

    Warnings count as failures (pyshacl's default): the recommended properties the shapes
    hold at ``sh:Warning`` are ones this catalogue promises to emit.
    """
    conforms, _report, text = shacl_validate(
        graph, shacl_graph=shapes_graph(), inference="none", abort_on_first=False
    )
    return bool(conforms), str(text)
