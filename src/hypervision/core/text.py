"""French text for search: accent folding, words, stems and highlighted snippets.

The same functions serve both engines: on SQLite they produce what is stored in (and asked
of) the FTS5 table; on both engines they find the words to highlight. They mirror the
PostgreSQL configuration ``hv_french`` (``unaccent`` then ``french_stem``): a word is folded
(lower case, accents removed), dropped if it is a stop word, then stemmed with the same
Snowball French algorithm.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import snowballstemmer  # type: ignore[import-untyped]

# Letters and digits; everything else (spaces, punctuation, apostrophes, hyphens) separates.
_WORD = re.compile(r"[^\W_]+")
_SPACES = re.compile(r"\s+")
# Letters NFKD does not decompose, as unaccent.rules folds them.
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "ł": "l", "đ": "d"})

# PostgreSQL's french.stop, keeping only the entries a folded word can equal: under
# hv_french, unaccent runs before the stop-word check, so "été" or "même" are not dropped.
_STOP_LIST = """
    au aux avec ce ces dans de des du elle en et eux il je la le leur lui ma mais me mes moi
    mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes toi ton
    tu un une vos votre vous c d j l m n s t y suis es est sommes sont serai seras sera
    serons serez seront serais serait serions seriez seraient fus fut furent sois soit
    soyons soyez soient fusse fusses fussions fussiez fussent ayant ayante ayantes ayants eu
    eue eues eus ai as avons avez ont aurai auras aura aurons aurez auront aurais aurait
    aurions auriez auraient avais avait avions aviez avaient eut eurent aie aies ait ayons
    ayez aient eusse eusses eussions eussiez eussent
"""
STOP_WORDS = frozenset(_STOP_LIST.split())

ELLIPSIS = "…"
SNIPPET_WORDS = 30


def fold(text: str) -> str:
    """Lower case without accents: "Sécurité" -> "securite"."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """The words of ``text``, as written (composed: "e" + U+0301 is one letter)."""
    return _WORD.findall(unicodedata.normalize("NFC", text))


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return snowballstemmer.stemmer("french")


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """The search form of one word: folded then stemmed; "" for a stop word."""
    folded = fold(word)
    if not folded or folded in STOP_WORDS:
        return ""
    result: str = _stemmer().stemWord(folded)
    return result


def stems(text: str) -> list[str]:
    """The search forms of the words of ``text``, in order, stop words left out."""
    return [s for s in (stem(w) for w in tokens(text)) if s]


def query_terms(text: str) -> list[str]:
    """The distinct search forms of a query, in order of first appearance."""
    return list(dict.fromkeys(stems(text)))


def fts_match(terms: Iterable[str]) -> str:
    """A safe FTS5 MATCH expression: every term a quoted string (quotes doubled), all
    required. Terms are made of letters and digits already; the quoting makes sure that no
    input can ever be read as FTS5 syntax (NEAR, OR, NOT, ``*``, ``^``, ``:``, brackets)."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms if term)


@dataclass(frozen=True)
class _Word:
    start: int
    end: int
    hit: bool


def _words(text: str, wanted: frozenset[str]) -> Iterator[_Word]:
    for match in _WORD.finditer(text):
        term = stem(match.group())
        yield _Word(match.start(), match.end(), bool(term) and term in wanted)


def highlight(text: str, terms: Iterable[str], *, words: int = SNIPPET_WORDS) -> str:
    """An HTML excerpt of ``text``: about ``words`` words around the first matched word,
    matched words wrapped in ``<mark>``, everything else escaped, "…" where text was cut."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()
    wanted = frozenset(terms)
    found = list(_words(text, wanted))
    if not found:
        return html.escape(text[:300]) + (ELLIPSIS if len(text) > 300 else "")
    first = next((i for i, w in enumerate(found) if w.hit), 0)
    start = max(0, min(first - words // 3, len(found) - words))
    end = min(len(found), start + words)
    begin = found[start].start if start > 0 else 0
    finish = found[end - 1].end if end < len(found) else len(text)
    parts: list[str] = [ELLIPSIS + " "] if start > 0 else []
    cursor = begin
    for word in found[start:end]:
        if word.hit:
            parts.append(html.escape(text[cursor : word.start]))
            parts.append("<mark>" + html.escape(text[word.start : word.end]) + "</mark>")
            cursor = word.end
    parts.append(html.escape(text[cursor:finish]))
    if end < len(found):
        parts.append(" " + ELLIPSIS)
    return "".join(parts)
