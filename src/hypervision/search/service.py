"""French full-text search over entries and their comments, through the policy filter.

One SQL statement finds the hits, keeps the best one per entry and ranks them:

* PostgreSQL: ``plainto_tsquery('hv_french', q)`` against the generated ``search_vector``
  columns (title A, body B, comment C), ranked with ``ts_rank_cd``;
* SQLite: a quoted-terms FTS5 ``MATCH`` over the folded, stemmed words kept by
  ``logbook.fulltext``, ranked with ``bm25`` (title weighs more than body; comments half).

Every word of the query is required on both engines, and no query syntax is interpreted, so
that both engines answer alike and no input can fail as a syntax error. A hit on an entry
needs the entry visible; a hit on a comment needs the comment and its entry visible (the
same ``visible_filter`` applied in SQL to both). The audit record names the delivered entry
and comment ids with their labels; the query text itself is never stored, only its length.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    String,
    Text,
    Uuid,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core import text
from hypervision.identity.principal import Principal
from hypervision.logbook.entries import visible
from hypervision.logbook.fulltext import search_fts
from hypervision.logbook.models import Comment, Entry
from hypervision.policy.rules import Action, Subject, authorize, visible_filter
from hypervision.records.access import dialect_of, subject_of

MAX_QUERY_LENGTH = 200
TS_CONFIG = "hv_french"
# SQLite bm25 column weights: doc_id, entry_id, kind (never matched), title, body.
_BM25_WEIGHTS = ("0.0", "0.0", "0.0", "10.0", "4.0")
_COMMENT_FACTOR = 0.5


@dataclass(frozen=True)
class Hit:
    entry: Entry
    kind: str  # "entry" or "comment"
    comment_id: uuid.UUID | None
    score: float
    title_html: str
    excerpt_html: str


def clean(query: str) -> str:
    """The query without control, format or unpaired surrogate characters (NUL would be
    refused by PostgreSQL; lone surrogates cannot be encoded)."""
    return "".join(" " if unicodedata.category(c).startswith("C") else c for c in query)


CANDIDATES = 2000  # most recent matches ranked per kind, on PostgreSQL


def plain_tsquery(query: str) -> ColumnElement[Any]:
    """Every word of ``query`` required, stemmed by ``hv_french``, no syntax interpreted."""
    return func.plainto_tsquery(literal(TS_CONFIG, postgresql.REGCONFIG), query)


def postgres_hits(subject: Subject, tsquery: ColumnElement[Any]) -> Select[tuple[object, ...]]:
    """The visible entries and comments matching ``tsquery``, the most recent ones first."""
    # Generated columns created by the migration; deliberately not mapped on the models.
    entry_vector = literal_column("entries.search_vector", postgresql.TSVECTOR)
    comment_vector = literal_column("comments.search_vector", postgresql.TSVECTOR)
    on_entries = select(
        Entry.id.label("entry_id"),
        literal("entry", String).label("kind"),
        cast(null(), Uuid).label("comment_id"),
        cast(null(), Text).label("comment_body"),
        cast(null(), String).label("comment_level"),
        cast(func.ts_rank_cd(entry_vector, tsquery), Float).label("score"),
    ).where(
        entry_vector.bool_op("@@")(tsquery),
        visible_filter(subject, Entry, "postgresql"),
    )
    # Rank only the most recent matches: a common word matches a third of a million-entry log,
    # and ranking all of them costs seconds. The planner then walks the feed index backwards
    # for common words and uses the GIN index for rare ones.
    on_entries = on_entries.order_by(Entry.recorded_at.desc()).limit(CANDIDATES)
    on_comments = (
        select(
            Comment.entry_id,
            literal("comment", String),
            Comment.id,
            Comment.body,
            Comment.label_level,
            cast(func.ts_rank_cd(comment_vector, tsquery), Float),
        )
        .join(Entry, Entry.id == Comment.entry_id)
        .where(
            comment_vector.bool_op("@@")(tsquery),
            visible_filter(subject, Comment, "postgresql"),
            visible_filter(subject, Entry, "postgresql"),
        )
        .order_by(Comment.created_at.desc())
        .limit(CANDIDATES)
    )
    both = union_all(select(on_entries.subquery()), select(on_comments.subquery()))
    return select(both.subquery())


def sqlite_hits(subject: Subject, terms: list[str]) -> Select[tuple[object, ...]]:
    """The visible entries and comments whose index rows hold every one of ``terms``."""
    table: ColumnElement[Any] = literal_column(search_fts.name)
    matches: ColumnElement[bool] = table.bool_op("MATCH")(text.fts_match(terms))
    bm25 = func.bm25(table, *(literal_column(w) for w in _BM25_WEIGHTS))
    is_comment = search_fts.c.kind == "comment"
    comment_visible = and_(
        is_comment,
        Comment.id.is_not(None),
        Comment.entry_id == Entry.id,
        visible_filter(subject, Comment, "sqlite"),
    )
    return (
        select(
            search_fts.c.entry_id.label("entry_id"),
            search_fts.c.kind.label("kind"),
            Comment.id.label("comment_id"),
            Comment.body.label("comment_body"),
            Comment.label_level.label("comment_level"),
            (-bm25 * case((is_comment, _COMMENT_FACTOR), else_=1.0)).label("score"),
        )
        .select_from(search_fts)
        .join(Entry, Entry.id == search_fts.c.entry_id)
        .outerjoin(Comment, and_(is_comment, Comment.id == search_fts.c.doc_id))
        .where(
            matches,
            visible_filter(subject, Entry, "sqlite"),
            or_(search_fts.c.kind == "entry", comment_visible),
        )
    )


async def search(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    query: str,
    limit: int,
) -> list[Hit]:
    """The best ``limit`` entries for ``query``, one hit per entry, best score first."""
    authorize(actor, Action.READ)
    cleaned = clean(query)
    terms = text.query_terms(cleaned)
    hits: list[Hit] = []
    comment_levels: list[str] = []
    if terms:
        dialect = dialect_of(session)
        subject = subject_of(settings, actor)
        found = (
            postgres_hits(subject, plain_tsquery(cleaned))
            if dialect == "postgresql"
            else sqlite_hits(subject, terms)
        ).subquery("hits")
        ranked = select(
            found,
            func.row_number()
            .over(
                partition_by=found.c.entry_id,
                order_by=(found.c.score.desc(), found.c.kind.desc(), found.c.comment_id),
            )
            .label("rank"),
        ).subquery("ranked")
        best = (
            select(ranked)
            .where(ranked.c.rank == 1)
            .order_by(ranked.c.score.desc(), ranked.c.entry_id)
            .limit(limit)
            .subquery("best")
        )
        rows = await session.execute(
            visible(session, settings, actor)
            .add_columns(
                best.c.kind,
                best.c.comment_id,
                best.c.comment_body,
                best.c.comment_level,
                best.c.score,
            )
            .join(best, best.c.entry_id == Entry.id)
            .order_by(best.c.score.desc(), Entry.id)
        )
        for entry, kind, comment_id, comment_body, comment_level, score in rows:
            excerpt = comment_body if kind == "comment" else entry.body
            hits.append(
                Hit(
                    entry=entry,
                    kind=kind,
                    comment_id=comment_id,
                    score=float(f"{float(score):.6g}"),
                    title_html=text.highlight(entry.title, terms),
                    excerpt_html=text.highlight(excerpt or "", terms),
                )
            )
            if comment_level is not None:
                comment_levels.append(comment_level)
    await audit.record(
        session=session,
        actor=actor,
        action="search",
        resource_type="entry",
        resource_ids=[h.entry.id for h in hits],
        labels=sorted({h.entry.label_level for h in hits} | set(comment_levels)),
        detail={
            "query_length": len(query),
            "comment_ids": [str(h.comment_id) for h in hits if h.comment_id is not None],
        },
    )
    return hits
