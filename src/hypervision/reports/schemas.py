"""API shapes of reports and their schedules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from hypervision.core.schemas import Strict, Trimmed
from hypervision.synthesis.schemas import HourMinute, Recipients

ModuleId = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class ReportScheduleCreate(Strict):
    name: Annotated[str, Trimmed(120, min_length=1)]
    times: list[HourMinute] = Field(min_length=1, max_length=12)  # Europe/Paris
    modules: list[ModuleId] = Field(default_factory=list, max_length=60)  # empty: all
    recipients: Recipients


class ReportScheduleRead(BaseModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    times: list[str]
    modules: list[str]
    recipients: Recipients
    active: bool
    last_run_at: datetime | None
    created_at: datetime


class ReportDeliveryRead(BaseModel):
    """One report delivered to me: where to read it again (rendered as me, now)."""

    id: uuid.UUID
    space_id: uuid.UUID
    schedule: str
    due_at: datetime
    level: str | None
    link: str
