"""Correcting an entry in the web app: title, text, category, place and tags (a new version,
same policy and version check as the API's PATCH), and for watch officers its severity (their
qualification, as in triage). The form carries the version it was shown with: a change made
meanwhile is not overwritten (412) and what was typed is shown again."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import AppError, Forbidden
from hypervision.core.i18n import CATEGORY_NAMES
from hypervision.geo.places import VENUES, find_venue
from hypervision.logbook import entries, triage
from hypervision.logbook.models import Severity
from hypervision.logbook.schemas import EntryUpdate
from hypervision.records.etags import etag
from hypervision.web.entry_pages import edit_message, entry_context
from hypervision.web.render import render, translator
from hypervision.web.session import Officer

router = APIRouter(include_in_schema=False)
MAX_TAGS = 20


class Refused(Exception):
    """Input the form cannot turn into a correction; ``message`` says what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _point_text(location: dict[str, Any] | None) -> tuple[str, str]:
    """The latitude and longitude fields for a point (empty for none, or a line or area)."""
    if location and location.get("type") == "Point":
        lon, lat = location["coordinates"][:2]
        return f"{lat:.5f}", f"{lon:.5f}"
    return "", ""


def _fields(e: Any) -> dict[str, str]:
    """The form's values for the version shown."""
    lat, lon = _point_text(e.location)
    return {
        "title": e.title,
        "body": e.body,
        "category": e.category,
        "severity": Severity(e.severity).value,
        "tags": ", ".join(e.tags),
        "lat": lat,
        "lon": lon,
        "place": "",
    }


def _location(form: dict[str, str], current: dict[str, Any] | None, t: Any) -> Any:
    """The new location, or ``...`` when unchanged. A venue named wins; else coordinates;
    emptied coordinates remove a point; a line or an area is kept unless replaced."""
    if form["place"].strip():
        venue = find_venue(form["place"])
        if venue is None:
            raise Refused(t("Unknown place: pick one from the list or click on the map."))
        return {"type": "Point", "coordinates": [venue.lon, venue.lat]}
    lat, lon = form["lat"].replace(",", ".").strip(), form["lon"].replace(",", ".").strip()
    if lat or lon:
        try:
            lat_f, lon_f = float(lat), float(lon)
        except ValueError:
            raise Refused(t("Give a latitude and a longitude in degrees.")) from None
        if not (-90 <= lat_f <= 90 and -180 <= lon_f <= 180):
            raise Refused(t("Give a latitude and a longitude in degrees."))
        if (f"{lat_f:.5f}", f"{lon_f:.5f}") == _point_text(current):
            return ...  # as shown (five decimals): unchanged
        return {"type": "Point", "coordinates": [lon_f, lat_f]}
    if current and current.get("type") == "Point":
        return None  # the coordinates were emptied: no place any more
    return ...


def _update(form: dict[str, str], e: Any, t: Any) -> EntryUpdate:
    """What changed, as the API's correction (fields left as they were are not sent)."""
    changes: dict[str, Any] = {"title": form["title"], "body": form["body"].replace("\r\n", "\n")}
    if form["category"] and form["category"] != e.category:
        changes["category"] = form["category"]
    tags = sorted({x.strip().lower() for x in form["tags"].split(",") if x.strip()})
    if len(tags) > MAX_TAGS:
        raise Refused(t("At most %(n)s tags.", n=MAX_TAGS))
    if tags != sorted(e.tags):
        changes["tags"] = tags
    location = _location(form, e.location, t)
    if location is not ...:
        changes["location"] = location
    try:
        return EntryUpdate(**changes)
    except ValidationError:
        raise Refused(
            t(
                "Give a title (at most 200 characters), a text of at most 20,000 characters "
                "and tags of at most 40 characters."
            )
        ) from None


def _form_context(
    settings: Any, context: dict[str, Any], values: dict[str, str], edit_etag: str
) -> dict[str, Any]:
    context.update(
        editing=True,
        edit=values,
        edit_etag=edit_etag,
        categories=[(c, CATEGORY_NAMES.get(c, c)) for c in settings.categories],
        venues=VENUES,
    )
    return context


@router.get("/entrees/{entry_id}/corriger", response_class=HTMLResponse)
async def edit_form(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer, entry_id: uuid.UUID
) -> Response:
    """The correction form, filled with the version shown (its ETag goes with it)."""
    context = await entry_context(request, session, settings, actor, entry_id)
    if not context["can_edit"]:
        raise Forbidden(
            "Seuls l'organisation auteure et les chefs de salle corrigent une entrée.",
            "Only the owner organisation and watch officers correct an entry.",
        )
    values = _fields(context["e"])
    return render(request, "entry.html", _form_context(settings, context, values, context["etag"]))


@router.post("/entrees/{entry_id}/corriger", response_class=HTMLResponse)
async def edit_entry(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    entry_id: uuid.UUID,
    title: Annotated[str, Form(max_length=2000)] = "",
    body: Annotated[str, Form(max_length=100_000)] = "",
    category: Annotated[str | None, Form(max_length=40)] = None,
    severity: Annotated[str | None, Form(max_length=20)] = None,
    tags: Annotated[str | None, Form(max_length=2000)] = None,
    lat: Annotated[str | None, Form(max_length=40)] = None,
    lon: Annotated[str | None, Form(max_length=40)] = None,
    place: Annotated[str, Form(max_length=200)] = "",
    etag_sent: Annotated[str, Form(alias="etag", max_length=100)] = "",
) -> Response:
    """A correction: one new version of what changed; a new severity (watch officers) is
    their qualification, a version of its own, in the same transaction. Fields the form did
    not send are left as they are."""
    t = translator(request).gettext
    shown = await entries.get_entry(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    now = _fields(shown)
    sent = await request.form()  # which fields came (an emptied one arrives as None above)
    lat_lon_sent = "lat" in sent or "lon" in sent
    form: dict[str, str] = {
        "title": title,
        "body": body,
        "category": category if category is not None else shown.category,
        "severity": severity or shown.severity,
        "tags": (tags or "") if "tags" in sent else now["tags"],
        "lat": (lat or "") if lat_lon_sent else now["lat"],
        "lon": (lon or "") if lat_lon_sent else now["lon"],
        "place": place,
    }
    error: str | None = None
    status = 422
    try:
        data = _update(form, shown, t)
        chosen = Severity(form["severity"])
    except Refused as refused:
        error = refused.message
    except ValueError:
        error = t("Choose a severity from the list.")
    if error is None:
        try:
            async with session.begin_nested():
                entry = await entries.update_entry(
                    session=session, settings=settings, actor=actor, entry_id=entry_id,
                    data=data, if_match=etag_sent or None,
                )  # fmt: skip
                if chosen.value != entry.severity:
                    await triage.set_severity(
                        session=session, settings=settings, actor=actor, entry_id=entry_id,
                        severity=chosen, if_match=etag(entry),
                    )  # fmt: skip
        except AppError as failure:
            if failure.status == 404:
                raise
            error, status = edit_message(request, failure), failure.status
    if error is None:
        return RedirectResponse(f"/entrees/{entry_id}#historique", status_code=303)
    context = await entry_context(request, session, settings, actor, entry_id)
    if not context["can_edit"]:
        raise Forbidden(
            "Seuls l'organisation auteure et les chefs de salle corrigent une entrée.",
            "Only the owner organisation and watch officers correct an entry.",
        )
    # after a conflict the form carries the current version: saving again is a choice made
    # with the other person's change in view
    context = _form_context(
        settings, context, form, context["etag"] if status == 412 else etag_sent
    )
    context.update(edit_error=error, edit_conflict=status == 412)
    return render(request, "entry.html", context, status_code=status)
