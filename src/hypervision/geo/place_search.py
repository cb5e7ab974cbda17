"""Typo-tolerant search over the operation's venues and the imported addresses.

Candidates come from the engine's trigram index:

* SQLite: the FTS5 trigram table ``places_fts``; first every word as a substring (exact
  spelling, selective), then, when that finds too few, any of the query's trigrams (a typo
  spoils only the trigrams around it), best ``bm25`` first;
* PostgreSQL: ``pg_trgm``'s word similarity (``%>``, GIN index of migration 0013); without the
  extension, every word as a substring (no typo tolerance);
* or, when the operator chose it for a whole-country file, addok (``geo.place_addok``,
  ADR 0030), whose results keep its order among equal scores.

Candidates and venues (``geo.places``, in memory) are then ranked alike in Python: the share
of the query's trigrams found in the place's name (pg_trgm's padding of words), shorter names
first on a tie. "sait-denis" shares 9 of its 11 trigrams with "Saint-Denis".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, and_, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.geo import place_addok
from hypervision.geo.addresses import address_name, places_fts, search_form
from hypervision.geo.place_models import Place
from hypervision.geo.places import VENUES

MAX_QUERY_LENGTH = 120
MIN_SCORE = 0.5
CANDIDATES = 300


@dataclass(frozen=True)
class PlaceHit:
    id: str
    name: str
    kind: Literal["venue", "street", "address"]
    lon: float
    lat: float
    score: float


@lru_cache(maxsize=4096)
def trigrams(words: str) -> frozenset[str]:
    """pg_trgm's trigrams of a search form: each word padded with two spaces before and one
    after ("  w", " wo", "wor", "ord", "rd ")."""
    grams: set[str] = set()
    for word in words.split():
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return frozenset(grams)


def score(query_form: str, candidate_form: str) -> float:
    """The share of the query's trigrams found in the candidate (1.0: every one)."""
    wanted = trigrams(query_form)
    if not wanted:
        return 0.0
    return len(wanted & trigrams(candidate_form)) / len(wanted)


def _venue_hits(form: str) -> list[PlaceHit]:
    hits = []
    for venue in VENUES:
        value = score(form, search_form(venue.name))
        if value >= MIN_SCORE:
            hits.append(
                PlaceHit(
                    id=f"venue:{search_form(venue.name).replace(' ', '-')}",
                    name=venue.name,
                    kind="venue",
                    lon=venue.lon,
                    lat=venue.lat,
                    score=value,
                )
            )
    return hits


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


async def _sqlite_candidates(session: AsyncSession, form: str) -> list[Place]:
    table: ColumnElement[Any] = literal_column(places_fts.name)
    words = [w for w in form.split() if len(w) >= 3]
    grams = sorted({w[i : i + 3] for w in words for i in range(len(w) - 2)})
    if not grams:  # only one- or two-letter words: the trigram index cannot help
        like = [Place.search_text.like(f"%{w}%") for w in form.split()]
        rows = await session.scalars(select(Place).where(and_(*like)).limit(CANDIDATES))
        return list(rows)
    found: list[Place] = []
    for expression in (" ".join(_quoted(w) for w in words), " OR ".join(map(_quoted, grams))):
        ranked = (
            select(places_fts.c.place_id)
            .select_from(places_fts)
            .where(table.bool_op("MATCH")(expression))
            .order_by(literal_column("rank"))
            .limit(CANDIDATES)
            .subquery()
        )
        rows = await session.scalars(select(Place).join(ranked, ranked.c.place_id == Place.id))
        found = list(rows)
        if len(found) >= CANDIDATES // 10:
            break
    return found


_TRIGRAMS: WeakKeyDictionary[object, bool] = WeakKeyDictionary()


async def has_trigram_extension(session: AsyncSession) -> bool:
    """Whether the database has ``pg_trgm`` (migration 0013), asked once per engine: the
    extension comes with a migration, and the server restarts after one."""
    bind = session.get_bind()
    if bind not in _TRIGRAMS:
        row = await session.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
        _TRIGRAMS[bind] = row.first() is not None
    return _TRIGRAMS[bind]


async def _postgres_candidates(session: AsyncSession, form: str) -> list[Place]:
    if await has_trigram_extension(session):
        condition: ColumnElement[bool] = Place.search_text.op("%>")(form)
        order = func.word_similarity(form, Place.search_text).desc()
        query = select(Place).where(condition).order_by(order, func.length(Place.name))
    else:
        like = [Place.search_text.like(f"%{w}%") for w in form.split()]
        query = select(Place).where(and_(*like))
    rows = await session.scalars(query.limit(CANDIDATES))
    return list(rows)


def _address_hits(form: str, places: list[Place]) -> list[PlaceHit]:
    hits = []
    for place in places:
        value = score(form, place.search_text)
        if value >= MIN_SCORE:
            hits.append(
                PlaceHit(
                    id=place.id,
                    name=place.name,
                    kind="address",
                    lon=place.lon,
                    lat=place.lat,
                    score=value,
                )
            )
    return hits


def _street_hits(form: str, places: list[Place]) -> list[PlaceHit]:
    """One hit per street (at its middle address found), for a query without a number: a
    list of the house numbers of one street would hide the other streets."""
    streets: dict[tuple[str, str, str], list[Place]] = {}
    for place in places:
        streets.setdefault((place.street, place.postcode, place.city), []).append(place)
    hits = []
    for (street, postcode, city), members in streets.items():
        name = address_name("", street, postcode, city)
        value = score(form, search_form(name))
        if value >= MIN_SCORE:
            middle = sorted(members, key=lambda p: (p.lat, p.lon, p.id))[len(members) // 2]
            hits.append(
                PlaceHit(
                    id="street:" + middle.id.rsplit("_", 1)[0],  # BAN: commune_street_number
                    name=name,
                    kind="street",
                    lon=middle.lon,
                    lat=middle.lat,
                    score=value,
                )
            )
    return hits


async def _addok_hits(url: str, query: str, form: str, limit: int) -> list[PlaceHit]:
    """addok's results, scored like the others (the share of the query's trigrams in their
    name) so that venues rank among them; not filtered by that score: addok has its own."""
    found = await place_addok.search(url=url, query=query, limit=limit)
    return [
        PlaceHit(f.id, f.name, f.kind, f.lon, f.lat, score=score(form, search_form(f.name)))
        for f in found
    ]


async def search_places(
    *, session: AsyncSession, query: str, limit: int, addok_url: str | None = None
) -> list[PlaceHit]:
    """The ``limit`` places best matching ``query``, best first: venues, then streets (when
    the query has no number) or addresses; from addok at ``addok_url`` when given (raises
    ``PlacesUnavailable`` when it does not answer)."""
    query = query[:MAX_QUERY_LENGTH]
    form = search_form(query)
    if len(form.replace(" ", "")) < 2:
        return []
    hits = _venue_hits(form)
    if addok_url:
        hits += await _addok_hits(addok_url, query, form, limit)
        hits.sort(key=lambda h: (-round(h.score, 3), h.kind != "venue"))  # stable: addok's order
        return hits[:limit]
    if session.get_bind().dialect.name == "postgresql":
        places = await _postgres_candidates(session, form)
    else:
        places = await _sqlite_candidates(session, form)
    numbered = any(c.isdigit() for c in form)
    hits += _address_hits(form, places) if numbered else _street_hits(form, places)
    hits.sort(key=lambda h: (-h.score, h.kind != "venue", len(h.name), h.name))
    return hits[:limit]
