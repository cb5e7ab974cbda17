"""Folding, words, stems, safe FTS5 expressions and highlighted snippets (no database)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypervision.core.text import (
    fold,
    fts_match,
    highlight,
    query_terms,
    stem,
    stems,
    tokens,
)
from hypervision.search import service


def test_fold_lowercases_and_strips_accents() -> None:
    assert fold("Sécurité ÉVACUÉE") == "securite evacuee"
    assert fold("Œuvre Ærienne straße") == "oeuvre aerienne strasse"
    assert fold("ﬁchier") == "fichier"
    assert fold("e\u0301te\u0301") == "ete"


def test_tokens_split_on_punctuation_and_apostrophes() -> None:
    assert tokens("L'évacuation, porte-parole : 12e arr.") == [
        "L",
        "évacuation",
        "porte",
        "parole",
        "12e",
        "arr",
    ]
    assert tokens("e\u0301vacue\u0301") == ["évacué"]  # decomposed accents stay in the word
    assert tokens('"*NEAR(-)" _') == ["NEAR"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("manifestations", "manifestation"),
        ("évacuation", "évacuer"),
        ("évacués", "évacuation"),
        ("Sécurité", "securite"),
        ("INONDATIONS", "inondé"),
    ],
)
def test_stems_agree(a: str, b: str) -> None:
    assert stem(a) == stem(b) != ""


def test_stop_words_are_dropped_like_hv_french() -> None:
    assert stems("le colis de la gare") == ["colis", "gar"]
    # unaccent runs before the stop-word check in hv_french: accented stop words stay
    assert stem("été") == "ete"
    # "les" is not in PostgreSQL's list: stemmed, it is kept (as on PostgreSQL)
    assert query_terms("les les colis Colis") == ["le", "colis"]


def test_query_terms_are_distinct_and_ordered() -> None:
    assert query_terms("Incendie incendies feu") == ["incend", "feu"]
    assert query_terms('"*" ( ) - ...') == []


@pytest.mark.parametrize(
    "query",
    ['"', "*", "NEAR(", "OR", "-", "( )", "a:b", "^x", "x AND NOT y", 'a" OR "b'],
)
def test_fts_expression_quotes_every_term(query: str) -> None:
    expression = fts_match(query_terms(query))
    for part in expression.split(" ") if expression else []:
        assert part.startswith('"') and part.endswith('"')
        assert '"' not in part[1:-1]
    assert fts_match(['a"b']) == '"a""b"'


def test_highlight_marks_stems_and_escapes_everything_else() -> None:
    html = highlight(
        "<script>alert(1)</script> Un incendie & des Incendies, sécurité",
        query_terms("incendie securite"),
    )
    assert html == (
        "&lt;script&gt;alert(1)&lt;/script&gt; Un <mark>incendie</mark> &amp; des "
        "<mark>Incendies</mark>, <mark>sécurité</mark>"
    )
    assert "<script" not in html


def test_highlight_windows_long_text_around_first_match() -> None:
    before = " ".join(f"avant{i}" for i in range(100))
    after = " ".join(f"apres{i}" for i in range(100))
    html = highlight(f"{before} incendie {after}", ["incend"])
    assert html.startswith("… avant90 ")
    assert html.endswith(" apres18 …")
    assert "<mark>incendie</mark>" in html
    assert len(html.split()) == 30 + 2  # thirty words and two ellipses

    start = highlight(f"incendie {after}", ["incend"])
    assert start.startswith("<mark>incendie</mark> apres0") and start.endswith(" …")
    end = highlight(f"{before} incendie", ["incend"])
    assert end.startswith("… avant71 ") and end.endswith("<mark>incendie</mark>")


def test_highlight_without_match_keeps_the_beginning() -> None:
    assert highlight("Rien <b>ici</b>", ["incend"]) == "Rien &lt;b&gt;ici&lt;/b&gt;"
    assert highlight("", ["incend"]) == ""
    assert highlight("a\n\n  b", []) == "a b"


def test_clean_removes_control_characters() -> None:
    assert service.clean("a\x00b\u200bc\td") == "a b c d"


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE VIRTUAL TABLE search_fts USING fts5(doc_id UNINDEXED, entry_id UNINDEXED, "
        "kind UNINDEXED, title, body, tokenize = 'unicode61 remove_diacritics 2')"
    )
    connection.execute(
        "INSERT INTO search_fts VALUES ('1', '1', 'entry', ?, ?)",
        (" ".join(stems("Évacuation du stade")), " ".join(stems("Tribunes vidées, NEAR(x)"))),
    )
    yield connection
    connection.close()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_query_is_a_valid_fts5_expression(fts: sqlite3.Connection, query: str) -> None:
    expression = fts_match(query_terms(query))
    if expression:
        fts.execute("SELECT rowid FROM search_fts WHERE search_fts MATCH ?", (expression,))


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("évacuer", True),
        ("STADE tribune", True),
        ("near", True),
        ("near stade x", True),
        ("stade pompiers", False),
    ],
)
def test_fts_expression_finds_folded_stems(
    fts: sqlite3.Connection, query: str, found: bool
) -> None:
    rows = fts.execute(
        "SELECT rowid FROM search_fts WHERE search_fts MATCH ?", (fts_match(query_terms(query)),)
    ).fetchall()
    assert bool(rows) is found
