"""Data products: a domain's table, labelled like every record, with its schema, its stewards'
rules and its versions. The rows themselves live in one table per product (``storage.py``,
ADR 0026); these are the product's own records."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.labels import Labelled
from hypervision.records.models import LABEL_FIELDS, Versioned
from hypervision.records.registry import Kind


class ProductStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    DEPRECATED = "deprecated"


class ImportMode(enum.StrEnum):
    REPLACE = "replace"  # the file is the whole product
    APPEND = "append"  # the file's rows are added
    UPSERT = "upsert"  # rows with a known key replace theirs, the others are added


class DataProduct(Labelled, Versioned, Base):
    """A product of a domain (its owner organisation): what it is, its Table Schema, the rules
    its stewards wrote over its rows and columns, its life cycle. ``data_version`` is the
    number of its current data version (0: no data yet)."""

    __tablename__ = "data_products"
    SNAPSHOT_FIELDS = (
        "slug",
        "name",
        "description",
        "tags",
        "status",
        "successor_id",
        "table_schema",
        "rules",
        "data_version",
        "row_count",
        "quality_rules",
        *LABEL_FIELDS,
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(160))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=ProductStatus.DRAFT.value)
    successor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    table_schema: Mapped[dict[str, Any]] = mapped_column(JSON)  # a Frictionless Table Schema
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)  # the stewards' rule tree (rules.py)
    # The stewards' quality rules (quality_rules.py), checked at every import and on schedule.
    quality_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    data_version: Mapped[int] = mapped_column(Integer, default=0)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    @property
    def storage_table(self) -> str:
        return storage_table_name(self.id)


def storage_table_name(product_id: uuid.UUID) -> str:
    """The table of a product's rows: derived from its id, never from anything a person typed."""
    return f"dp_{product_id.hex}"


class ProductVersion(Base):
    """One data version of a product: who, when, how (import mode, source file), what it
    changed (rows added, changed, removed; schema changes) and how many rows it left."""

    __tablename__ = "product_versions"
    __table_args__ = (UniqueConstraint("product_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    mode: Mapped[str] = mapped_column(String(16))
    source: Mapped[dict[str, Any]] = mapped_column(JSON)  # file name, format, encoding, …
    rows_added: Mapped[int] = mapped_column(Integer, default=0)
    rows_changed: Mapped[int] = mapped_column(Integer, default=0)
    rows_removed: Mapped[int] = mapped_column(Integer, default=0)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    schema_changes: Mapped[list[str]] = mapped_column(JSON, default=list)


PRODUCT_KIND = Kind(
    "product",
    DataProduct,
    live=True,
    missing=("Produit de données introuvable.", "Data product not found."),
)
PRODUCT_VERSION_KIND = Kind(
    "product_version", ProductVersion, live=False, parent="product", parent_key="product_id"
)


class RuleChangeStatus(enum.StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


class ProductRuleChange(Base):
    """A change of a product's rules that may widen access: it waits for a second steward of
    the domain (four eyes) before it applies."""

    __tablename__ = "product_rule_changes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE"), index=True
    )
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=RuleChangeStatus.PENDING.value)
    proposed_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


PRODUCT_RULE_CHANGE_KIND = Kind(
    "product_rule_change",
    ProductRuleChange,
    live=False,
    parent="product",
    parent_key="product_id",
)
