"""One entry: content, map, attachments, live comments, history with a readable diff, triage
actions for watch officers, corrections and status changes (each a new version, with the same
policy and version check as the API's PATCH), and following its category or situation."""

from __future__ import annotations

import difflib
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import AppError, Invalid
from hypervision.core.i18n import (
    ACTION_NAMES,
    CATEGORY_NAMES,
    FIELD_NAMES,
    SEVERITY_NAMES,
    STATUS_NAMES,
)
from hypervision.follows import service as prefs
from hypervision.follows.models import FollowKind
from hypervision.geo.zones import find_zone
from hypervision.identity.principal import Principal
from hypervision.logbook import attachments, comments, entries, present, triage
from hypervision.logbook.models import Severity, Status
from hypervision.logbook.query import EntryQuery
from hypervision.logbook.schemas import CommentCreate, EntryUpdate
from hypervision.logbook.situations import find_situation
from hypervision.policy.rules import Action, allowed
from hypervision.records.etags import PreconditionFailed, etag
from hypervision.records.labelling import Directory
from hypervision.records.models import RecordVersion
from hypervision.web.choices import display_names, situation_titles
from hypervision.web.render import chrome_of, render, shows, translator, when
from hypervision.web.session import Officer, referer_path, safe_next

router = APIRouter(include_in_schema=False)
TEXT_FIELDS = frozenset({"title", "body"})


def word_diff(before: str, after: str) -> Markup:
    """Words removed in <del>, words added in <ins>, everything escaped."""
    old, new = before.split(" "), after.split(" ")
    parts: list[str] = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, old, new).get_opcodes():
        if op == "equal":
            parts.append(str(escape(" ".join(old[a1:a2]))))
            continue
        if a2 > a1:
            parts.append(f"<del>{escape(' '.join(old[a1:a2]))}</del>")
        if b2 > b1:
            parts.append(f"<ins>{escape(' '.join(new[b1:b2]))}</ins>")
    return Markup(" ".join(parts))  # noqa: S704 - every piece above is escaped


def _display(name: str, value: Any, lookups: dict[str, dict[str, str]], t: Any, locale: str) -> str:
    if value is None or value == [] or value == "":
        return "—"
    if name == "category":
        return str(t(CATEGORY_NAMES.get(value, value)))
    if name == "severity":
        return str(t(SEVERITY_NAMES.get(value, value)))
    if name == "status":
        return str(t(STATUS_NAMES.get(value, value)))
    if name in ("situation_id", "organisation_id", "validated_by"):
        return lookups.get(name, {}).get(str(value), str(value)[:8])
    if name in ("occurred_at", "validated_at"):
        try:
            return when(datetime.fromisoformat(value), locale)
        except (TypeError, ValueError):
            return str(value)
    if name == "location" and isinstance(value, dict):
        coords = value.get("coordinates")
        if value.get("type") == "Point" and isinstance(coords, list) and len(coords) == 2:
            return f"{coords[1]:.5f}, {coords[0]:.5f}"
        return str(value.get("type", "?"))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def readable_history(
    versions: list[RecordVersion],
    names: Directory,
    lookups: dict[str, dict[str, str]],
    t: Any,
    locale: str,
) -> list[dict[str, Any]]:
    """Newest first: who, when, what, and for each changed field its before/after (links to
    records the reader may not see shown as none)."""
    out = []
    for version in sorted(versions, key=lambda v: v.version, reverse=True):
        changes = []
        for name, change in sorted(present.redact_references(version.changes, names).items()):
            before, after = change.get("from"), change.get("to")
            item: dict[str, Any] = {"field": t(FIELD_NAMES.get(name, name))}
            if name in TEXT_FIELDS and isinstance(before, str) and isinstance(after, str):
                item["diff"] = word_diff(before, after)
            else:
                item["before"] = _display(name, before, lookups, t, locale)
                item["after"] = _display(name, after, lookups, t, locale)
            changes.append(item)
        actor = lookups.get("validated_by", {}).get(str(version.actor_id), "")
        out.append({"version": version, "actor": actor, "changes": changes})
    return out


async def entry_context(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
) -> dict[str, Any]:
    """Everything the entry page shows, read through the services (policy + audit)."""
    t = translator(request).gettext
    entry = await entries.get_entry(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    versions = await triage.entry_versions(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    comment_rows = await comments.list_comments(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    files = await attachments.list_attachments(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    shows(request, [entry.label_level, *(c.label_level for c in comment_rows)])
    shows(request, [v.label_level for v in versions])
    read = (await present.entries_read(session, [entry], settings=settings, actor=actor))[0]
    names = await present.directory_for(
        session, [*versions, *comment_rows], settings=settings, actor=actor
    )
    situations = await situation_titles(request, session, settings, actor)
    lookups = {
        "situation_id": situations,
        "organisation_id": {str(k): v for k, v in names.orgs.items()},
        "validated_by": {str(k): names.full_name(k) or v for k, v in names.users.items()},
    }
    assert actor.user_id is not None
    chrome = chrome_of(request)  # the frame has read the officer's follows: not again
    if chrome.follows_read:
        followed = {(FollowKind.CATEGORY.value, c) for c in chrome.follow_categories}
        followed |= {(FollowKind.SITUATION.value, s) for s in chrome.follow_situations}
        followed |= {(FollowKind.ENTRY.value, s) for s in chrome.follow_entries}
    else:
        followed = {(f.kind, f.target) for f in await prefs.follows(session, actor.user_id)}
    can_triage = allowed(actor, Action.TRIAGE)
    return {
        "e": read,
        "duplicate_choices": await _duplicate_choices(request, session, settings, actor, entry_id)
        if can_triage
        else [],
        "comments": [present.comment_read(c, names) for c in comment_rows],
        "files": files,
        "history": readable_history(versions, names, lookups, t, translator(request).locale),
        "situation_title": situations.get(str(read.situation_id)) if read.situation_id else None,
        "situations": situations,
        "can_triage": can_triage,
        "can_write": allowed(actor, Action.WRITE),
        "can_edit": entries.may_edit(actor, entry),
        "statuses": STATUS_NAMES,
        "follows_category": (FollowKind.CATEGORY.value, entry.category) in followed,
        "follows_situation": (FollowKind.SITUATION.value, str(read.situation_id)) in followed,
        "follows_entry": (FollowKind.ENTRY.value, str(entry.id)) in followed,
        "etag": etag(entry),
        "names": display_names(),
        "severities": SEVERITY_NAMES,
        "action_names": ACTION_NAMES,
    }


DUPLICATE_CHOICES = 20


async def _duplicate_choices(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
) -> list[Any]:
    """The most recent entries the watch officer sees, to pick the one this entry repeats
    (instead of pasting an identifier)."""
    recent, _ = await entries.list_entries(
        session=session,
        settings=settings,
        actor=actor,
        filters=EntryQuery(),
        cursor=None,
        limit=DUPLICATE_CHOICES + 1,
    )
    chosen = [e for e in recent if e.id != entry_id][:DUPLICATE_CHOICES]
    shows(request, [e.label_level for e in chosen])
    return chosen


@router.get("/entrees/{entry_id}", response_class=HTMLResponse)
async def entry_page(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer, entry_id: uuid.UUID
) -> Response:
    context = await entry_context(request, session, settings, actor, entry_id)
    return render(request, "entry.html", context)


@router.get("/entrees/{entry_id}/panneau", response_class=HTMLResponse)
async def entry_panel(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer, entry_id: uuid.UUID
) -> Response:
    """The entry's page as a panel beside the feed (loaded by HTMX)."""
    context = await entry_context(request, session, settings, actor, entry_id)
    return render(request, "_entry_detail.html", {**context, "panel": True})


@router.get("/entrees/{entry_id}/commentaires", response_class=HTMLResponse)
async def comment_list(
    request: Request, session: DbSession, settings: SettingsDep, actor: Officer, entry_id: uuid.UUID
) -> Response:
    """The comments block, refreshed live when a comment arrives."""
    rows = await comments.list_comments(
        session=session, settings=settings, actor=actor, entry_id=entry_id
    )
    shows(request, [c.label_level for c in rows])
    names = await present.directory_for(session, rows, settings=settings, actor=actor)
    context = {"comments": [present.comment_read(c, names) for c in rows], "entry_id": entry_id}
    return render(request, "_comments.html", context)


def _back(request: Request, entry_id: uuid.UUID, anchor: str = "") -> Response:
    """Back to where the form was: the feed's panel or the entry page."""
    target = f"/entrees/{entry_id}"
    if referer_path(request).startswith("/main-courante"):
        target = f"/main-courante?entree={entry_id}"
    return RedirectResponse(target + anchor, status_code=303)


@router.post("/entrees/{entry_id}/commentaires", response_class=HTMLResponse)
async def add_comment(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    entry_id: uuid.UUID,
    body: Annotated[str, Form(max_length=6000)] = "",
) -> Response:
    try:
        data = CommentCreate(body=body)
        async with session.begin_nested():
            await comments.add_comment(
                session=session, settings=settings, actor=actor, entry_id=entry_id, data=data
            )
    except (ValidationError, Invalid):
        context = await entry_context(request, session, settings, actor, entry_id)
        context["comment_error"] = translator(request).gettext(
            "Write a comment (at most 5,000 characters)."
        )
        context["comment_body"] = body
        return render(request, "entry.html", context, status_code=422)
    return _back(request, entry_id, "#commentaires")


@router.post("/entrees/{entry_id}/triage", response_class=HTMLResponse)
async def triage_entry(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    entry_id: uuid.UUID,
    action: Annotated[str, Form(max_length=20)] = "",
    etag: Annotated[str, Form(max_length=100)] = "",
    severity: Annotated[str, Form(max_length=20)] = "",
    duplicate_of: Annotated[str, Form(max_length=200)] = "",
    situation: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Validate, qualify severity, mark as duplicate, link to a situation. The form carries
    the version it was shown with: a change made meanwhile is not overwritten."""
    if_match = etag or None
    try:
        async with session.begin_nested():
            if action == "validate":
                await triage.validate(
                    session=session, settings=settings, actor=actor, entry_id=entry_id,
                    if_match=if_match,
                )  # fmt: skip
            elif action == "severity":
                await triage.set_severity(
                    session=session, settings=settings, actor=actor, entry_id=entry_id,
                    severity=Severity(severity), if_match=if_match,
                )  # fmt: skip
            elif action == "duplicate":
                target = duplicate_of.strip().rstrip("/").rsplit("/", 1)[-1].split("=")[-1]
                await triage.mark_duplicate(
                    session=session, settings=settings, actor=actor, entry_id=entry_id,
                    duplicate_of=uuid.UUID(target), if_match=if_match,
                )  # fmt: skip
            elif action == "situation":
                await triage.link_situation(
                    session=session,
                    settings=settings,
                    actor=actor,
                    entry_id=entry_id,
                    situation_id=uuid.UUID(situation) if situation else None,
                    if_match=if_match,
                )
            else:
                raise Invalid("Action inconnue.", "Unknown action.")
    except ValueError:
        return await _entry_error(
            request, session, settings, actor, entry_id, "triage_error",
            translator(request).gettext("Choose the entry this one repeats."),
        )  # fmt: skip
    except AppError as error:
        if error.status == 404 and action != "duplicate":
            raise
        message = error.en if translator(request).locale == "en" else error.fr
        return await _entry_error(
            request, session, settings, actor, entry_id, "triage_error", message, error.status
        )
    return _back(request, entry_id)


def edit_message(request: Request, error: AppError) -> str:
    """The French (or English) message of a refused correction; a conflict says what to do."""
    t = translator(request).gettext
    if isinstance(error, PreconditionFailed):
        return t(
            "Someone changed this entry while you were correcting it. Your text is kept below: "
            "read the current version, then save again."
        )
    return error.en if translator(request).locale == "en" else error.fr


@router.post("/entrees/{entry_id}/statut", response_class=HTMLResponse)
async def set_status(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    entry_id: uuid.UUID,
    status: Annotated[str, Form(max_length=20)] = "",
    etag: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Open, in progress, closed: a new version, same policy and version check as a correction."""
    t = translator(request).gettext
    try:
        chosen = Status(status)
    except ValueError:
        return await _entry_error(
            request,
            session,
            settings,
            actor,
            entry_id,
            "status_error",
            t("Choose a status from the list."),
        )
    try:
        async with session.begin_nested():
            await entries.update_entry(
                session=session, settings=settings, actor=actor, entry_id=entry_id,
                data=EntryUpdate(status=chosen), if_match=etag or None,
            )  # fmt: skip
    except AppError as failure:
        if failure.status in (403, 404):
            raise
        message = edit_message(request, failure)
        if isinstance(failure, PreconditionFailed):
            message = t(
                "Someone changed this entry in the meantime: check it, "
                "then change the status again."
            )
        return await _entry_error(
            request, session, settings, actor, entry_id, "status_error", message, failure.status
        )
    return _back(request, entry_id)


async def _entry_error(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    entry_id: uuid.UUID,
    where: str,
    message: str,
    status: int = 422,
) -> Response:
    """The entry page again, with ``message`` shown at ``where`` (``status_error`` or
    ``triage_error``), answered with the refusal's status (422 at least)."""
    context = await entry_context(request, session, settings, actor, entry_id)
    context[where] = message
    return render(request, "entry.html", context, status_code=status if status >= 400 else 422)


@router.post("/suivis")
async def follow(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    actor: Officer,
    kind: Annotated[str, Form(max_length=16)] = "",
    target: Annotated[str, Form(max_length=64)] = "",
    stop: Annotated[str, Form(max_length=5)] = "",
    suite: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Follow (or stop following) a category, a situation, a zone or an entry the officer can
    see (stopping needs no visibility: an entry raised out of reach can still be dropped)."""
    try:
        chosen = FollowKind(kind)
    except ValueError:
        raise Invalid("Sujet inconnu.", "Unknown topic.") from None
    if chosen is FollowKind.CATEGORY and target not in settings.categories:
        raise Invalid("Catégorie inconnue.", "Unknown category.")
    if chosen is FollowKind.SITUATION:
        try:
            situation_id = uuid.UUID(target)
        except ValueError:
            raise Invalid("Situation inconnue.", "Unknown situation.") from None
        await find_situation(
            session=session, settings=settings, actor=actor, situation_id=situation_id
        )
        target = str(situation_id)
    if chosen is FollowKind.ZONE:
        try:
            zone_id = uuid.UUID(target)
        except ValueError:
            raise Invalid("Zone inconnue.", "Unknown zone.") from None
        await find_zone(session=session, settings=settings, actor=actor, zone_id=zone_id)
        target = str(zone_id)
    if chosen is FollowKind.ENTRY:
        try:
            entry_id = uuid.UUID(target)
        except ValueError:
            raise Invalid("Entrée inconnue.", "Unknown entry.") from None
        if not stop:
            await entries.get_entry(
                session=session, settings=settings, actor=actor, entry_id=entry_id
            )
        target = str(entry_id)
    if stop:
        await prefs.unfollow(session=session, actor=actor, kind=chosen, target=target)
    else:
        await prefs.follow(session=session, actor=actor, kind=chosen, target=target)
    return RedirectResponse(safe_next(suite) if suite else referer_path(request), 303)
