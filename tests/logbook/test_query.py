"""The query specification's Python side and the surfaces that parse into it (no database: the
differential test tests/policy/test_query_differential.py compares it with the SQL side)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import pytest

from hypervision import criteria
from hypervision.events.models import OutboxEvent
from hypervision.follows import service as follows
from hypervision.live.hub import Filters
from hypervision.logbook.query import EntryQuery
from hypervision.synthesis.service import scope_query
from hypervision.web.feed_pages import FeedQuery

AT = datetime(2026, 3, 1, 10, tzinfo=UTC)
SITUATION = uuid.uuid4()


def entry(**changes: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "category": "security",
        "severity": "major",
        "status": "open",
        "organisation_id": uuid.uuid4(),
        "occurred_at": AT,
        "tags": ["flood", "metro"],
        "situation_id": SITUATION,
        "location": {"type": "Point", "coordinates": [2.35, 48.85]},
        "min_lon": 2.35,
        "min_lat": 48.85,
        "max_lon": 2.35,
        "max_lat": 48.85,
        "duplicate_of_id": None,
    }
    return SimpleNamespace(**{**values, **changes})


def test_the_python_side_honours_tags_until_and_bbox() -> None:
    """The feed's former Python copy ignored them: a live card passed what the list refused."""
    one = entry()
    assert EntryQuery(tags=("flood",)).matches(one)
    assert not EntryQuery(tags=("flood", "fire")).matches(one)
    assert EntryQuery(until=AT + timedelta(microseconds=1)).matches(one)
    assert not EntryQuery(until=AT).matches(one)  # until is exclusive, since inclusive
    assert EntryQuery(since=AT).matches(one)
    assert EntryQuery(bbox=(2.0, 48.0, 2.35, 49.0)).matches(one)  # border included
    assert not EntryQuery(bbox=(2.4, 48.0, 3.0, 49.0)).matches(one)
    assert not EntryQuery(bbox=(0, 0, 180, 90)).matches(entry(min_lon=None, location=None))


def test_a_hidden_situation_matches_nothing_in_python_too() -> None:
    query = EntryQuery(situations=(SITUATION,))
    assert query.matches(entry(), shown_situations={SITUATION})
    assert not query.matches(entry(), shown_situations=set())  # hidden: like an unknown id
    assert not query.matches(entry(situation_id=None), shown_situations={SITUATION})


def test_the_python_side_refuses_to_guess_which_situations_are_visible() -> None:
    with pytest.raises(ValueError, match="situation_id"):
        EntryQuery(situations=(SITUATION,)).matches(entry())


def test_a_zone_is_decided_by_its_exact_shape_after_sql_narrowed() -> None:
    from hypervision.core.shapes import Area

    ring = [[2.0, 48.0], [3.0, 48.0], [3.0, 49.0], [2.0, 49.0], [2.0, 48.0]]
    hole = [[2.3, 48.8], [2.4, 48.8], [2.4, 48.9], [2.3, 48.9], [2.3, 48.8]]
    query = EntryQuery(area=Area.of({"type": "Polygon", "coordinates": [ring, hole]}))
    assert not query.exact
    assert not query.residual(entry())  # in the hole
    assert query.residual(entry(location={"type": "Point", "coordinates": [2.1, 48.1]}))
    assert EntryQuery(categories=("security",)).exact


def event(resource_type: str = "entry", **payload: Any) -> OutboxEvent:
    return OutboxEvent(
        type=f"{resource_type}.create",
        resource_type=resource_type,
        resource_id=uuid.uuid4(),
        payload=payload,
        label={},
    )


def test_the_stream_filters_are_the_criteria_on_the_event_summary() -> None:
    near = event(category="security", bbox=[2.3, 48.8, 2.4, 48.9])
    assert Filters().accepts(near)
    assert Filters(categories=frozenset({"security"})).accepts(near)
    assert not Filters(categories=frozenset({"health"})).accepts(near)
    assert Filters(bbox=(2.4, 48.9, 3.0, 49.0)).accepts(near)  # corners touch
    assert not Filters(bbox=(2.5, 48.0, 3.0, 49.0)).accepts(near)
    assert not Filters(bbox=(-180, -90, 180, 90)).accepts(event(category="security", bbox=None))
    assert not Filters(topics=frozenset({"comment"})).accepts(near)
    assert not Filters(categories=frozenset({"security"})).accepts(event("comment"))
    assert all(
        isinstance(c, criteria.OneOf | criteria.BoxMeets)
        for c in Filters(categories=frozenset({"x"}), bbox=(0, 0, 1, 1)).criteria
    )


def test_a_saved_view_keeps_every_filter_of_the_feed_form() -> None:
    """The zone was dropped from saved views: a view of a zone showed the whole feed."""
    form = FeedQuery(
        categories=["security"], severities=["major"], statuses=["open"], organisation="PP",
        period="24h", situation=str(SITUATION), zone=str(uuid.uuid4()), q="inondation",
    )  # fmt: skip
    saved = follows.clean_query(form.url())
    assert dict(parse_qsl(saved)) == dict(parse_qsl(form.url()))


def test_a_synthesis_scope_is_a_query() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    scope = {"hours": 6, "situations": [str(SITUATION)], "categories": ["security"],
             "min_severity": "major"}  # fmt: skip
    query = scope_query(scope, now, None)
    assert query == EntryQuery(
        since=now - timedelta(hours=6),
        situations=(SITUATION,),
        categories=("security",),
        severities=("major", "critical"),
        originals_only=True,
    )
    assert not query.matches(entry(duplicate_of_id=uuid.uuid4()), shown_situations={SITUATION})
    assert query.matches(entry(occurred_at=now - timedelta(hours=1)), shown_situations={SITUATION})
