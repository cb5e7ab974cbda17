"""The French catalogue: complete, without leftovers, placeholders intact; the translator's rules.

When a test here fails after a change of messages, run ``python -m hypervision.web.catalogue``
and translate what it lists in ``src/hypervision/locale/fr/LC_MESSAGES/messages.po``."""

from __future__ import annotations

import re

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from hypervision.core.i18n import DEFAULT_LOCALE, Translator, pick_locale
from hypervision.web.catalogue import PLURAL_FORMS, PO_FILE, extract

PLACEHOLDER = re.compile(r"%\((\w+)\)[a-z]")
Key = str | tuple[str, ...]


def key(message: Message) -> Key:
    return message.id if isinstance(message.id, str) else tuple(message.id)


def forms(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v or "") for v in value)
    return ("",)


@pytest.fixture(scope="module")
def extracted() -> dict[Key, Message]:
    return {key(m): m for m in extract() if m.id}


@pytest.fixture(scope="module")
def po() -> Catalog:
    with PO_FILE.open("rb") as handle:
        return read_po(handle, locale=DEFAULT_LOCALE)


@pytest.fixture(scope="module")
def stored(po: Catalog) -> dict[Key, Message]:
    return {key(m): m for m in po if m.id}


def test_extraction_finds_code_markers_and_templates(extracted: dict[Key, Message]) -> None:
    assert "Enter your username and password." in extracted  # translator(request).gettext
    assert "Unknown place: pick one from the list or click on the map." in extracted  # t()
    assert "Road traffic" in extracted  # N_()
    assert "New entry" in extracted  # templates, _()
    assert ("%(num)s result", "%(num)s results") in extracted  # templates, ngettext()


def test_every_message_has_a_french_translation(
    extracted: dict[Key, Message], stored: dict[Key, Message], po: Catalog
) -> None:
    missing = []
    for ident in extracted:
        found = stored.get(ident)
        strings = forms(found.string) if found else ()
        expected = po.num_plurals if isinstance(ident, tuple) else 1
        if found is None or found.fuzzy or len(strings) != expected or not all(strings):
            missing.append(ident)
    assert not missing, (
        f"{len(missing)} message(s) without a checked French translation: run "
        "`python -m hypervision.web.catalogue` and translate them in "
        f"{PO_FILE}:\n" + "\n".join(repr(m) for m in missing)
    )


def test_no_obsolete_entries(
    extracted: dict[Key, Message], stored: dict[Key, Message], po: Catalog
) -> None:
    stale = [ident for ident in stored if ident not in extracted]
    assert not stale, "no longer in the code (run `python -m hypervision.web.catalogue`):\n" + (
        "\n".join(repr(s) for s in stale)
    )
    assert not po.obsolete, f"obsolete (#~) entries left: {list(po.obsolete)}"


def test_placeholders_are_kept(stored: dict[Key, Message]) -> None:
    wrong = []
    for ident, message in stored.items():
        ids = (ident,) if isinstance(ident, str) else ident
        for index, text in enumerate(forms(message.string)):
            source = ids[min(index, len(ids) - 1)]
            names = set(PLACEHOLDER.findall(source))
            if set(PLACEHOLDER.findall(text)) != names:
                wrong.append((source, text))
            elif names:  # the translation formats as the code will format it
                try:
                    text % dict.fromkeys(names | {"num"}, "x")
                except (KeyError, ValueError, TypeError):
                    wrong.append((source, text))
    assert not wrong, "placeholders differ:\n" + "\n".join(f"{s!r} → {t!r}" for s, t in wrong)


def test_plural_rule_matches_the_translator(po: Catalog) -> None:
    assert po.plural_forms == PLURAL_FORMS  # two forms, 0 and 1 singular


def test_french_and_english() -> None:
    french, english = Translator("fr"), Translator("en")
    assert french.gettext("New entry") == "Nouvelle entrée"
    assert english.gettext("New entry") == "New entry"
    assert french.gettext("Version %(v)s", v=3) == "Version 3"
    assert english.gettext("Version %(v)s", v=3) == "Version 3"
    assert french.gettext("A message nobody wrote") == "A message nobody wrote"
    assert Translator("de").locale == "fr"


@pytest.mark.parametrize(
    ("locale", "n", "expected"),
    [
        ("fr", 0, "0 résultat"),
        ("fr", 1, "1 résultat"),
        ("fr", 2, "2 résultats"),
        ("en", 0, "0 results"),
        ("en", 1, "1 result"),
        ("en", 2, "2 results"),
    ],
)
def test_plurals(locale: str, n: int, expected: str) -> None:
    assert Translator(locale).ngettext("%(num)s result", "%(num)s results", n) == expected


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        ((), "fr"),
        ((None, None), "fr"),
        (("en",), "en"),
        (("EN-gb",), "en"),
        (("fr", "en"), "fr"),
        ((None, "en"), "en"),
        (("", "en"), "en"),
        (("de", "en"), "en"),
        (("de",), "fr"),
    ],
)
def test_pick_locale(candidates: tuple[str | None, ...], expected: str) -> None:
    assert pick_locale(*candidates) == expected
