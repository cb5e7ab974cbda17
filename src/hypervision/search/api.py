"""Full-text search API: French, accent-insensitive, ranked, through the policy filter."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CREDENTIALS, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal
from hypervision.logbook import present
from hypervision.logbook.schemas import EntryRead
from hypervision.search import service, suggest

router = APIRouter(prefix="/api/v1", tags=["search"], dependencies=CREDENTIALS, responses=SIGNED_IN)


class SearchHitRead(BaseModel):
    entry: EntryRead
    kind: Literal["entry", "comment"] = Field(
        description="What matched best: the entry itself, or one of its comments."
    )
    comment_id: uuid.UUID | None = Field(description="The matching comment, for a comment hit.")
    score: float = Field(description="Relevance, higher first (not comparable across engines).")
    title_html: str = Field(description="The title, HTML-escaped, matched words in <mark>…</mark>.")
    excerpt_html: str = Field(
        description="About 30 words of the body (or of the matching comment) around the first "
        "match, HTML-escaped, matched words in <mark>…</mark>, … where text was cut."
    )


class SearchResults(BaseModel):
    items: list[SearchHitRead]
    did_you_mean: str | None = Field(
        default=None,
        description="When few entries matched: the query with its unknown words replaced by "
        "the closest words of records the reader may see (typos corrected), else null.",
    )


@router.get("/search", response_model=SearchResults)
async def search(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=service.MAX_QUERY_LENGTH)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchResults:
    """Search entry titles, bodies and comments. Every word is required; stemming and accents
    are folded ("securite" finds "sécurité"); one hit per entry, best first. When few entries
    match, ``did_you_mean`` proposes a corrected query ("sait-denis" → "saint-denis")."""
    hits = await service.search(
        session=session, settings=settings, actor=actor, query=q, limit=limit
    )
    entries = await present.entries_read(
        session, [h.entry for h in hits], settings=settings, actor=actor
    )
    did_you_mean = None
    if suggest.worth_suggesting(hits, limit):
        found = await suggest.suggest(session=session, settings=settings, actor=actor, query=q)
        did_you_mean = found.query if found else None
    return SearchResults(
        did_you_mean=did_you_mean,
        items=[
            SearchHitRead(
                entry=read,
                kind="comment" if hit.kind == "comment" else "entry",
                comment_id=hit.comment_id,
                score=hit.score,
                title_html=hit.title_html,
                excerpt_html=hit.excerpt_html,
            )
            for hit, read in zip(hits, entries, strict=True)
        ],
    )
