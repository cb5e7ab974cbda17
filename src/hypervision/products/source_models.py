"""A product's HTTP source (docs/adr/0029): a URL its stewards point it at, fetched on a
schedule and imported through the normal import path, and the history of its runs. Both
belong to their product (visible with it; the API shows them to its stewards only)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.registry import Kind


class SourceFormat(enum.StrEnum):
    CSV = "csv"
    JSON = "json"
    GEOJSON = "geojson"


class RunStatus(enum.StrEnum):
    IMPORTED = "imported"  # a new data version
    UNCHANGED = "unchanged"  # same ETag, Last-Modified or content as the last import
    FAILED = "failed"  # nothing written; ``error`` says why


class RunTrigger(enum.StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"  # "run now" (web or API)
    CLI = "cli"


class ProductSource(Base):
    """One source per product. Runs act as ``owner_id``, the steward who last set it: their
    rights are checked again at every run."""

    __tablename__ = "product_sources"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE"), unique=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    format: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    interval_minutes: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # What the last imported response was, to skip an unchanged one.
    etag: Mapped[str | None] = mapped_column(String(200))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ProductSourceRun(Base):
    """One fetch of a source: when, how it ended, the HTTP status, the rows read, how long it
    took and, when it failed, why in words (never the response's content)."""

    __tablename__ = "product_source_runs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer)
    rows: Mapped[int | None] = mapped_column(Integer)
    data_version: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text, default="")
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


PRODUCT_SOURCE_KIND = Kind(
    "product_source", ProductSource, live=False, parent="product", parent_key="product_id"
)
PRODUCT_SOURCE_RUN_KIND = Kind(
    "product_source_run", ProductSourceRun, live=False, parent="product", parent_key="product_id"
)
