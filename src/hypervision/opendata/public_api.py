"""The public open data API and downloads (ADR 0035), no sign-in: datasets, their rows, their
releases' files. Rate limited per client address; ETag and Cache-Control on every answer,
``If-None-Match`` answered 304; downloads streamed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import NotFound, TooManyRequests
from hypervision.core.openapi import errors
from hypervision.dcat import graph as dcat_graph
from hypervision.dcat.tableschema import table_schema
from hypervision.opendata import catalogue, formats, public
from hypervision.opendata.api import release_read
from hypervision.opendata.models import Publication, Release
from hypervision.opendata.public_principal import bind_public
from hypervision.opendata.ratelimit import TokenBuckets
from hypervision.opendata.schemas import DatasetPage, DatasetRead, RowsPage
from hypervision.products.models import DataProduct

SHORT = "public, max-age=60"
IMMUTABLE = "public, max-age=86400, immutable"
RESERVED_PARAMS = {"page", "size"}


async def limited(request: Request, settings: SettingsDep) -> None:
    """One token of the client address's bucket, or 429 with Retry-After."""
    buckets: TokenBuckets | None = getattr(request.app.state, "opendata_buckets", None)
    if buckets is None:
        buckets = TokenBuckets(settings.opendata_rate_per_second, settings.opendata_burst)
        request.app.state.opendata_buckets = buckets
    address = request.client.host if request.client else "unknown"
    wait = buckets.take(address)
    if wait is not None:
        raise TooManyRequests(wait)


async def public_session(session: DbSession, settings: SettingsDep) -> Any:
    await bind_public(session, settings)
    return session


PublicSession = Annotated[Any, Depends(public_session)]
router = APIRouter(
    tags=["open data (public)"],
    dependencies=[Depends(limited)],
    responses=errors(404, 410, 422, 429),
)


def _matches(request: Request, tag: str) -> bool:
    sent = request.headers.get("if-none-match", "")
    return tag in [t.strip() for t in sent.split(",")] or sent.strip() == "*"


def cached(request: Request, body: Any, cache: str = SHORT) -> Response:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    tag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = {"ETag": tag, "Cache-Control": cache, "Vary": "Accept-Encoding"}
    if _matches(request, tag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="application/json", headers=headers)


def dataset_read(
    request: Request,
    publication: Publication,
    publisher: str,
    found: list[Release],
) -> DatasetRead:
    latest = found[-1] if found else None
    return DatasetRead(
        slug=publication.slug,
        title=publication.title,
        description=publication.description,
        keywords=publication.keywords,
        themes=publication.themes,
        publisher=publisher,
        licence=publication.licence,
        issued=publication.approved_at or publication.proposed_at,
        modified=publication.modified_at,
        schedule=publication.schedule,
        temporal=latest.temporal if latest else None,
        bbox=latest.bbox if latest else None,
        fields=latest.fields if latest else [],
        url=f"{str(request.base_url).rstrip('/')}/opendata/{publication.slug}",
        releases=[release_read(publication.slug, r) for r in found],
    )


async def _read(
    request: Request, session: Any, pairs: list[tuple[Publication, DataProduct]]
) -> list[DatasetRead]:
    names = await public.publishers(session, {d.organisation_id for _, d in pairs})
    return [
        dataset_read(
            request, p, names.get(d.organisation_id, ""), await public.releases_of(session, p)
        )
        for p, d in pairs
    ]


@router.get("/opendata/api/datasets", response_model=DatasetPage)
async def list_datasets(
    request: Request,
    session: PublicSession,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """The published datasets (``q``: words of their title, description, keywords)."""
    pairs = await public.datasets(session, settings, q)
    chosen = pairs[(page - 1) * size : page * size]
    body = DatasetPage(
        total=len(pairs), page=page, size=size, datasets=await _read(request, session, chosen)
    )
    return cached(request, body.model_dump(mode="json"))


@router.get("/opendata/api/datasets/{slug}", response_model=DatasetRead)
async def get_dataset(
    request: Request, session: PublicSession, settings: SettingsDep, slug: str
) -> Response:
    """A published dataset: its metadata and releases (410 once withdrawn)."""
    pair = await public.dataset(session, settings, slug)
    read = (await _read(request, session, [pair]))[0]
    return cached(request, read.model_dump(mode="json"))


@router.get("/opendata/api/datasets/{slug}/rows", response_model=RowsPage)
async def dataset_rows(
    request: Request,
    session: PublicSession,
    settings: SettingsDep,
    slug: str,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=public.PAGE_MAX)] = 50,
) -> Response:
    """Rows of the latest release, a page at a time; ``<field>=<value>`` filters (equality)."""
    publication, _ = await public.dataset(session, settings, slug)
    release = await public.release(session, publication, None)
    params = {k: v for k, v in request.query_params.items() if k not in RESERVED_PARAMS}
    total, rows = await public.rows_page(session, release, params, page, size)
    body = RowsPage(
        release=release.number,
        total=total,
        page=page,
        size=size,
        fields=release.fields,
        rows=rows,
    )
    return cached(request, body.model_dump(mode="json"))


@router.get(
    "/opendata/datasets/{slug}/releases/{number}/data.{fmt}",
    response_class=StreamingResponse,
    responses={200: {"content": {m.media_type: {} for m in formats.FORMATS.values()}}},
)
async def download(
    request: Request,
    session: PublicSession,
    settings: SettingsDep,
    slug: str,
    number: str,
    fmt: str,
) -> Response:
    """A release's file (``number``: a release number or ``latest``), streamed."""
    publication, _ = await public.dataset(session, settings, slug)
    if fmt not in formats.FORMATS or not (number == "latest" or number.isdigit()):
        raise NotFound("Fichier introuvable.", "File not found.")
    release = await public.release(
        session, publication, None if number == "latest" else int(number[:9])
    )
    if fmt == "geojson" and formats.geometry_field(release.fields) is None:
        raise NotFound("Ce jeu de données n'a pas de géométrie.", "This dataset has no geometry.")
    tag = f'"{release.sha256[:40]}-{fmt}"'
    fmt_info = formats.FORMATS[fmt]
    headers = {
        "ETag": tag,
        "Cache-Control": SHORT if number == "latest" else IMMUTABLE,
        "Content-Disposition": (
            f'attachment; filename="{publication.slug}-{release.number}.{fmt_info.extension}"'
        ),
        "X-Checksum-Sha256": release.sha256 if fmt == "csv" else "",
    }
    if fmt != "csv":
        del headers["X-Checksum-Sha256"]
    if _matches(request, tag):
        return Response(status_code=304, headers=headers)
    batches = public.stream_rows(request.app.state.sessions, settings, release.id)
    return StreamingResponse(
        formats.chunks(fmt, release.fields, batches),
        media_type=fmt_info.media_type,
        headers=headers,
    )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _document(
    request: Request, found: Any, render: Callable[[Any], str], media_type: str
) -> Response:
    """``render(found)``, tagged by what it describes: the serialisation names blank nodes
    afresh each time, so the same catalogue would never match its own ETag."""
    tag = f'"{hashlib.sha256(f"{media_type} {found!r}".encode()).hexdigest()[:32]}"'
    headers = {"ETag": tag, "Cache-Control": SHORT, "Vary": "Accept-Encoding"}
    if _matches(request, tag):
        return Response(status_code=304, headers=headers)
    return Response(render(found).encode(), media_type=media_type, headers=headers)


async def _catalogue(request: Request, session: Any, settings: Any) -> Any:
    pairs = await public.datasets(session, settings, "")
    return catalogue.catalogue(_base(request), await _read(request, session, pairs))


@router.get(
    "/catalogue.jsonld",
    response_class=Response,
    responses={200: {"content": {"application/ld+json": {}}}},
)
async def catalogue_jsonld(
    request: Request, session: PublicSession, settings: SettingsDep
) -> Response:
    """The published datasets as a DCAT-AP catalogue in JSON-LD (what data.gouv.fr harvests)."""
    found = await _catalogue(request, session, settings)
    return _document(request, found, dcat_graph.to_jsonld, "application/ld+json")


@router.get(
    "/catalogue.ttl", response_class=Response, responses={200: {"content": {"text/turtle": {}}}}
)
async def catalogue_turtle(
    request: Request, session: PublicSession, settings: SettingsDep
) -> Response:
    """The same catalogue in Turtle."""
    found = await _catalogue(request, session, settings)
    return _document(request, found, dcat_graph.to_turtle, "text/turtle")


@router.get("/opendata/api/datasets/{slug}/schema.json")
async def dataset_schema(
    request: Request, session: PublicSession, settings: SettingsDep, slug: str
) -> Response:
    """The Table Schema of a published dataset's latest release (``dct:conformsTo``)."""
    pair = await public.dataset(session, settings, slug)
    read = (await _read(request, session, [pair]))[0]
    try:
        described = catalogue.dataset(_base(request), read)
    except ValueError:
        raise NotFound("Schéma indisponible.", "Schema unavailable.") from None
    return cached(request, table_schema(described))
