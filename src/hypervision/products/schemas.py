"""What the data products API takes and gives."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from hypervision.records.schemas import LabelIn, LabelRead


class ProductCreate(BaseModel):
    slug: str = Field(min_length=2, max_length=63, description="lower-case letters, digits, -")
    name: str = Field(min_length=1, max_length=160)
    description: str = Field(default="", max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=20)
    table_schema: dict[str, Any] = Field(description="a Frictionless Table Schema")
    rules: dict[str, Any] | None = Field(
        default=None, description="the stewards' rule tree (rows, rows_default, columns)"
    )
    label: LabelIn | None = None


class QualitySummaryRead(BaseModel):
    """A product's quality in brief (ADR 0027)."""

    rules: int = Field(description="how many quality rules its stewards declared")
    stale: bool = Field(description="a freshness rule fails: the data is older than promised")
    score: float | None = Field(
        description="share of checks passed in the latest run, 0 to 1 (null: not checked yet, "
        "or its rules restrict what you see: see GET /products/{id}/quality)"
    )
    failed_rules: int | None
    checked_at: datetime | None


class ProductRead(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    description: str
    tags: list[str]
    status: str
    successor_id: uuid.UUID | None
    domain: str = Field(description="the owner organisation's code")
    table_schema: dict[str, Any]
    rules: dict[str, Any]
    data_version: int
    row_count: int
    label: LabelRead
    created_at: datetime
    updated_at: datetime
    version: int
    quality: QualitySummaryRead | None = Field(
        default=None, description="present when the product has quality rules"
    )


class VersionRead(BaseModel):
    number: int
    at: datetime
    author: str | None
    mode: str
    source: dict[str, Any]
    rows_added: int
    rows_changed: int
    rows_removed: int
    row_count: int
    schema_changes: list[str]


class ImportRead(BaseModel):
    product: ProductRead
    version: VersionRead
    warnings: list[str]


class RowsRead(BaseModel):
    product_id: uuid.UUID
    version: int
    columns: list[str]
    hidden_columns: list[str] = Field(description="fields the stewards' rules hide from you")
    rows: list[dict[str, Any]]
    next_cursor: str | None


class AggregateRead(BaseModel):
    product_id: uuid.UUID
    version: int
    group_by: list[str]
    measures: list[str]
    rows: list[dict[str, Any]]


class StatusChange(BaseModel):
    status: str = Field(description="draft, active or deprecated")
    successor_id: uuid.UUID | None = None


class SchemaChange(BaseModel):
    table_schema: dict[str, Any] = Field(description="the whole new Frictionless Table Schema")


class SchemaChanged(BaseModel):
    product: ProductRead
    changes: list[str] = Field(description="what changed, one French sentence per change")


class RulesChange(BaseModel):
    rules: dict[str, Any]
    reason: str = Field(default="", max_length=2000)


class RuleChangeRead(BaseModel):
    id: uuid.UUID
    status: str
    rules: dict[str, Any]
    reason: str
    proposed_by: str | None
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None


class RulesAnswer(BaseModel):
    product: ProductRead
    pending: RuleChangeRead | None = Field(
        description="set when the change may widen access: it waits for a second steward"
    )


class Decision(BaseModel):
    approve: bool
