"""What the pages offer to choose from: the situations and zones the officer can see (read
through the services: policy, audit, marking) and the display names of the vocabularies."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.i18n import CATEGORY_NAMES, SEVERITY_NAMES, STATUS_NAMES
from hypervision.geo.zones import list_zones
from hypervision.identity.principal import Principal
from hypervision.logbook import situations
from hypervision.web.render import shows


async def situation_titles(
    request: Request, session: AsyncSession, settings: Settings, actor: Principal
) -> dict[str, str]:
    """The situations the officer can see, open first (for filters and forms): a read like
    any other (audited; their labels count for the page's marking)."""
    rows = await situations.situation_choices(session=session, settings=settings, actor=actor)
    shows(request, [s.label_level for s in rows])
    return {str(s.id): s.title for s in rows}


async def zone_names(
    request: Request, session: AsyncSession, settings: Settings, actor: Principal
) -> dict[str, str]:
    """The active zones the officer can see (for the zone filter; audited, marked)."""
    rows = await list_zones(session=session, settings=settings, actor=actor)
    shows(request, [z.label_level for z in rows])
    return {str(z.id): z.name for z in rows}


def display_names() -> dict[str, dict[str, str]]:
    return {"category": CATEGORY_NAMES, "severity": SEVERITY_NAMES, "status": STATUS_NAMES}
