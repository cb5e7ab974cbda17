"""API shapes of spaces and of their modules' configurations.

A space's modules are a JSON document: each module has an id, a type, a title, a place on a
12-column grid and a configuration whose shape its type decides (``CONFIGS``). A module of a
type this version does not know (an import from a later version, a typo) is kept as it is and
shown as a message in its place, never refused wholesale nor turned into something else.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from hypervision.core.schemas import Strict, Trimmed
from hypervision.records.schemas import LabelIn, LabelRead

Title = Annotated[str, Trimmed(120, min_length=1)]
Short = Annotated[str, Trimmed(120)]
Word = Annotated[str, Trimmed(64, min_length=1)]
ModuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
ModuleType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
COLUMNS = 12
MAX_MODULES = 40
CHART_KINDS = ("bar", "line", "area", "pie", "donut", "heatmap", "histogram")
BUCKETS = ("hour", "day", "week", "month")
ENTRY_GROUPS = ("category", "severity", "status", "organisation_id")


class EntryFilter(Strict):
    """Which entries a module shows: the saved filter of a feed, a map, a chart."""

    categories: list[Word] = Field(default_factory=list, max_length=20)
    severities: list[Literal["info", "minor", "major", "critical"]] = Field(
        default_factory=list, max_length=4
    )
    statuses: list[Literal["open", "in_progress", "closed"]] = Field(
        default_factory=list, max_length=3
    )
    tags: list[Word] = Field(default_factory=list, max_length=10)
    situation_id: uuid.UUID | None = None
    hours: int | None = Field(default=None, ge=1, le=24 * 62)  # the last N hours


class FeedConfig(Strict):
    filter: EntryFilter = Field(default_factory=EntryFilter)
    limit: int = Field(default=10, ge=1, le=50)


class MapConfig(Strict):
    filter: EntryFilter = Field(default_factory=EntryFilter)
    zones: bool = True
    layer_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10)
    product_ids: list[uuid.UUID] = Field(default_factory=list, max_length=5)


class TableConfig(Strict):
    product_id: uuid.UUID
    columns: list[Word] = Field(default_factory=list, max_length=30)
    sort: Annotated[str, StringConstraints(max_length=65)] | None = None
    filters: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list, max_length=10
    )  # field:operator:value, as the products API takes them
    limit: int = Field(default=20, ge=1, le=100)


class ChartConfig(Strict):
    source: Literal["entries", "product"] = "entries"
    product_id: uuid.UUID | None = None
    kind: Literal["bar", "line", "area", "pie", "donut", "heatmap", "histogram"] = "bar"
    group_by: Word | None = None  # a field (product) or one of ENTRY_GROUPS (entries)
    series_by: Word | None = None  # a second grouping: one series per value (stacked, heat map)
    bucket: Literal["hour", "day", "week", "month"] | None = None  # time buckets of group_by
    measure: Annotated[str, StringConstraints(max_length=70)] = "count"  # count | fn:field
    stacked: bool = False
    horizontal: bool = False
    filter: EntryFilter = Field(default_factory=EntryFilter)  # entries
    filters: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list, max_length=10
    )  # product rows

    @model_validator(mode="after")
    def _source(self) -> ChartConfig:
        if self.source == "product" and self.product_id is None:
            raise ValueError("product_id is required when the source is a product")
        if self.source == "entries":
            allowed = (*ENTRY_GROUPS, "occurred_at")
            for name in (self.group_by, self.series_by):
                if name and name not in allowed:
                    raise ValueError(f"grouping of entries: one of {', '.join(allowed)}")
            if self.series_by and self.group_by != "occurred_at":
                raise ValueError("entries take a second grouping over time only (occurred_at)")
            if self.group_by == "occurred_at" and not self.bucket:
                raise ValueError("grouping entries by time needs a bucket (hour, day, week)")
        return self


class KpiConfig(Strict):
    source: Literal["entries", "product"] = "entries"
    product_id: uuid.UUID | None = None
    measure: Annotated[str, StringConstraints(max_length=70)] = "count"
    filter: EntryFilter = Field(default_factory=EntryFilter)
    filters: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list, max_length=10
    )
    # entries: set (any value), the figure is compared with the period of the same length before
    trend_hours: int | None = Field(default=24, ge=1, le=24 * 31)
    warning: float | None = None  # thresholds: at or beyond, the figure is coloured
    alert: float | None = None
    higher_is_worse: bool = True
    unit: Short = ""

    @model_validator(mode="after")
    def _source(self) -> KpiConfig:
        if self.source == "product" and self.product_id is None:
            raise ValueError("product_id is required when the source is a product")
        return self


class TextConfig(Strict):
    markdown: Annotated[str, StringConstraints(max_length=20_000)] = ""


_LINK = re.compile(r"^(https?://[^\s]{1,2000}|/[^\s/][^\s]{0,2000}|/)$")


class Link(Strict):
    title: Title
    url: Annotated[str, Trimmed(2000)]

    @field_validator("url")
    @classmethod
    def _safe(cls, value: str) -> str:
        if not _LINK.match(value) or value.startswith("//"):
            raise ValueError("an http(s) address or a path of this site (/…)")
        return value


class LinksConfig(Strict):
    links: list[Link] = Field(default_factory=list, max_length=30)


class FormConfig(Strict):
    target: Literal["entry", "product"] = "entry"
    product_id: uuid.UUID | None = None
    preset: dict[Word, Annotated[str, StringConstraints(max_length=200)]] = Field(
        default_factory=dict, max_length=20
    )  # entry: category, severity, tags (comma-separated); product: field values

    @model_validator(mode="after")
    def _target(self) -> FormConfig:
        if self.target == "product" and self.product_id is None:
            raise ValueError("product_id is required when the form adds a product row")
        return self


class SynthesisConfig(Strict):
    pass


class SituationsConfig(Strict):
    statuses: list[Literal["open", "in_progress", "closed"]] = Field(
        default_factory=list, max_length=3
    )
    limit: int = Field(default=10, ge=1, le=50)


CONFIGS: dict[str, type[Strict]] = {
    "feed": FeedConfig,
    "map": MapConfig,
    "table": TableConfig,
    "chart": ChartConfig,
    "kpi": KpiConfig,
    "text": TextConfig,
    "links": LinksConfig,
    "form": FormConfig,
    "synthesis": SynthesisConfig,
    "situations": SituationsConfig,
}


class ModuleIn(Strict):
    id: ModuleId
    type: ModuleType
    title: Short = ""
    x: int = Field(default=0, ge=0, lt=COLUMNS)
    y: int = Field(default=0, ge=0, le=500)
    w: int = Field(default=6, ge=1, le=COLUMNS)
    h: int = Field(default=4, ge=1, le=12)
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fits(self) -> ModuleIn:
        if self.x + self.w > COLUMNS:
            raise ValueError(f"x + w must be at most {COLUMNS}")
        return self


class SpaceCreate(Strict):
    title: Title
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    template: Word | None = None  # start from a template (its modules, unless modules are given)
    modules: list[ModuleIn] | None = Field(default=None, max_length=MAX_MODULES)
    label: LabelIn | None = None
    personal: bool = False  # owned by its author (else by the author's organisation)
    people: list[Word] = Field(default_factory=list, max_length=200)  # usernames
    editors: list[Word] = Field(default_factory=list, max_length=50)  # usernames


class SpaceUpdate(Strict):
    """Replaces what is given (the whole module list when ``modules`` is given)."""

    title: Title | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    modules: list[ModuleIn] | None = Field(default=None, max_length=MAX_MODULES)
    label: LabelIn | None = None
    people: list[Word] | None = Field(default=None, max_length=200)
    editors: list[Word] | None = Field(default=None, max_length=50)
    personal: bool | None = None  # owned by the editor making the change, or by its organisation


class SpaceExport(BaseModel):
    """A space as a JSON file (no ids of people: usernames; no label ids: codes)."""

    format: Literal["hypervision.space/1"] = "hypervision.space/1"
    title: str
    description: str
    template: str | None
    modules: list[dict[str, Any]]
    label: LabelRead
    people: list[str]
    editors: list[str]


class SpaceImport(Strict):
    format: Literal["hypervision.space/1"]
    title: Title
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    template: Word | None = None
    modules: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_MODULES)
    label: LabelIn | None = None
    people: list[Word] = Field(default_factory=list, max_length=200)
    editors: list[Word] = Field(default_factory=list, max_length=50)


class ModuleRead(BaseModel):
    id: str
    type: str
    title: str
    x: int
    y: int
    w: int
    h: int
    config: dict[str, Any]
    known: bool  # a type this version knows


class SpaceRead(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    template: str | None
    modules: list[ModuleRead]
    label: LabelRead
    organisation: str
    owner: str | None  # username of the owner person; None: owned by the organisation
    people: list[str]
    editors: list[str]
    status: str
    can_edit: bool
    version: int
    created_at: datetime
    updated_at: datetime


class SpacePage(BaseModel):
    items: list[SpaceRead]
    total: int
    limit: int
    offset: int


class ModuleData(BaseModel):
    """What one module shows a reader. ``status``: ``ok``; ``unavailable`` (its source is
    hidden from this reader or gone: a neutral message, the same either way); ``invalid`` (its
    configuration no longer fits what the reader can read); ``unknown`` (a type this version
    does not know). ``label``: the highest level among what it delivered."""

    module_id: str
    type: str
    status: Literal["ok", "unavailable", "invalid", "unknown"]
    message: str | None = None
    label: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    live: list[str] = Field(default_factory=list)  # live topics that refresh it


class ModulesData(BaseModel):
    """What several modules of one space show a reader, in the order asked (each as
    ``ModuleData``: a module the reader may not see is its neutral placeholder)."""

    items: list[ModuleData]


class TemplateRead(BaseModel):
    code: str
    title: str
    description: str
    modules: int
