"""Translation catalogue. Messages are written in English in the code and templates; the French
catalogue (``hypervision/locale/fr/LC_MESSAGES/messages.po``, read at start-up) is what users
see first. English is the fallback (the message ids themselves). Shared by the web pages and
the syntheses' PDFs, with the names of categories, severities and statuses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
LOCALE_COOKIE = "hv_lang"
CATALOGUES = Path(__file__).parent.parent / "locale"


@cache
def catalogue(locale: str) -> Mapping[str | tuple[str, str], tuple[str, ...]]:
    """msgid (or (singular, plural)) → translations, empty ones left out."""
    path = CATALOGUES / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        po = read_po(handle, locale=locale)
    table: dict[str | tuple[str, str], tuple[str, ...]] = {}
    for message in po:
        if not message.id or message.fuzzy:
            continue
        raw = message.string
        strings = tuple(str(s or "") for s in (raw if isinstance(raw, list | tuple) else [raw]))
        if all(strings):
            ident = message.id
            key: str | tuple[str, str] = (
                ident if isinstance(ident, str) else (str(ident[0]), str(ident[1]))
            )
            table[key] = strings
    return table


class Translator:
    """``gettext``/``ngettext`` for one locale, in the Jinja2 "newstyle" convention: keyword
    arguments are interpolated (``_("%(n)s entries", n=3)``) after translation."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else DEFAULT_LOCALE
        self._table = catalogue(self.locale)

    def gettext(self, message: str, /, **values: Any) -> str:
        found = self._table.get(message)
        text = found[0] if found else message
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, /, **values: Any) -> str:
        found = self._table.get((singular, plural))
        if found and len(found) >= 2:
            text = found[0] if self._singular(n) else found[1]
        else:
            text = singular if n == 1 else plural
        return text % {"num": n, **values}

    def _singular(self, n: int) -> bool:
        return n <= 1 if self.locale == "fr" else n == 1  # French: 0 and 1 are singular

    def callables(self) -> dict[str, Callable[..., str]]:
        return {"_": self.gettext, "gettext": self.gettext, "ngettext": self.ngettext}


def pick_locale(*candidates: str | None) -> str:
    """The first supported locale among the candidates (user preference, cookie), else French."""
    for candidate in candidates:
        if candidate and candidate[:2].lower() in LOCALES:
            return candidate[:2].lower()
    return DEFAULT_LOCALE


def N_(message: str) -> str:
    """Mark a message for the catalogue; translated where it is displayed."""
    return message


CATEGORY_NAMES = {
    "security": N_("Security"),
    "public_order": N_("Public order"),
    "rescue": N_("Rescue"),
    "health": N_("Health"),
    "transport": N_("Transport"),
    "traffic": N_("Road traffic"),
    "environment": N_("Environment"),
    "weather": N_("Weather"),
    "logistics": N_("Logistics"),
    "cyber": N_("Cyber"),
    "communication": N_("Communication"),
}
SEVERITY_NAMES = {
    "info": N_("Information"),
    "minor": N_("Minor"),
    "major": N_("Major"),
    "critical": N_("Critical"),
}
STATUS_NAMES = {"open": N_("Open"), "in_progress": N_("In progress"), "closed": N_("Closed")}
PERIODS = {
    "1h": (1, N_("Last hour")),
    "6h": (6, N_("Last 6 hours")),
    "24h": (24, N_("Last 24 hours")),
    "72h": (72, N_("Last 3 days")),
}
ACTION_NAMES = {
    "create": N_("Created"),
    "update": N_("Corrected"),
    "validate": N_("Validated"),
    "severity": N_("Severity qualified"),
    "duplicate": N_("Marked as duplicate"),
    "situation": N_("Linked to a situation"),
    "label": N_("Protection changed"),
}
FIELD_NAMES = {
    "title": N_("Title"),
    "body": N_("Description"),
    "category": N_("Category"),
    "severity": N_("Severity"),
    "status": N_("Status"),
    "occurred_at": N_("Occurred at"),
    "location": N_("Location"),
    "tags": N_("Tags"),
    "situation_id": N_("Situation"),
    "duplicate_of_id": N_("Duplicate of"),
    "follow_up_of_id": N_("Follow-up of"),
    "validated_at": N_("Validated at"),
    "validated_by": N_("Validated by"),
    "label_level": N_("Protection level"),
    "need_to_know": N_("Need to know"),
    "audience": N_("Audience"),
    "organisation_id": N_("Organisation"),
}
