"""Charts over time have no holes and name their buckets in the reader's words."""

from __future__ import annotations

from hypervision.spaces.figures import timeline


def test_missing_hours_are_zeros_and_buckets_are_named() -> None:
    rows = [
        {"bucket": "2024-07-26T21:00:00+02:00", "count": 2},
        {"bucket": "2024-07-27T00:00:00+02:00", "count": 1},
    ]
    filled, names = timeline(rows, "bucket", "hour", "count", None, french=True)
    assert [r["count"] for r in filled] == [2, 0, 0, 1]
    assert names["2024-07-26T22:00:00+02:00"] == "26 juil. 22h"
    _, english = timeline(filled, "bucket", "day", "count", None, french=False)
    assert english["2024-07-27T00:00:00+02:00"] == "Sat 27 Jul"


def test_a_series_keeps_its_key_and_the_last_hour_of_summer_time_is_counted_once() -> None:
    rows = [
        {"bucket": "2024-10-27T01:00:00+02:00", "severity": "major", "count": 1},
        {"bucket": "2024-10-27T03:00:00+01:00", "severity": "minor", "count": 4},
    ]
    filled, _ = timeline(rows, "bucket", "hour", "count", "severity", french=True)
    # 01:00+02, 02:00+02, 02:00+01, 03:00+01: four real hours (the clocks went back)
    assert [r["bucket"] for r in filled] == [
        "2024-10-27T01:00:00+02:00",
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:00:00+01:00",
        "2024-10-27T03:00:00+01:00",
    ]
    assert all("severity" in r for r in filled)


def test_a_date_field_by_week_is_filled_with_dates() -> None:
    # a product's date field bucketed by week: the database answers dates, not moments
    rows = [{"jour": "2024-07-01", "count": 3}, {"jour": "2024-07-22", "count": 1}]
    filled, names = timeline(rows, "jour", "week", "count", None, french=True)
    assert [r["jour"] for r in filled] == ["2024-07-01", "2024-07-08", "2024-07-15", "2024-07-22"]
    assert [r["count"] for r in filled] == [3, 0, 0, 1]
    assert names["2024-07-08"] == "sem. 8 juil."


def test_days_follow_the_paris_calendar_across_a_change_of_the_clocks() -> None:
    rows = [
        {"bucket": "2024-10-26T00:00:00+02:00", "count": 1},
        {"bucket": "2024-10-29T00:00:00+01:00", "count": 2},
    ]
    filled, _ = timeline(rows, "bucket", "day", "count", None, french=True)
    # the 27th lasts 25 hours: its next day still starts at midnight, once
    assert [r["bucket"] for r in filled] == [
        "2024-10-26T00:00:00+02:00",
        "2024-10-27T00:00:00+02:00",
        "2024-10-28T00:00:00+01:00",
        "2024-10-29T00:00:00+01:00",
    ]
