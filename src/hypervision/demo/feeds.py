"""The demo's own open-data feed (docs/adr/0029): the heat alerts of the Games' last days as a
CSV that changes every hour, served by the demo application itself under a public address so
that the "vigilance-canicule" product's HTTP source has something to poll. Mounted only when
``HYPERVISION_DEMO_FEEDS`` is on (``make demo``)."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.demo.products import DAY, DEPARTMENTS, PRODUCTS, _csv, principal_of
from hypervision.products import sources
from hypervision.products.fetch import FetchError, Guard
from hypervision.products.models import DataProduct
from hypervision.products.source_models import ProductSource

router = APIRouter(include_in_schema=False)
HEAT_PATH = "/demo/flux/vigilance-canicule.csv"
HEAT_SLUG = "vigilance-canicule"


def heat_feed(now: datetime) -> bytes:
    """Today's and tomorrow's forecast of the demo's Day, as Météo-France might publish it at
    the hour of ``now`` (the same bytes all hour long)."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(hour.isoformat())  # noqa: S311 - demo figures, not secrets
    rows = []
    for offset in (0, 1):
        date = (DAY + timedelta(days=offset)).date().isoformat()
        for department in DEPARTMENTS:
            tmax = round(33.5 + 2 * offset + rng.uniform(-2.0, 3.5), 1)
            level = "rouge" if tmax >= 37 else "orange" if tmax >= 34 else "jaune"
            rows.append([department, date, level, tmax])
    return _csv(["departement", "date", "vigilance", "tmax"], rows)


@router.get(HEAT_PATH)
async def heat(request: Request) -> Response:
    now = datetime.now(UTC)
    body = heat_feed(now)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(now.replace(minute=0, second=0, microsecond=0), True),
        "Cache-Control": "public, max-age=60",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/csv; charset=windows-1252", headers=headers)


def feed_url(settings: Settings) -> str:
    host = settings.bind_host if settings.bind_host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104 - read, not bound
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.bind_port}{HEAT_PATH}"


async def attach(session: AsyncSession, settings: Settings) -> str | None:
    """Point the heat alerts product at the demo's own feed (updated by key every 15
    minutes); the URL, or None when the feed is off or its host is not allowed."""
    url = feed_url(settings)
    if not settings.demo_feeds:
        return None
    try:
        Guard.of(settings).check_url(url)
    except FetchError:
        return None
    product = await session.scalar(select(DataProduct).where(DataProduct.slug == HEAT_SLUG))
    if product is None or await session.scalar(
        select(ProductSource.id).where(ProductSource.product_id == product.id)
    ):
        return None
    spec = next(p for p in PRODUCTS if p.slug == HEAT_SLUG)
    steward = await principal_of(session, spec.steward)
    await sources.set_source(
        session=session,
        settings=settings,
        actor=steward,
        product_id=product.id,
        config=sources.SourceConfig(url, "csv", "upsert", 15),
    )
    return url
