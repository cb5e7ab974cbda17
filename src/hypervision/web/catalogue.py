"""The translation catalogue's upkeep: extract the English message ids from the web app's Python
code and templates with Babel, and merge them into the French catalogue, keeping translations.

``python -m hypervision.web.catalogue`` refreshes ``locale/fr/LC_MESSAGES/messages.po`` and says
how many messages still need a French translation (``tests/web/test_i18n.py`` then fails, listing
them, until they are translated)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po, write_po

from hypervision.core.i18n import CATALOGUES, DEFAULT_LOCALE

WEB = Path(__file__).parent
# Outside the web package, also read for messages: the shared names (categories, severities...).
SHARED = (WEB.parent / "core" / "i18n.py",)
PO_FILE = CATALOGUES / DEFAULT_LOCALE / "LC_MESSAGES" / "messages.po"
# Two forms, 0 and 1 singular: what ``Translator.ngettext`` picks from (not CLDR's third form).
PLURAL_FORMS = "nplurals=2; plural=(n > 1);"
HEADER = """\
# French messages of the Hypervision web app (the ids are in English).
# Refresh after changing messages: python -m hypervision.web.catalogue
# Distributed under the same license as the Hypervision project."""

# Python: translator(request).gettext(...), the local ``t = ...gettext`` alias, N_() markers.
KEYWORDS: dict[str, Any] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "N_": None,
    "t": None,
}
# Relative to this package: its modules (not subpackages) and every template.
METHODS: list[tuple[str, str]] = [
    ("*.py", "python"),
    ("templates/**.html", "jinja2.ext:babel_extract"),
]
OPTIONS: dict[str, dict[str, Any]] = {
    "templates/**.html": {
        "extensions": "jinja2.ext.i18n",
        "newstyle_gettext": "true",
        "trim_blocks": "true",
        "lstrip_blocks": "true",
        "silent": "false",  # a template Jinja2 cannot parse is an error, not an empty result
    },
}


def extract(directory: Path = WEB) -> Catalog:
    """Every message id of the web app, with where it is used (the template catalogue)."""
    template = Catalog(project="Hypervision", fuzzy=False)
    found = extract_from_dir(
        directory, METHODS, OPTIONS, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
    )
    shared = [
        (path.relative_to(directory.parent).as_posix(), *message)
        for path in SHARED
        if directory == WEB
        for message in extract_from_file(
            "python", path, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
        )
    ]
    for filename, lineno, message, comments, context in [*found, *shared]:
        template.add(
            message,
            None,
            [(Path(filename).as_posix(), lineno)],
            auto_comments=comments,
            context=context,
        )
    return template


def read(path: Path = PO_FILE) -> Catalog:
    """The French catalogue as stored (an empty one if there is none yet)."""
    if path.exists():
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=DEFAULT_LOCALE)
    else:
        catalog = Catalog(
            locale=DEFAULT_LOCALE,
            domain="messages",
            header_comment=HEADER,
            project="Hypervision",
            language_team="French",
            fuzzy=False,
        )
        catalog.revision_date = catalog.creation_date
    catalog.mime_headers = [("Plural-Forms", PLURAL_FORMS)]
    return catalog


def write(catalog: Catalog, path: Path = PO_FILE) -> None:
    """Sorted, without line numbers nor obsolete entries: small, stable diffs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(
            handle,
            catalog,
            omit_header=False,
            sort_output=True,
            include_lineno=False,
            ignore_obsolete=True,
        )


def untranslated(catalog: Catalog) -> list[Message]:
    """Messages without a complete French translation, or only a fuzzy (unchecked) one."""
    return [m for m in catalog if m.id and (m.fuzzy or not _complete(m.string))]


def _complete(string: object) -> bool:
    if isinstance(string, str):
        return bool(string)
    return isinstance(string, list | tuple) and bool(string) and all(string)


def update(path: Path = PO_FILE) -> Catalog:
    """Merge the extracted ids into the French catalogue and write it. Existing translations
    are kept; a new id close to a removed one gets its translation marked fuzzy to review."""
    catalog = read(path)
    catalog.update(extract(), update_creation_date=False)
    write(catalog, path)
    return catalog


def main() -> int:
    catalog = update()
    missing = untranslated(catalog)
    total = sum(1 for m in catalog if m.id)
    sys.stdout.write(f"{PO_FILE}: {total} messages, {len(missing)} untranslated or fuzzy\n")
    for message in missing:
        sys.stdout.write(f"  {message.id!r}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
