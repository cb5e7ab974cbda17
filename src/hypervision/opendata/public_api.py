"""The public open data API and downloads (ADR 0035), no sign-in: datasets, their rows, their
releases' files. Rate limited per client address; ETag and Cache-Control on every answer,
``If-None-Match`` answered 304 from the datasets' versions, before the data is read;
downloads streamed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from hypervision import __version__
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
    """One token of the client address's bucket, or 429 with Retry-After. The public cache
    (``opendata.cache``) takes it before the application and flags the request."""
    wait = request.scope.get("state", {}).get("opendata_wait")
    if wait is not None:
        raise TooManyRequests(wait)
    if request.scope.get("state", {}).get("opendata_limited"):
        return
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


def version(publication: Publication, publisher: str) -> list[Any]:
    """What a public answer about ``publication`` depends on, read before it is built: its
    words never change after the proposal, its releases are written once (``release_count``
    names the latest), and approval, refresh and withdrawal move ``modified_at``."""
    return [
        str(publication.id),
        publication.release_count,
        publication.modified_at.isoformat(),
        publication.state,
        publisher,
    ]


def etag(request: Request, kind: str, *parts: Any) -> str:
    """The ETag of an answer from its metadata (``parts``, e.g. ``version``), the address
    asked (path, query, base URL), the answer's ``kind`` and the application's version (its
    shape may change with it): a conditional request is answered 304 before the data
    queries run."""
    query = sorted(request.query_params.multi_items())
    asked = [__version__, kind, str(request.base_url), request.url.path, query]
    seed = json.dumps([*asked, *parts], separators=(",", ":"), default=str)
    return f'"{hashlib.sha256(seed.encode()).hexdigest()[:32]}"'


async def cached(
    request: Request,
    tag: str,
    body: Callable[[], Awaitable[Any]],
    cache: str = SHORT,
    render: Callable[[Any], bytes] | None = None,
    media_type: str = "application/json",
) -> Response:
    """304 when ``If-None-Match`` holds ``tag``, before ``body()`` runs its queries; else
    the body (as JSON, or ``render(body)``)."""
    headers = {"ETag": tag, "Cache-Control": cache, "Vary": "Accept-Encoding"}
    if _matches(request, tag):
        return Response(status_code=304, headers=headers)
    found = await body()
    if render is not None:
        return Response(render(found), media_type=media_type, headers=headers)
    data = json.dumps(found, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    return Response(data, media_type=media_type, headers=headers)


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


Pairs = list[tuple[Publication, DataProduct]]


async def _names(session: Any, pairs: Pairs) -> dict[Any, str]:
    return await public.publishers(session, {d.organisation_id for _, d in pairs})


def _versions(pairs: Pairs, names: dict[Any, str]) -> list[Any]:
    return [version(p, names.get(d.organisation_id, "")) for p, d in pairs]


async def _read(
    request: Request, session: Any, pairs: Pairs, names: dict[Any, str]
) -> list[DatasetRead]:
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
    names = await _names(session, chosen)
    tag = etag(request, "datasets", len(pairs), page, size, _versions(chosen, names))

    async def body() -> Any:
        datasets = await _read(request, session, chosen, names)
        page_read = DatasetPage(total=len(pairs), page=page, size=size, datasets=datasets)
        return page_read.model_dump(mode="json")

    return await cached(request, tag, body)


@router.get("/opendata/api/datasets/{slug}", response_model=DatasetRead)
async def get_dataset(
    request: Request, session: PublicSession, settings: SettingsDep, slug: str
) -> Response:
    """A published dataset: its metadata and releases (410 once withdrawn)."""
    pair = await public.dataset(session, settings, slug)
    names = await _names(session, [pair])

    async def body() -> Any:
        return (await _read(request, session, [pair], names))[0].model_dump(mode="json")

    return await cached(request, etag(request, "dataset", _versions([pair], names)), body)


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
    # The latest release, written once: its number decides the rows (and the query the rest).
    tag = etag(request, "rows", str(publication.id), publication.release_count)

    async def body() -> Any:
        release = await public.release(session, publication, None)
        params = {k: v for k, v in request.query_params.items() if k not in RESERVED_PARAMS}
        total, rows = await public.rows_page(session, release, params, page, size)
        found = RowsPage(
            release=release.number,
            total=total,
            page=page,
            size=size,
            fields=release.fields,
            rows=rows,
        )
        return found.model_dump(mode="json")

    return await cached(request, tag, body)


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


async def _document(
    request: Request,
    session: Any,
    settings: Any,
    render: Callable[[Any], str],
    media_type: str,
) -> Response:
    """The catalogue as ``render`` writes it, tagged by the versions of what it describes
    (not by its text: the serialisation names blank nodes afresh each time)."""
    pairs = await public.datasets(session, settings, "")
    names = await _names(session, pairs)
    tag = etag(request, media_type, _versions(pairs, names))

    async def body() -> Any:
        return catalogue.catalogue(_base(request), await _read(request, session, pairs, names))

    return await cached(
        request, tag, body, render=lambda found: render(found).encode(), media_type=media_type
    )


@router.get(
    "/catalogue.jsonld",
    response_class=Response,
    responses={200: {"content": {"application/ld+json": {}}}},
)
async def catalogue_jsonld(
    request: Request, session: PublicSession, settings: SettingsDep
) -> Response:
    """The published datasets as a DCAT-AP catalogue in JSON-LD (what data.gouv.fr harvests)."""
    return await _document(request, session, settings, dcat_graph.to_jsonld, "application/ld+json")


@router.get(
    "/catalogue.ttl", response_class=Response, responses={200: {"content": {"text/turtle": {}}}}
)
async def catalogue_turtle(
    request: Request, session: PublicSession, settings: SettingsDep
) -> Response:
    """The same catalogue in Turtle."""
    return await _document(request, session, settings, dcat_graph.to_turtle, "text/turtle")


@router.get("/opendata/api/datasets/{slug}/schema.json")
async def dataset_schema(
    request: Request, session: PublicSession, settings: SettingsDep, slug: str
) -> Response:
    """The Table Schema of a published dataset's latest release (``dct:conformsTo``)."""
    pair = await public.dataset(session, settings, slug)
    names = await _names(session, [pair])

    async def body() -> Any:
        read = (await _read(request, session, [pair], names))[0]
        try:
            described = catalogue.dataset(_base(request), read)
        except ValueError:
            raise NotFound("Schéma indisponible.", "Schema unavailable.") from None
        return table_schema(described)

    return await cached(request, etag(request, "schema", _versions([pair], names)), body)
