"""Public reads (ADR 0035): the datasets the public principal may see, their releases and
rows. Everything here runs in the public principal's context; a dataset that is unknown,
only proposed, or whose product the public may no longer see answers the same 404; a
withdrawn one answers 410 with its reason."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hypervision.config import Settings
from hypervision.core.errors import AppError, Invalid, NotFound
from hypervision.identity.models import Organisation
from hypervision.opendata.models import Publication, PublicationState, Release, ReleaseRow
from hypervision.opendata.public_principal import bind_public, public_filter
from hypervision.products.models import DataProduct
from hypervision.products.values import typed

BATCH = 5000
PAGE_MAX = 1000


class Gone(AppError):
    status, code = 410, "gone"


def not_found() -> NotFound:
    return NotFound("Jeu de données introuvable.", "Dataset not found.")


def _published(session: AsyncSession, settings: Settings) -> Any:
    return (
        select(Publication, DataProduct)
        .join(DataProduct, DataProduct.id == Publication.product_id)
        .where(public_filter(session, settings))
    )


async def dataset(
    session: AsyncSession, settings: Settings, slug: str
) -> tuple[Publication, DataProduct]:
    """The published dataset ``slug``; 404 alike for unknown and unpublished, 410 withdrawn."""
    found = (
        await session.execute(_published(session, settings).where(Publication.slug == slug[:64]))
    ).first()
    if found is None or found[0].state == PublicationState.PROPOSED.value:
        raise not_found()
    publication, product = found
    if publication.state == PublicationState.WITHDRAWN.value:
        reason = publication.withdrawal_reason
        raise Gone(
            f"Ce jeu de données a été retiré : {reason}",
            f"This dataset was withdrawn: {reason}",
            extra={"reason": reason, "withdrawn_at": str(publication.withdrawn_at)},
        )
    return publication, product


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


async def datasets(
    session: AsyncSession, settings: Settings, q: str = ""
) -> list[tuple[Publication, DataProduct]]:
    query = _published(session, settings).where(
        Publication.state == PublicationState.PUBLISHED.value
    )
    rows = [(p, d) for p, d in (await session.execute(query.order_by(Publication.title))).all()]
    words = _fold(q).split()
    if not words:
        return rows

    def text(p: Publication) -> str:
        return _fold(" ".join([p.title, p.description, p.slug, *p.keywords, *p.themes]))

    return [(p, d) for p, d in rows if all(w in text(p) for w in words)]


async def releases_of(session: AsyncSession, publication: Publication) -> list[Release]:
    found = await session.scalars(
        select(Release).where(Release.publication_id == publication.id).order_by(Release.number)
    )
    return list(found)


async def publishers(session: AsyncSession, ids: set[Any]) -> dict[Any, str]:
    if not ids:
        return {}
    found = await session.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))
    )
    return {i: n for i, n in found.all()}


async def release(session: AsyncSession, publication: Publication, number: int | None) -> Release:
    query = select(Release).where(Release.publication_id == publication.id)
    if number is None:
        query = query.order_by(Release.number.desc()).limit(1)
    else:
        query = query.where(Release.number == number)
    found = await session.scalar(query)
    if found is None:
        raise NotFound("Version de publication introuvable.", "Release not found.")
    return found


def _filters(
    fields: Sequence[Mapping[str, str]], params: Mapping[str, str]
) -> list[ColumnElement[bool]]:
    kinds = {f["name"]: f["type"] for f in fields}
    where: list[ColumnElement[bool]] = []
    for name, raw in params.items():
        kind = kinds.get(name)
        if kind is None:
            raise Invalid(
                f"Champ « {name[:64]} » inconnu : filtrez par un champ du jeu de données.",
                f"Unknown field {name[:64]!r}: filter by a field of the dataset.",
                extra={"fields": [{"field": name[:64], "message": "unknown field"}]},
            )
        if kind == "geometry":
            raise Invalid("Une géométrie ne se filtre pas.", "A geometry cannot be filtered.")
        value = typed(kind, raw[:200], name)
        cell = ReleaseRow.data[name]
        if kind == "integer":
            where.append(cell.as_integer() == value)
        elif kind == "number":
            where.append(cell.as_float() == value)
        elif kind == "boolean":
            where.append(cell.as_boolean() == value)
        else:
            where.append(cell.as_string() == (value if kind == "string" else value.isoformat()))
    return where


async def rows_page(
    session: AsyncSession,
    release: Release,
    params: Mapping[str, str],
    page: int,
    size: int,
) -> tuple[int, list[dict[str, Any]]]:
    size = max(1, min(size, PAGE_MAX))
    where = [ReleaseRow.release_id == release.id, *_filters(release.fields, params)]
    total = await session.scalar(select(func.count()).select_from(ReleaseRow).where(*where))
    found = await session.scalars(
        select(ReleaseRow.data)
        .where(*where)
        .order_by(ReleaseRow.n)
        .offset((page - 1) * size)
        .limit(size)
    )
    return int(total or 0), list(found)


async def stream_rows(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, release_id: Any
) -> AsyncIterator[list[dict[str, Any]]]:
    """The rows of a release in batches, each read in its own short transaction (public
    context): a download holds neither the rows nor a transaction for its whole length."""
    last = 0
    while True:
        async with sessions() as session, session.begin():
            await bind_public(session, settings)
            found = (
                await session.execute(
                    select(ReleaseRow.n, ReleaseRow.data)
                    .where(ReleaseRow.release_id == release_id, ReleaseRow.n > last)
                    .order_by(ReleaseRow.n)
                    .limit(BATCH)
                )
            ).all()
        if not found:
            return
        last = int(found[-1][0])
        yield [data for _, data in found]


CHART_CATEGORIES = 30  # bars: the largest ones
CHART_DAYS = 366  # a line per day up to a year, else per month
MAP_FEATURES = 500
NUMERIC = ("integer", "number")
NOT_MEASURES = {"n", "id", "suppressed"}  # a row number, an identifier, suppression's flag


def chart_fields(fields: Sequence[Mapping[str, str]]) -> tuple[str, str, str] | None:
    """What the dataset's chart shows: (dimension, its type, measure), or None without a
    numeric measure or something to lay it along (a date, else a text)."""
    measure = next(
        (f["name"] for f in fields if f["type"] in NUMERIC and f["name"] not in NOT_MEASURES),
        None,
    )
    if measure is None:
        return None
    for kinds in (("date", "datetime"), ("string",)):
        found = next((f for f in fields if f["type"] in kinds), None)
        if found is not None:
            return found["name"], found["type"], measure
    return None


async def chart_groups(
    session: AsyncSession, release: Release
) -> tuple[str, str, str, list[dict[str, Any]]] | None:
    """The release's measure summed along its dimension (suppressed cells count as missing):
    per day (per month past a year) for a date, the largest categories for a text.
    (dimension, "line" or "bar", measure, groups) or None."""
    chosen = chart_fields(release.fields)
    if chosen is None:
        return None
    dimension, kind, measure = chosen
    value = func.sum(ReleaseRow.data[measure].as_float())
    text = ReleaseRow.data[dimension].as_string()
    where = ReleaseRow.release_id == release.id
    if kind in ("date", "datetime"):
        days = await session.scalar(
            select(func.count(func.distinct(func.substr(text, 1, 10)))).where(where)
        )
        key = func.substr(text, 1, 10 if int(days or 0) <= CHART_DAYS else 7)
        query = select(key, value).where(where).group_by(key).order_by(key)
        shape = "line"
    else:
        query = (
            select(text, value)
            .where(where)
            .group_by(text)
            .order_by(value.desc().nulls_last(), text)
            .limit(CHART_CATEGORIES)
        )
        shape = "bar"
    groups = [{"key": k, "value": v} for k, v in (await session.execute(query)).all()]
    return dimension, shape, measure, groups


async def map_features(
    session: AsyncSession, release: Release, where: str
) -> tuple[dict[str, Any], int]:
    """The first located rows of the release as a GeoJSON FeatureCollection (at most
    ``MAP_FEATURES``), and how many rows the release has."""
    found = await session.scalars(
        select(ReleaseRow.data)
        .where(ReleaseRow.release_id == release.id)
        .order_by(ReleaseRow.n)
        .limit(MAP_FEATURES)
    )
    features = [
        {
            "type": "Feature",
            "geometry": row[where],
            "properties": {k: v for k, v in row.items() if k != where},
        }
        for row in found
        if isinstance(row.get(where), dict) and row[where].get("type")
    ]
    return {"type": "FeatureCollection", "features": features}, release.row_count
