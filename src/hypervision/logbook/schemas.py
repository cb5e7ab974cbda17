"""API shapes of the main courante: entries, situations, comments, attachments, versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from hypervision.core.schemas import Instant, Strict, Trimmed
from hypervision.logbook.models import Severity, Status
from hypervision.records.schemas import LabelIn, LabelRead

Title = Annotated[str, Trimmed(200, min_length=1)]
Body = Annotated[str, StringConstraints(max_length=20_000)]
CommentBody = Annotated[str, Trimmed(5_000, min_length=1)]
Tag = Annotated[
    str,
    Trimmed(40, to_lower=True, min_length=1),
]
Code = Annotated[str, Trimmed(32, min_length=1)]
# strict: a JSON number, never ``true``/``false`` (which Pydantic would take for 1 and 0)
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, strict=True)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, strict=True)]
Position = tuple[Lon, Lat]


class Point(Strict):
    type: Literal["Point"]
    coordinates: Position


class LineString(Strict):
    type: Literal["LineString"]
    coordinates: list[Position] = Field(min_length=2, max_length=5_000)


class Polygon(Strict):
    type: Literal["Polygon"]
    coordinates: list[list[Position]] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _closed_rings(self) -> Polygon:
        for ring in self.coordinates:
            if len(ring) < 4 or ring[0] != ring[-1]:
                raise ValueError(
                    "each ring needs at least 4 positions, the last equal to the first"
                )
            if len(ring) > 5_000:
                raise ValueError("a ring has at most 5000 positions")
        return self


Geometry = Annotated[Point | LineString | Polygon, Field(discriminator="type")]


class EntryCreate(Strict):
    title: Title
    body: Body = ""
    category: Code
    severity: Severity = Severity.INFO
    status: Status = Status.OPEN
    occurred_at: Instant | None = None
    location: Geometry | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    situation_id: uuid.UUID | None = None
    follow_up_of_id: uuid.UUID | None = None
    label: LabelIn | None = None


class EntryUpdate(Strict):
    """Fields a writer may correct. Label, owner and author are never taken from here."""

    title: Title | None = None
    body: Body | None = None
    category: Code | None = None
    status: Status | None = None
    occurred_at: Instant | None = None
    location: Geometry | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)


class EntryPatch(EntryUpdate):
    """What PATCH accepts on the wire: unknown fields are kept so that an attempt to change the
    label here can be answered 403 (SECURITY.md item 3) rather than a bare 422."""

    model_config = ConfigDict(extra="allow")


class EntryRead(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    recorded_at: datetime
    updated_at: datetime
    author: str
    author_name: str  # the author's display name (``author`` is the login)
    organisation: str
    category: str
    severity: Severity
    status: Status
    title: str
    body: str
    body_html: str
    location: dict[str, Any] | None
    tags: list[str]
    situation_id: uuid.UUID | None
    duplicate_of_id: uuid.UUID | None
    follow_up_of_id: uuid.UUID | None
    validated_at: datetime | None
    validated_by: str | None
    label: LabelRead
    version: int


class EntryPage(BaseModel):
    items: list[EntryRead]
    next_cursor: str | None


class EntryAggregateRead(BaseModel):
    """Counts of the entries you may see, per group (``logbook.aggregates``)."""

    group_by: str | None = Field(description="category, severity, status or organisation_id")
    bucket: str | None = Field(description="hour, day or week of occurred_at (Paris time)")
    groups: list[dict[str, str | int | None]] = Field(
        description="one per group: the group_by field's value, 'bucket' (ISO moment of the "
        "bucket's start, with its offset) and 'count'; ordered by bucket, then severities "
        "from info to critical, statuses as they run, categories as configured"
    )
    total: int = Field(description="entries counted")
    levels: list[str] = Field(description="label levels of the entries counted")


class VersionRead(BaseModel):
    version: int
    at: datetime
    actor: str | None
    action: str
    changes: dict[str, Any]
    snapshot: dict[str, Any]


class SeverityChange(Strict):
    severity: Severity


class DuplicateMark(Strict):
    duplicate_of: uuid.UUID


class SituationLink(Strict):
    situation_id: uuid.UUID | None


class LabelChange(Strict):
    label: LabelIn
    reason: Annotated[str, Trimmed(500)] = ""


class LabelRequestRead(BaseModel):
    id: uuid.UUID
    resource_type: str
    resource_id: uuid.UUID
    requested_by: str
    requested_at: datetime
    label: LabelRead
    reason: str
    status: str
    decided_by: str | None
    decided_at: datetime | None


class LabelChangeResult(BaseModel):
    applied: bool
    entry: EntryRead | None = None
    request: LabelRequestRead | None = None


class SituationCreate(Strict):
    title: Title
    description: Body = ""
    severity: Severity = Severity.MINOR
    started_at: Instant | None = None
    label: LabelIn | None = None


class SituationUpdate(Strict):
    title: Title | None = None
    description: Body | None = None
    severity: Severity | None = None
    status: Status | None = None


class SituationRead(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    severity: Severity
    status: Status
    started_at: datetime
    organisation: str
    author: str
    author_name: str  # the author's display name (``author`` is the login)
    label: LabelRead
    version: int


class TimelineItem(BaseModel):
    at: datetime
    kind: Literal["entry", "situation_version"]
    entry: EntryRead | None = None
    version: VersionRead | None = None


class CommentCreate(Strict):
    body: CommentBody
    label: LabelIn | None = None


class CommentRead(BaseModel):
    id: uuid.UUID
    entry_id: uuid.UUID
    author: str
    author_name: str  # the author's display name (``author`` is the login)
    organisation: str
    body: str
    body_html: str
    created_at: datetime
    label: LabelRead


class AttachmentRead(BaseModel):
    id: uuid.UUID
    entry_id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    created_at: datetime
