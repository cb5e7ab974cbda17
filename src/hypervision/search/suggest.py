""" "Did you mean": corrected words for a search that found little, from what the reader may see.

For each word of the query that no entry or comment visible to the reader contains, the
closest indexed words are ranked by trigram similarity of their search forms (pg_trgm's
measure: shared trigrams over all trigrams, words padded), then by edit distance, then by
frequency. The candidates come from

* SQLite: ``search_fts_vocab``, the ``fts5vocab`` view of the whole index (migration 0013);
* PostgreSQL: the lexemes of the reader's most recent visible entries and comments.

Whatever their source, a candidate is only ever suggested after a query through the policy
filter (the one of ``search.service``) found a document visible to the reader that holds it,
and the word shown is taken from that document: a word that appears only in records the reader
cannot see is never suggested. The suggestion is audited with the ids of the entries its words
were taken from (SECURITY.md 19).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sized
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core import text
from hypervision.identity.principal import Principal
from hypervision.logbook.models import Comment, Entry
from hypervision.policy.rules import Action, Subject, authorize, visible_filter
from hypervision.records.access import dialect_of, subject_of
from hypervision.search.service import clean, postgres_hits, sqlite_hits

FEW = 1  # fewer results than this: look for a correction (every word is required, so a
# misspelt word empties the results; with some results, every word is known already)
MIN_SIMILARITY = 0.3  # pg_trgm's default similarity threshold
CHECKED = 8  # best candidates checked against the policy, per word
MAX_WORDS = 6  # words of one query looked up (each costs a few queries)
VOCABULARY_DOCS = 2000  # PostgreSQL: recent visible entries (and comments) read for words
_WORD = re.compile(r"[^\W_]+")

# Created by the migration (SQLite only), not by ``Base.metadata``.
search_fts_vocab = Table(
    "search_fts_vocab",
    MetaData(),
    Column("term", Text),
    Column("doc", Integer),
    Column("cnt", Integer),
)


def trigrams(word: str) -> frozenset[str]:
    padded = f"  {word} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def similarity(a: str, b: str) -> float:
    """pg_trgm's ``similarity``: shared trigrams over the trigrams of either word."""
    ta, tb = trigrams(a), trigrams(b)
    return len(ta & tb) / len(ta | tb) if ta or tb else 0.0


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    two neighbouring letters ("frnace" is one edit from "france") each count one."""
    rows = [list(range(len(b) + 1))] + [[i] + [0] * len(b) for i in range(1, len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            best = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, rows[i - 2][j - 2] + 1)
            rows[i][j] = best
    return rows[-1][-1]


def _closeness(term: str, word: str, candidate: str) -> tuple[float, int] | None:
    """How close ``candidate`` (an indexed search form) is to the unknown ``term`` (the
    search form of the typed ``word``, folded): trigram similarity, raised when the word
    starts with the candidate ("evacuaton" and the stem "evacu" of "évacuation"), and a bonus
    for one edit (two for longer words), which trigrams measure badly on short words."""
    value = similarity(term, candidate)
    if len(candidate) >= 4 and word.startswith(candidate):
        value = max(value, len(candidate) / len(word))
    distance = edit_distance(term, candidate)
    near = distance <= (1 if len(term) <= 5 else 2)
    if value < MIN_SIMILARITY and not near:
        return None
    return value + (0.2 if near else 0.0), distance


def rank(term: str, candidates: dict[str, int], *, word: str = "") -> list[str]:
    """The candidates close enough to ``term``, best first: closeness (in steps of 0.1),
    then the number of documents holding them, then edit distance."""
    scored = []
    for candidate, count in candidates.items():
        found = _closeness(term, word or term, candidate) if candidate != term else None
        if found is not None:
            scored.append((round(found[0], 1), count, -found[1], candidate))
    scored.sort(reverse=True)
    return [candidate for *_, candidate in scored]


@dataclass(frozen=True)
class _Document:
    entry_id: uuid.UUID
    level: str
    text: str


async def _documents(
    session: AsyncSession, subject: Subject, term: str, *, limit: int
) -> list[_Document]:
    """Visible entries and comments holding the search form ``term`` (through the policy)."""
    if dialect_of(session) == "postgresql":
        # The term is a lexeme already: the 'simple' configuration keeps it as it is.
        quoted = "'" + term.replace("'", "''").replace("\\", "") + "'"
        tsquery = func.to_tsquery(literal("simple", postgresql.REGCONFIG), quoted)
        hits = postgres_hits(subject, tsquery).subquery()
    else:
        hits = sqlite_hits(subject, [term]).subquery()
    rows = await session.execute(
        select(
            Entry.id,
            Entry.label_level,
            Entry.title,
            Entry.body,
            hits.c.kind,
            hits.c.comment_body,
            hits.c.comment_level,
        )
        .join(hits, hits.c.entry_id == Entry.id)
        .limit(limit)
    )
    found = []
    for entry_id, level, title, body, kind, comment_body, comment_level in rows:
        if kind == "comment":
            found.append(_Document(entry_id, comment_level or level, comment_body or ""))
        else:
            found.append(_Document(entry_id, level, f"{title} {body or ''}"))
    return found


async def _vocabulary(session: AsyncSession, subject: Subject, term: str) -> dict[str, int]:
    """Indexed search forms of about the same length as ``term``, with document counts."""
    low, high = max(1, min(len(term) - 2, 4)), len(term) + 2
    if dialect_of(session) != "postgresql":
        rows = await session.execute(
            select(search_fts_vocab.c.term, search_fts_vocab.c.doc).where(
                func.length(search_fts_vocab.c.term).between(low, high)
            )
        )
        return {str(word): int(count) for word, count in rows}
    entry_vector = literal_column("entries.search_vector", postgresql.TSVECTOR)
    comment_vector = literal_column("comments.search_vector", postgresql.TSVECTOR)
    entries = (
        select(entry_vector.label("v"))
        .select_from(Entry)
        .where(visible_filter(subject, Entry, "postgresql"))
        .order_by(Entry.recorded_at.desc())
        .limit(VOCABULARY_DOCS)
    )
    comments = (
        select(comment_vector.label("v"))
        .select_from(Comment)
        .join(Entry, Entry.id == Comment.entry_id)
        .where(
            visible_filter(subject, Comment, "postgresql"),
            visible_filter(subject, Entry, "postgresql"),
        )
        .order_by(Comment.created_at.desc())
        .limit(VOCABULARY_DOCS)
    )
    vectors = union_all(select(entries.subquery()), select(comments.subquery())).subquery()
    words = select(func.unnest(func.tsvector_to_array(vectors.c.v)).label("w")).subquery()
    rows = await session.execute(
        select(words.c.w, func.count())
        .where(func.length(words.c.w).between(low, high))
        .group_by(words.c.w)
    )
    return {str(word): int(count) for word, count in rows}


def _surface(document: str, term: str) -> str | None:
    """The word of ``document`` whose search form is ``term``, as written there."""
    return next((w for w in text.tokens(document) if text.stem(w) == term), None)


def _cased_like(word: str, model: str) -> str:
    if model.islower():
        return word.lower()
    if model.isupper() and len(model) > 1:
        return word.upper()
    return word


async def _correction(
    session: AsyncSession, subject: Subject, word: str, used: list[_Document]
) -> str | None:
    term = text.stem(word)
    if not term or await _documents(session, subject, term, limit=1):
        return None  # a stop word, or a word the reader's records hold: not a typo
    vocabulary = await _vocabulary(session, subject, term)
    for candidate in rank(term, vocabulary, word=text.fold(word))[:CHECKED]:
        for document in await _documents(session, subject, candidate, limit=1):
            surface = _surface(document.text, candidate)
            if surface:
                used.append(document)
                return surface
    return None


@dataclass(frozen=True)
class Suggestion:
    query: str
    levels: frozenset[str]  # labels of the records its words were taken from (page marking)


async def suggest(
    *, session: AsyncSession, settings: Settings, actor: Principal, query: str
) -> Suggestion | None:
    """The query with its unknown words replaced by the closest words of records the reader
    may see, or None when no word needs (or finds) a correction."""
    authorize(actor, Action.READ)
    cleaned = unicodedata.normalize("NFC", clean(query))
    subject = subject_of(settings, actor)
    used: list[_Document] = []
    parts: list[str] = []
    cursor = 0
    changed = False
    for index, match in enumerate(_WORD.finditer(cleaned)):
        looked_up = index < MAX_WORDS
        word = await _correction(session, subject, match.group(), used) if looked_up else None
        parts.append(cleaned[cursor : match.start()])
        if word is None:
            parts.append(match.group())
        else:
            parts.append(_cased_like(word, match.group()))
            changed = True
        cursor = match.end()
    parts.append(cleaned[cursor:])
    if not changed:
        return None
    await audit.record(
        session=session,
        actor=actor,
        action="search.suggest",
        resource_type="entry",
        resource_ids=sorted({d.entry_id for d in used}, key=str),
        labels=sorted({d.level for d in used}),
        detail={"query_length": len(query)},
    )
    return Suggestion("".join(parts), frozenset(d.level for d in used))


def worth_suggesting(results: Sized, limit: int) -> bool:
    """Few results (and not because the caller asked for few): look for a correction."""
    return len(results) < min(FEW, limit)
