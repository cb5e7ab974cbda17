"""Derived products' own records (ADR 0028): the definition a derived product is computed
from, and the edges from each derived product to its sources (its lineage)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Uuid, false
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, utcnow
from hypervision.records.registry import Kind


class ProductDerivation(Base):
    """How a derived product is computed: its definition (``derived.Definition`` as JSON),
    the steward whose rights read its sources (``defined_by``), the source data versions of
    its last computation, and the last failure (None once a computation succeeds). A product
    drawn whole from a source its rules restrict ``needs_release``: only its domain's stewards
    read it until a second steward releases it (``released_by``, ``released_at``)."""

    __tablename__ = "product_derivations"

    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE"), primary_key=True
    )
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    defined_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    defined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    computed_from: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    failure: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    needs_release: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    released_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id"), nullable=True
    )
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def withheld(self) -> bool:
        """Readable by its domain's stewards only, until a second steward releases it."""
        return self.needs_release and self.released_at is None


class ProductInput(Base):
    """One edge of the lineage: ``derived_id`` is computed from ``source_id``. Visible with
    the derived product (its parent)."""

    __tablename__ = "product_inputs"

    derived_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id"), primary_key=True, index=True
    )


PRODUCT_DERIVATION_KIND = Kind(
    "product_derivation",
    ProductDerivation,
    live=False,
    parent="product",
    parent_key="product_id",
)
PRODUCT_INPUT_KIND = Kind(
    "product_input", ProductInput, live=False, parent="product", parent_key="derived_id"
)
