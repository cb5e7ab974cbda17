"""Charts and key figures of a space: aggregated on the server under the policy (the rows a
reader may not see are never counted, never shipped), over the entries or a data product."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from babel.dates import format_datetime

from hypervision.core.charts import from_groups, number
from hypervision.core.i18n import CATEGORY_NAMES, SEVERITY_NAMES, STATUS_NAMES, Translator
from hypervision.core.timezone import PARIS
from hypervision.db import utcnow
from hypervision.logbook.aggregates import EntryGroups, aggregate_entries
from hypervision.logbook.query import EntryQuery
from hypervision.products import service as products
from hypervision.products.models import ProductStatus
from hypervision.spaces.reading import DEPRECATED, Reading, entry_query
from hypervision.spaces.schemas import ChartConfig, EntryFilter, KpiConfig

MEASURE_WORDS = {"count": ("Nombre", "Count")}


async def _entry_groups(
    r: Reading, filter_: EntryFilter | EntryQuery, group_by: str | None, bucket: str | None
) -> EntryGroups:
    found = await aggregate_entries(
        session=r.session,
        settings=r.settings,
        actor=r.actor,
        filters=filter_ if isinstance(filter_, EntryQuery) else entry_query(filter_),
        group_by=group_by,
        bucket=bucket,
    )
    r.saw(*found.levels)
    r.read("entry.aggregate", "entry", (), found.levels, groups=len(found.groups),
           entries=found.total)  # fmt: skip
    return found


def _names(r: Reading) -> dict[str, str]:
    """Codes of the entries' vocabularies in the reader's words."""
    words = Translator("fr" if r.french else "en")
    return {
        code: words.gettext(name)
        for table in (CATEGORY_NAMES, SEVERITY_NAMES, STATUS_NAMES)
        for code, name in table.items()
    }


async def _product_groups(
    r: Reading, config: ChartConfig | KpiConfig, group_by: list[str]
) -> list[dict[str, Any]]:
    assert config.product_id is not None
    found = await products.aggregate(
        session=r.session,
        settings=r.settings,
        actor=r.actor,
        product_id=config.product_id,
        group_by=group_by,
        measures=[config.measure],
        conditions=[products.parse_condition(f) for f in config.filters],
    )
    r.saw(found.product.label_level)
    r.read("product.aggregate", "product", [found.product.id], [found.product.label_level],
           rows=len(found.rows))  # fmt: skip
    if found.product.status == ProductStatus.DEPRECATED.value:
        r.message = r.words(DEPRECATED)
    r.measure_key = found.measures[0]
    return found.rows


STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
PATTERNS = {"hour": "d MMM HH'h'", "day": "EEE d MMM", "week": "'sem.' d MMM", "month": "MMM y"}
MAX_FILLED = 500


def _moment(value: Any) -> datetime | date:
    """A bucket's ISO string: a moment with its offset, or a date (a product's date field)."""
    text = str(value)
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)


def _after(at: datetime | date, bucket: str) -> datetime | date:
    """The next bucket: an hour in real time; a day or a week on the Paris calendar (a day
    across a change of the clocks lasts 23 or 25 hours); a date by days."""
    step = STEPS[bucket]
    if not isinstance(at, datetime):
        return at + step
    if bucket == "hour":
        return (at.astimezone(UTC) + step).astimezone(PARIS)
    wall = at.astimezone(PARIS).replace(tzinfo=None) + step
    return wall.replace(tzinfo=PARIS)


def timeline(
    rows: list[dict[str, Any]], key: str, bucket: str, measure: str, series: str | None,
    french: bool,
) -> tuple[list[dict[str, Any]], dict[str, str]]:  # fmt: skip
    """Time buckets with nothing counted added as zeros (a line over time has no holes), and
    each bucket's name in the reader's words (``3 déc. 15h``). Buckets are moments with their
    offset (entries, a product's datetime field) or dates (a product's date field)."""
    times = sorted({_moment(row[key]) for row in rows if row.get(key)})
    step = STEPS.get(bucket)
    if step and times and (_span(times[0], times[-1]) / step) <= MAX_FILLED:
        present, at = {t.isoformat() for t in times}, times[0]
        pad = {series: rows[0][series]} if series else {}
        while at < times[-1]:
            at = _after(at, bucket)
            if at.isoformat() not in present:
                rows.append({key: at.isoformat(), measure: 0, **pad})
        rows.sort(key=lambda row: _moment(row[key]) if row.get(key) else times[0])
    locale = "fr" if french else "en"
    names = {
        str(row[key]): format_datetime(
            _aware(_moment(row[key])), PATTERNS.get(bucket, "d MMM y"), tzinfo=PARIS,
            locale=locale,
        )
        for row in rows
        if row.get(key)
    }  # fmt: skip
    return rows, names


def _span(first: datetime | date, last: datetime | date) -> timedelta:
    return last - first  # type: ignore[operator]


def _aware(at: datetime | date) -> datetime:
    """A date is its midnight in Paris (so that its name is its own day)."""
    if isinstance(at, datetime):
        return at
    return datetime(at.year, at.month, at.day, tzinfo=PARIS)


async def chart(r: Reading, config: ChartConfig) -> dict[str, Any]:
    labels: dict[str, str] = {}
    if config.source == "entries":
        over_time = config.group_by == "occurred_at"
        field = config.series_by if over_time else config.group_by
        found = await _entry_groups(r, config.filter, field, config.bucket if over_time else None)
        rows, measure = found.groups, "count"
        category = "bucket" if over_time else (field or "count")
        series = field if over_time else None
        labels = _names(r)
    else:
        first = config.group_by
        if first and config.bucket:
            first = f"{first}@{config.bucket}"
        names = [n for n in (first, config.series_by) if n]
        rows = await _product_groups(r, config, names)
        measure, category, series = r.measure_key, first or r.measure_key, config.series_by
    if config.bucket and config.group_by and rows:
        rows, times = timeline(list(rows), category, config.bucket, measure, series, r.french)
        labels = {**labels, **times}
    spec = from_groups(
        rows,
        category_key=category,
        series_key=series,
        measure_key=measure,
        kind=config.kind,
        stacked=config.stacked,
        horizontal=config.horizontal,
        series_name=r.words(MEASURE_WORDS.get(config.measure, (config.measure, config.measure))),
        labels=labels,
    )
    return {"spec": spec.model_dump(mode="json"), "groups": len(rows)}


async def kpi(r: Reading, config: KpiConfig) -> dict[str, Any]:
    previous: float | None = None
    if config.source == "entries":
        now = entry_query(config.filter)
        value = float((await _entry_groups(r, now, None, None)).total)
        if config.trend_hours and config.filter.hours and now.since is not None:
            # the period of the same length just before, counted on its own
            span = timedelta(hours=config.filter.hours)
            before = replace(now, since=now.since - span, until=now.since)
            previous = float((await _entry_groups(r, before, None, None)).total)
    else:
        rows = await _product_groups(r, config, [])
        key = r.measure_key
        raw = rows[0].get(key) if rows else None
        value = float(raw) if raw is not None else 0.0
    return {
        "value": value,
        "display": number(value, None),
        "unit": config.unit,
        "previous": None if previous is None else number(previous, None),
        "change": None if previous is None else _signed(value - previous),
        "level": _level(value, config),
        "at": utcnow().isoformat(),
    }


def _signed(change: float) -> str:
    return ("+" if change > 0 else "") + number(change, None)


def _level(value: float, config: KpiConfig) -> str:
    def beyond(threshold: float | None) -> bool:
        if threshold is None:
            return False
        return value >= threshold if config.higher_is_worse else value <= threshold

    if beyond(config.alert):
        return "alert"
    if beyond(config.warning):
        return "warning"
    return "normal"
