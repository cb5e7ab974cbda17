"""Time buckets for aggregates (ADR 0043): the hour, day, ISO week (from Monday) or month a
moment falls in, in the operation's time zone (Paris), computed by the database.

PostgreSQL truncates with ``date_trunc(unit, moment, 'Europe/Paris')``; SQLite, which has no
time zones, calls ``hv_time_bucket``, a Python function each SQLite connection is given
(``hypervision.db.text_bucket``). Either way a bucket reads as
an ISO string: ``2024-07-26T00:00:00+02:00`` for a moment, ``2024-07-22`` for a date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, String, cast, func, literal_column
from sqlalchemy.types import TIMESTAMP

from hypervision.core.errors import Invalid
from hypervision.core.timezone import PARIS
from hypervision.db import TIME_BUCKET_FUNCTION, bucket_of_date, bucket_of_moment

# Re-exported: the Python side of the same buckets (a zone's entries are counted in Python).
of_moment = bucket_of_moment
of_date = bucket_of_date

UNITS = ("hour", "day", "week", "month")
DATE_UNITS = ("day", "week", "month")


def check_unit(unit: str, *, field: str, is_date: bool = False) -> str:
    """The unit, or a 422 naming the field and the units allowed."""
    allowed = DATE_UNITS if is_date else UNITS
    if unit not in allowed:
        raise Invalid(
            f"Regroupement temporel « {unit[:20]} » impossible sur « {field[:64]} » "
            f"(possibles : {', '.join(allowed)}).",
            f"Time bucket {unit[:20]!r} not possible on {field[:64]!r} "
            f"(allowed: {', '.join(allowed)}).",
            extra={"fields": [{"field": "group_by", "message": "invalid time bucket"}]},
        )
    return unit


def expression(column: Any, unit: str, dialect: str, *, is_date: bool = False) -> Any:
    """The SQL expression of ``column``'s bucket. The unit and the zone are written as SQL
    literals (from closed sets: ``unit`` must have passed ``check_unit``), so that the same
    expression in SELECT and GROUP BY is the same text to PostgreSQL, not two parameters."""
    if unit not in UNITS:
        raise ValueError(f"unknown time bucket {unit!r}")
    quoted: Any = literal_column(f"'{unit}'")
    if dialect == "postgresql":
        if is_date:
            return cast(func.date_trunc(quoted, cast(column, TIMESTAMP())), Date)
        zone: Any = literal_column(f"'{PARIS.key}'")
        return func.date_trunc(quoted, column, zone, type_=DateTime(timezone=True))
    return getattr(func, TIME_BUCKET_FUNCTION)(column, quoted, type_=String())


def label(value: Any) -> str | None:
    """A bucket as the database returned it, as its ISO string (moments in Paris time)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(PARIS).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
