"""The no-code editor of a space (``/espaces/{id}/modifier``, docs/adr/0044): a palette of
module types, each module configured by choosing from lists (sources, fields, aggregates,
groupings, periods, filters) with a live preview read as the officer, moved and resized by
drag and drop or by keyboard, undone and redone; every save is a PATCH of the module list
through the API (one version each), so the server's history holds every step.

The page carries what the officer may choose from, read as them: the data products of the
catalogue and, for each, only the fields their rules let them read."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Forbidden, Invalid
from hypervision.core.i18n import N_, SEVERITY_NAMES, STATUS_NAMES
from hypervision.identity import service as identity
from hypervision.identity.principal import Principal
from hypervision.products import service as products
from hypervision.products.models import ProductStatus
from hypervision.records import access
from hypervision.records.etags import etag
from hypervision.spaces import modules, service
from hypervision.spaces.api import space_reads
from hypervision.spaces.models import Space
from hypervision.spaces.schemas import ModuleData, ModuleIn
from hypervision.web.choices import display_names
from hypervision.web.render import in_words, render, shows, translator
from hypervision.web.session import Officer
from hypervision.web.space_pages import module_html

router = APIRouter(include_in_schema=False)
PREVIEW_MAX = 64 * 1024  # one module's JSON


@dataclass(frozen=True)
class Kind:
    """A module type of the palette: its name and one line of what it shows, its default
    size on the 12-column grid and its default configuration."""

    type: str
    name: str
    description: str
    w: int
    h: int
    config: dict[str, Any] = field(default_factory=dict)
    needs_product: bool = False


DAY = {"hours": 24}
PALETTE: tuple[Kind, ...] = (
    Kind(
        "feed",
        N_("Main courante feed"),
        N_("The latest entries, filtered by category, severity, status or period."),
        6,
        5,
        {"filter": DAY, "limit": 10},
    ),
    Kind("map", N_("Map"), N_("The located entries and the zones, live."), 6, 5, {"filter": DAY}),
    Kind(
        "table",
        N_("Data product table"),
        N_("The rows of a data product, with the columns you choose."),
        12,
        4,
        needs_product=True,
    ),
    Kind(
        "chart",
        N_("Chart"),
        N_("Entries or a product's rows counted or summed, by group or over time."),
        6,
        4,
        {"kind": "bar", "group_by": "category", "filter": DAY},
    ),
    Kind(
        "kpi",
        N_("Key figure"),
        N_("One number in large type, coloured past your thresholds."),
        3,
        2,
        {"filter": DAY},
    ),
    Kind("text", N_("Text"), N_("Instructions or a note: headings, bold, lists."), 6, 2),
    Kind(
        "links",
        N_("Links and documents"),
        N_("Useful addresses: procedures, directories, shared documents."),
        4,
        3,
    ),
    Kind(
        "form",
        N_("Form"),
        N_("Record an entry in the main courante (or a row of a product) from the space."),
        4,
        4,
        {"target": "entry"},
    ),
    Kind(
        "synthesis",
        N_("Latest situation report"),
        N_("The latest validated situation report (point de situation)."),
        6,
        2,
    ),
    Kind(
        "situations",
        N_("Situations"),
        N_("The ongoing situations, most recent first."),
        6,
        3,
        {"statuses": ["open", "in_progress"]},
    ),
)
CHART_KINDS = {
    "bar": N_("Bars"),
    "line": N_("Line"),
    "area": N_("Area"),
    "pie": N_("Pie"),
    "donut": N_("Donut"),
    "heatmap": N_("Heat map"),
    "histogram": N_("Histogram"),
}
AGGREGATES = {
    "count": N_("Number of rows"),
    "sum": N_("Sum"),
    "avg": N_("Average"),
    "min": N_("Minimum"),
    "max": N_("Maximum"),
}
BUCKETS = {
    "hour": N_("By hour"),
    "day": N_("By day"),
    "week": N_("By week"),
    "month": N_("By month"),
}
ENTRY_GROUPS = {
    "category": N_("Category"),
    "severity": N_("Severity"),
    "status": N_("Status"),
    "organisation_id": N_("Organisation"),
    "occurred_at": N_("Time of the events"),
}
HOURS = {
    "": N_("Any time"),
    "1": N_("Last hour"),
    "6": N_("Last 6 hours"),
    "24": N_("Last 24 hours"),
    "48": N_("Last 48 hours"),
    "168": N_("Last 7 days"),
}
# What the editor's script says (announcements, labels of the settings it builds).
MESSAGES = {
    "settings": N_("Settings of the module"),
    "title": N_("Title of the module"),
    "source": N_("Data source"),
    "entries": N_("The main courante"),
    "product": N_("Data product"),
    "kind": N_("Kind of chart"),
    "group": N_("Group by"),
    "series": N_("One series per"),
    "none": N_("Nothing"),
    "bucket": N_("Period"),
    "measure": N_("Figure"),
    "measureField": N_("Of the field"),
    "categories": N_("Categories"),
    "severities": N_("Severities"),
    "statuses": N_("Statuses"),
    "hours": N_("Entries of"),
    "limit": N_("How many"),
    "zones": N_("Show the zones"),
    "columns": N_("Columns shown"),
    "sort": N_("Sorted by"),
    "sortDefault": N_("Order of import"),
    "warning": N_("Orange from"),
    "alert": N_("Red from"),
    "thresholdHint": N_("Leave empty: no colour."),
    "worse": N_("A high figure is bad news (else a low one)"),
    "unit": N_("Unit shown after the figure"),
    "markdown": N_("Text (**bold**, # heading, - list)"),
    "linkTitle": N_("Title of link %(n)s"),
    "linkUrl": N_("Address of link %(n)s (https://… or /…)"),
    "addLink": N_("Add a link"),
    "removeLink": N_("Remove link %(n)s"),
    "target": N_("The form adds"),
    "targetEntry": N_("An entry of the main courante"),
    "targetProduct": N_("A row of a data product"),
    "presetCategory": N_("Category of the entries"),
    "presetSeverity": N_("Severity of the entries"),
    "chosenByOfficer": N_("Chosen by whoever fills it in"),
    "noField": N_("This product has no field you may read for this."),
    "noProduct": N_("No data product you may read: ask a data steward."),
    "module": N_("Module: %(title)s"),
    "added": N_("%(title)s added, row %(y)s, column %(x)s."),
    "moved": N_("%(title)s moved: row %(y)s, column %(x)s."),
    "resized": N_("%(title)s: %(w)s columns wide, %(h)s rows high."),
    "removed": N_("%(title)s removed. Undo with Ctrl+Z."),
    "undone": N_("Undone."),
    "redone": N_("Redone."),
    "saving": N_("Saving…"),
    "saved": N_("Saved (version %(v)s)."),
    "notSaved": N_("Not saved: %(message)s"),
    "shared": N_("Sharing saved."),
    "described": N_("Title and description saved."),
    "loading": N_("Loading…"),
    "previewFailed": N_("The preview could not be shown."),
    "drag": N_("Move (drag, or arrow keys)"),
    "configure": N_("Settings"),
    "remove": N_("Remove"),
    "resize": N_("Resize"),
}


def _words(request: Request, table: dict[str, str]) -> list[tuple[str, str]]:
    gettext = translator(request).gettext
    return [(code, gettext(name)) for code, name in table.items()]


async def _products(
    request: Request, session: AsyncSession, settings: Settings, actor: Principal
) -> list[dict[str, Any]]:
    """The products the officer may read, each with only the fields their rules let them
    read (name, title, type): what the settings offer."""
    found = await products.catalogue(session=session, settings=settings, actor=actor)
    dialect = access.dialect_of(session)
    chosen: list[dict[str, Any]] = []
    for product in found:
        if product.status not in (ProductStatus.ACTIVE.value, ProductStatus.DEPRECATED.value):
            continue
        reading = products.reading_for(settings, actor, product, dialect)
        fields = [
            {"name": f["name"], "title": f.get("title") or f["name"], "type": f.get("type")}
            for f in product.table_schema.get("fields", [])
            if f["name"] in reading.columns
        ]
        chosen.append({"id": str(product.id), "name": product.name, "fields": fields})
    shows(request, [p.label_level for p in found])
    return chosen


async def _editable(
    session: AsyncSession, settings: Settings, actor: Principal, space_id: uuid.UUID
) -> Space:
    space = await service.find_space(
        session=session, settings=settings, actor=actor, space_id=space_id
    )
    if not service.may_edit(actor, space):
        raise Forbidden(
            "Vous pouvez voir cet espace mais pas le modifier.",
            "You may see this space but not change it.",
        )
    return space


@router.get("/espaces/{space_id}/modifier", response_class=HTMLResponse)
async def space_editor(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    space_id: uuid.UUID,
) -> Response:
    space = await _editable(session, settings, actor, space_id)
    await access.delivered(session, actor, action="space.read", kind="space", rows=[space])
    shows(request, [space.label_level])
    read = (await space_reads(session, actor, [space]))[0]
    gettext = translator(request).gettext
    names = display_names()
    choices = {
        "categories": [(c, gettext(names["category"].get(c, c))) for c in settings.categories],
        "severities": _words(request, SEVERITY_NAMES),
        "statuses": _words(request, STATUS_NAMES),
        "kinds": _words(request, CHART_KINDS),
        "aggregates": _words(request, AGGREGATES),
        "buckets": _words(request, BUCKETS),
        "entryGroups": _words(request, ENTRY_GROUPS),
        "hours": _words(request, HOURS),
        "products": await _products(request, session, settings, actor),
        "palette": [
            {
                "type": k.type,
                "name": gettext(k.name),
                "w": k.w,
                "h": k.h,
                "config": k.config,
                "needsProduct": k.needs_product,
            }
            for k in PALETTE
        ],
        "messages": {key: gettext(text) for key, text in MESSAGES.items()},
    }
    document = {
        "id": str(space.id),
        "etag": etag(space),
        "version": space.version,
        "title": space.title,
        "modules": space.modules,
        "label": read.label.model_dump(),
        "personal": space.owner_user_id is not None,
        "ownOrganisation": read.organisation,
    }
    usernames = await service.usernames(session, set(space.people))
    organisations = await identity.organisation_choices(session=session)
    return render(
        request,
        "space_edit.html",
        {
            "space": read,
            "palette": PALETTE,
            "organisations": organisations,
            "choices": json.dumps(choices, ensure_ascii=False),
            "document": json.dumps(document, ensure_ascii=False),
            "may_personal": space.owner_user_id in (None, actor.user_id),
            "people": ", ".join(sorted(usernames.get(p, "") for p in space.people)),
        },
    )


@router.post("/espaces/{space_id}/apercu", response_class=HTMLResponse)
async def module_preview(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    space_id: uuid.UUID,
    module: Annotated[str, Form(max_length=PREVIEW_MAX)] = "",
) -> Response:
    """One module's content from an unsaved configuration (the editor's live preview), read
    as the officer exactly as the space's page will read it."""
    space = await _editable(session, settings, actor, space_id)
    try:
        parsed = ModuleIn.model_validate(json.loads(module or "null"))
        stored = service.check_modules([parsed])[0]
    except (ValueError, ValidationError):
        message = translator(request).gettext("This module's settings are incomplete.")
        return module_html(request, space.id, {"id": "apercu"}, _invalid("", message))
    except Invalid as refused:
        found = _invalid(parsed.type, in_words(request, refused))
        return module_html(request, space.id, parsed.model_dump(), found)
    french = translator(request).locale == "fr"
    found = await modules.module_data(
        session=session, settings=settings, actor=actor, space=space, module=stored, french=french
    )
    return module_html(request, space.id, stored, found)


def _invalid(kind: str, message: str) -> ModuleData:
    """Settings that do not fit yet: answered 200 all the same, so that the preview shows why
    in place (htmx swaps only successful answers)."""
    return ModuleData(module_id="apercu", type=kind, status="invalid", message=message)
