"""Open data's request and answer shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The EU data themes vocabulary (publications.europa.eu, authority "data-theme").
Theme = Literal[
    "AGRI",
    "ECON",
    "EDUC",
    "ENER",
    "ENVI",
    "GOVE",
    "HEAL",
    "INTR",
    "JUST",
    "OP_DATPRO",
    "REGI",
    "SOCI",
    "TECH",
    "TRAN",
]
LICENCES = {
    "etalab-2.0": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
    "odbl": "https://opendatacommons.org/licenses/odbl/1-0/",
}


class Aggregation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_by: list[str] = Field(min_length=1, max_length=4)
    measures: list[str] = Field(default_factory=lambda: ["count"], min_length=1, max_length=6)
    threshold: int = Field(default=11, ge=1, le=1000)


class PublicationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: uuid.UUID
    slug: str = Field(min_length=2, max_length=63)
    title: str = Field(min_length=1, max_length=160)
    description: str = Field(default="", max_length=10_000)
    keywords: list[str] = Field(default_factory=list, max_length=20)
    themes: list[Theme] = Field(default_factory=list, max_length=5)
    licence: Literal["etalab-2.0", "odbl"] = "etalab-2.0"
    schedule: Literal["manual", "daily", "hourly"] = "manual"
    columns: list[str] = Field(default_factory=list, max_length=200)
    conditions: list[str] = Field(default_factory=list, max_length=20)
    aggregation: Aggregation | None = None


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=2000)


class ReleaseRead(BaseModel):
    number: int
    created_at: datetime
    trigger: str
    row_count: int
    sha256: str
    suppressed: int
    fields: list[dict[str, str]]
    temporal: list[str] | None
    bbox: list[float] | None
    downloads: dict[str, str]


class PublicationRead(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    slug: str
    title: str
    description: str
    keywords: list[str]
    themes: list[str]
    licence: str
    schedule: str
    columns: list[str]
    conditions: list[str]
    aggregation: dict[str, Any] | None
    state: str
    held: bool
    held_reason: str
    proposed_by: uuid.UUID
    proposed_at: datetime
    approved_by: uuid.UUID | None
    approved_at: datetime | None
    withdrawn_at: datetime | None
    withdrawal_reason: str
    release_count: int


class DatasetRead(BaseModel):
    """A public dataset: what a DCAT-AP catalogue needs of it (``hypervision.dcat``)."""

    slug: str
    title: str
    description: str
    keywords: list[str]
    themes: list[str]
    publisher: str
    licence: str
    issued: datetime
    modified: datetime
    schedule: str
    temporal: list[str] | None
    bbox: list[float] | None
    fields: list[dict[str, str]]
    url: str
    releases: list[ReleaseRead]


class DatasetPage(BaseModel):
    total: int
    page: int
    size: int
    datasets: list[DatasetRead]


class RowsPage(BaseModel):
    release: int
    total: int
    page: int
    size: int
    fields: list[dict[str, str]]
    rows: list[dict[str, Any]]
