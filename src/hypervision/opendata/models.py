"""Open data's records (ADR 0035): a publication of a data product as a public dataset, its
releases (immutable), and the rows each release holds. All three belong to the published
product (kinds with the product as parent): visible with it, so a publication never outlives
its product's label — a product raised above the public principal takes its dataset with it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.registry import Kind


class PublicationState(enum.StrEnum):
    PROPOSED = "proposed"  # waiting for a second steward of the domain
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class Schedule(enum.StrEnum):
    MANUAL = "manual"
    DAILY = "daily"
    HOURLY = "hourly"


class Licence(enum.StrEnum):
    ETALAB_2 = "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"
    ODBL = "https://opendatacommons.org/licenses/odbl/1-0/"


class Publication(Base):
    """A data product published as a public dataset: what is published (columns, filter,
    aggregation with small-count suppression), how (licence, schedule, words), who proposed
    and who approved it (four eyes), and whether it is held (the product's schema changed
    after publication) or withdrawn (with the reason every public URL then answers)."""

    __tablename__ = "opendata_publications"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE"), index=True
    )
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(160))
    description: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)  # EU data themes: TRAN, HEAL…
    licence: Mapped[str] = mapped_column(String(200), default=Licence.ETALAB_2.value)
    schedule: Mapped[str] = mapped_column(String(16), default=Schedule.MANUAL.value)
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    conditions: Mapped[list[str]] = mapped_column(JSON, default=list)  # field:op:value
    aggregation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default=PublicationState.PROPOSED.value)
    source_schema: Mapped[str] = mapped_column(String(64), default="")  # fingerprint
    held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    held_reason: Mapped[str] = mapped_column(Text, default="")
    proposed_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawal_reason: Mapped[str] = mapped_column(Text, default="")
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_count: Mapped[int] = mapped_column(Integer, default=0)


class Release(Base):
    """One release of a publication: written once, never rewritten. ``fields`` is its Table
    Schema's fields (name, type); ``sha256`` the checksum of its CSV distribution."""

    __tablename__ = "opendata_releases"
    __table_args__ = (UniqueConstraint("publication_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    publication_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("opendata_publications.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    trigger: Mapped[str] = mapped_column(String(16))  # approval, manual, schedule
    source_version: Mapped[int] = mapped_column(Integer)
    fields: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    row_count: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    suppressed: Mapped[int] = mapped_column(Integer, default=0)  # cells suppressed
    temporal: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # [min, max]
    bbox: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)  # [w, s, e, n]


class ReleaseRow(Base):
    """One row of a release, as JSON (field -> value)."""

    __tablename__ = "opendata_rows"

    release_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("opendata_releases.id", ondelete="CASCADE"), primary_key=True
    )
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE")
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


PUBLICATION_KIND = Kind(
    "opendata_publication",
    Publication,
    live=False,
    parent="product",
    parent_key="product_id",
    missing=("Jeu de données introuvable.", "Dataset not found."),
)
RELEASE_KIND = Kind(
    "opendata_release", Release, live=False, parent="product", parent_key="product_id"
)
RELEASE_ROW_KIND = Kind(
    "opendata_row", ReleaseRow, live=False, parent="product", parent_key="product_id"
)
