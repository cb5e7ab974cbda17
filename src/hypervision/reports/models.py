"""Report schedules and the deliveries they made (docs/adr/0045). No label of their own: a
schedule is a record of its space (visible only with it); a delivery, of its schedule, is
visible with the same space (it names its recipient, the space and the level of the PDF
that recipient got)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.registry import Kind


class ReportSchedule(Base):
    """At each of ``times`` (HH:MM, Europe/Paris), the space's report (all its modules, or
    ``module_ids``) is rendered as each recipient and delivered to them."""

    __tablename__ = "report_schedules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    space_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("spaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    times: Mapped[list[str]] = mapped_column(JSON)
    module_ids: Mapped[list[str]] = mapped_column(JSON)  # empty: every module
    recipients: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"users": [], "organisations": []}
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportDelivery(Base):
    """One recipient at one run: ``delivered`` (with the level of what their PDF held) or
    ``refused`` (they may not read the space: nothing was made for them)."""

    __tablename__ = "report_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    schedule_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("report_schedules.id", ondelete="CASCADE"), index=True
    )
    space_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), index=True)
    via_organisation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # delivered | refused
    level: Mapped[str | None] = mapped_column(String(16))
    email_status: Mapped[str] = mapped_column(String(16), default="none")
    email_error: Mapped[str | None] = mapped_column(String(300))
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Protected kinds (records/registry.py; assembled in kinds.py): a schedule is visible with its
# space, a delivery with its schedule's space (row-level security on PostgreSQL, migration
# 0027).
REPORT_SCHEDULE_KIND = Kind(
    "report_schedule",
    ReportSchedule,
    live=False,
    parent="space",
    parent_key="space_id",
    missing=("Programmation introuvable.", "Schedule not found."),
)
REPORT_DELIVERY_KIND = Kind(
    "report_delivery",
    ReportDelivery,
    live=False,
    parent="space",  # parents are top-level kinds: its space, which its schedule belongs to
    parent_key="space_id",
)
