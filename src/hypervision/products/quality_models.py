"""The checks of data products' quality rules (ADR 0027): one row per run (its figures per
rule), and the failing rows of each product's latest run (their row numbers, so that the
failing rows are listed through the same read path and rules as the product's rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hypervision.db import Base, UTCDateTime, new_id, utcnow
from hypervision.records.registry import Kind


class QualityRun(Base):
    """One check of a product's quality rules: when, why (``trigger``: import, schedule,
    rules, manual), over which data version, and each rule's result (``results``: rule id,
    passed, rows checked, rows failing, score)."""

    __tablename__ = "product_quality_runs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    trigger: Mapped[str] = mapped_column(String(16))
    data_version: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    score: Mapped[float | None] = mapped_column(Float)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_rules: Mapped[int] = mapped_column(Integer, default=0)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class QualityFailure(Base):
    """A row (its ``_row`` number) that failed a rule in the product's latest run; at most
    ``quality.FAILURES_KEPT`` per rule (the run's counts are exact)."""

    __tablename__ = "product_quality_failures"

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("product_quality_runs.id", ondelete="CASCADE"), primary_key=True
    )
    rule_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    row: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_products.id", ondelete="CASCADE"), index=True
    )


QUALITY_RUN_KIND = Kind(
    "product_quality_run", QualityRun, live=False, parent="product", parent_key="product_id"
)
QUALITY_FAILURE_KIND = Kind(
    "product_quality_failure",
    QualityFailure,
    live=False,
    parent="product",
    parent_key="product_id",
)
