"""The map page: entries (points or clusters) live, zones, layers, a replay slider, the
offline base map; zone drawing and GeoJSON layer import for those allowed."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid
from hypervision.core.i18n import N_, PERIODS
from hypervision.follows import service as prefs
from hypervision.geo import basemap, layers, zones
from hypervision.geo.schemas import ZoneCreate, ZoneKind
from hypervision.identity import service as identity
from hypervision.identity.principal import Principal
from hypervision.policy.rules import Action, allowed
from hypervision.products import quality as products_quality
from hypervision.products import service as products
from hypervision.records.schemas import LabelIn
from hypervision.web.choices import display_names, situation_titles
from hypervision.web.feed_pages import parse_query
from hypervision.web.render import render, shows, translator
from hypervision.web.session import Officer, Reader

router = APIRouter(include_in_schema=False)
BASEMAP_URL = "/carte/tuiles/fond.pmtiles"
ZONE_KINDS = {
    ZoneKind.PERIMETER.value: N_("Venue perimeter"),
    ZoneKind.TRAFFIC.value: N_("Traffic restriction"),
    ZoneKind.EVACUATION.value: N_("Evacuation area"),
    ZoneKind.OTHER.value: N_("Other"),
}


async def _context(
    request: Request, session: AsyncSession, settings: Settings, actor: Principal
) -> dict[str, Any]:
    query = parse_query(request, settings)
    zone_rows = await zones.list_zones(session=session, settings=settings, actor=actor)
    layer_rows = await layers.list_layers(session=session, settings=settings, actor=actor)
    placed = [  # data products with a place: shown like layers, under their own rules
        p
        for p in await products.catalogue(session=session, settings=settings, actor=actor)
        if any(f.get("type") in ("geojson", "geometry") for f in p.table_schema.get("fields", []))
    ]
    levels = [z.label_level for z in zone_rows] + [lay.label_level for lay in layer_rows]
    shows(request, levels + [p.label_level for p in placed])
    assert actor.user_id is not None
    followed = {f.target for f in await prefs.follows(session, actor.user_id) if f.kind == "zone"}
    rank = settings.level_rank(actor.clearance) if actor.clearance in settings.label_levels else 0
    return {
        "query": query,
        "zones": zone_rows,
        "zone_choices": {str(z.id): z.name for z in zone_rows},
        "layers": layer_rows,
        "placed_products": placed,
        "product_quality": await products_quality.summaries(
            session=session, actor=actor, products=placed
        ),
        "followed_zones": followed,
        "situations": await situation_titles(request, session, settings, actor),
        "organisations": await identity.organisation_choices(session=session),
        "periods": PERIODS,
        "names": display_names(),
        "severity_labels": {
            code: translator(request).gettext(name)
            for code, name in display_names()["severity"].items()
        },
        "zone_kinds": ZONE_KINDS,
        "can_draw": allowed(actor, Action.TRIAGE),
        "can_import": allowed(actor, Action.WRITE),
        "levels": settings.label_levels[
            : min(rank, settings.level_rank(settings.label_ceiling)) + 1
        ],
        "errors": {},
        "feature_errors": [],
    }


@router.get("/carte", response_class=HTMLResponse)
async def map_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    enregistree: str = "",
) -> Response:
    context = await _context(request, session, settings, actor)
    if enregistree:  # back from saving a zone: say so, with its name
        chosen = context["query"].zone
        context["saved_zone"] = next((z for z in context["zones"] if str(z.id) == chosen), None)
    return render(request, "map.html", context)


@router.api_route(BASEMAP_URL, methods=["GET", "HEAD"])
async def base_map(request: Request, settings: SettingsDep, actor: Reader) -> Response:
    """The operator's PMTiles base map, by byte ranges (signed-in users only)."""
    if settings.map_pmtiles is None:
        return Response("Aucun fond de carte configuré.", status_code=404, media_type="text/plain")
    return basemap.serve(request, settings.map_pmtiles)


def _label(level: str, everyone: bool, own_code: str | None) -> LabelIn | None:
    if not level:
        return None
    return LabelIn(level=level, audience=[] if everyone or not own_code else [own_code])


async def _own_code(session: AsyncSession, actor: Principal) -> str | None:
    own = await identity.get_organisation(session=session, org_id=actor.organisation_id)
    return own.code if own else None


@router.post("/carte/zones", response_class=HTMLResponse)
async def draw_zone(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    name: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=24)] = "other",
    geometry: Annotated[str, Form(max_length=2_000_000)] = "",
    level: Annotated[str, Form(max_length=16)] = "",
    everyone: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """A zone drawn on the map (watch officers)."""
    t = translator(request).gettext
    errors: dict[str, str] = {}
    try:
        shape = json.loads(geometry) if geometry else None
        data = ZoneCreate(
            name=name,
            kind=kind,
            geometry=shape or {},
            label=_label(level, bool(everyone), await _own_code(session, actor)),
        )
        async with session.begin_nested():
            zone = await zones.create_zone(
                session=session, settings=settings, actor=actor, data=data
            )
    except (json.JSONDecodeError, RecursionError):
        errors["geometry"] = t("Draw the zone on the map first.")
    except ValidationError as exc:
        for err in exc.errors():
            errors.setdefault(str(err["loc"][0]), t("Check this field."))
    except Invalid as exc:
        errors["geometry"] = exc.en if translator(request).locale == "en" else exc.fr
    if errors:
        context = await _context(request, session, settings, actor)
        context.update(errors=errors, zone_name=name, open_panel="zone")
        return render(request, "map.html", context, status_code=422)
    return RedirectResponse(f"/carte?zone={zone.id}&enregistree=1", status_code=303)


@router.post("/carte/couches", response_class=HTMLResponse)
async def import_layer(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer
) -> Response:
    """A GeoJSON file imported as a layer: every bad feature is listed, nothing is half-kept."""
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        data = (
            await upload.read(settings.layer_max_bytes + 1)
            if isinstance(upload, UploadFile)
            else b""
        )
        try:
            async with session.begin_nested():
                layer = await layers.import_layer(
                    session=session,
                    settings=settings,
                    actor=actor,
                    name=str(form.get("name") or ""),
                    description=str(form.get("description") or ""),
                    label=_label(
                        str(form.get("level") or ""),
                        bool(form.get("everyone")),
                        await _own_code(session, actor),
                    ),
                    data=data,
                )
        except Invalid as exc:
            english = translator(request).locale == "en"
            context = await _context(request, session, settings, actor)
            context.update(
                errors={"file": exc.en if english else exc.fr},
                feature_errors=[
                    (f["index"], f["message_en"] if english else f["message"])
                    for f in exc.extra.get("features", [])
                ],
                layer_name=str(form.get("name") or "")[:120],
                open_panel="layer",
            )
            return render(request, "map.html", context, status_code=422)
    finally:
        await form.close()
    return RedirectResponse(f"/carte?couche={layer.id}", status_code=303)
