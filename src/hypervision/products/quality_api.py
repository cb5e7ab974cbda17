"""Data products' quality API (issue 17, ADR 0027): the stewards' rules, the latest check and its
history, the failing rows of a rule."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.openapi import CREDENTIALS, NOT_FOUND, SIGNED_IN
from hypervision.identity.deps import CurrentPrincipal
from hypervision.products import quality, quality_read
from hypervision.products.quality_models import QualityRun
from hypervision.products.quality_rules import MAX_QUALITY_RULES, QualityRuleIn

router = APIRouter(
    prefix="/api/v1", tags=["data products"], dependencies=CREDENTIALS, responses=SIGNED_IN
)


class QualityRulesChange(BaseModel):
    rules: list[dict[str, Any]] = Field(
        max_length=MAX_QUALITY_RULES,
        description="the whole list of rules (each as QualityRuleIn); [] removes them all",
        json_schema_extra={"items": QualityRuleIn.model_json_schema()},
    )


class RuleFiguresRead(BaseModel):
    rule: dict[str, Any] = Field(description="the rule as stored (id, kind, severity, …)")
    description: str
    passed: bool | None = Field(description="null: not checked yet, or hidden from you")
    checked: int | None = Field(description="rows checked (1 for freshness and row count)")
    failing: int | None
    score: float | None = Field(description="share of checked rows that pass, 0 to 1")
    hidden: bool = Field(description="the rule's field is a column you may not see")


class RunRead(BaseModel):
    at: datetime
    trigger: str = Field(description="import, schedule, rules or manual")
    data_version: int
    row_count: int
    score: float | None
    stale: bool
    failed_rules: int


class QualityRead(BaseModel):
    product_id: uuid.UUID
    scope: str = Field(
        description="product: the product's own figures; reader: the figures of the rows and "
        "columns its rules let you see (ADR 0027)"
    )
    stale: bool
    score: float | None
    last_run: RunRead | None
    rules: list[RuleFiguresRead]
    history: list[RunRead] = Field(description="the latest runs first (product scope only)")


class FailuresRead(BaseModel):
    product_id: uuid.UUID
    rule: str
    version: int
    columns: list[str]
    rows: list[dict[str, Any]]
    next_cursor: str | None


def run_read(run: QualityRun) -> RunRead:
    return RunRead(
        at=run.at,
        trigger=run.trigger,
        data_version=run.data_version,
        row_count=run.row_count,
        score=run.score,
        stale=run.stale,
        failed_rules=run.failed_rules,
    )


def quality_read_of(found: quality_read.QualityView, english: bool = False) -> QualityRead:
    return QualityRead(
        product_id=found.product.id,
        scope=found.scope,
        stale=found.stale,
        score=found.score,
        last_run=run_read(found.run) if found.run is not None else None,
        rules=[
            RuleFiguresRead(
                rule=f.rule.to_tree(),
                description=f.rule.describe(english),
                passed=f.passed,
                checked=f.checked,
                failing=f.failing,
                score=f.score,
                hidden=f.hidden,
            )
            for f in found.figures
        ],
        history=[run_read(r) for r in found.history],
    )


@router.get("/products/{product_id}/quality", response_model=QualityRead, responses=NOT_FOUND)
async def get_quality(
    session: DbSession, settings: SettingsDep, actor: CurrentPrincipal, product_id: uuid.UUID
) -> QualityRead:
    """The product's quality rules, its latest check (a score per rule and for the product),
    its history and whether it is stale. A reader whom the product's rules restrict gets the
    figures of the rows and columns they may see (``scope``: ``reader``)."""
    found = await quality_read.view(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    return quality_read_of(found)


@router.put("/products/{product_id}/quality", response_model=QualityRead, responses=NOT_FOUND)
async def set_quality(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    body: QualityRulesChange,
) -> QualityRead:
    """Replace the product's quality rules (stewards of its domain); they are checked at once.
    A bad rule (unknown field, wrong type for the field, bad regular expression, unknown
    reference product) is refused: 422 with ``error.problems`` (path, French, English)."""
    await quality.set_rules(
        session=session, settings=settings, actor=actor, product_id=product_id, items=body.rules
    )
    found = await quality_read.view(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    return quality_read_of(found)


@router.get(
    "/products/{product_id}/quality/failures", response_model=FailuresRead, responses=NOT_FOUND
)
async def failures(
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    product_id: uuid.UUID,
    rule: Annotated[str, Query(max_length=32, description="a rule's id")],
    after: Annotated[str | None, Query(max_length=24, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=quality_read.PAGE_MAX)] = 50,
) -> FailuresRead:
    """The rows that failed a rule in the latest check, those the product's rules let you see,
    in the columns you may see (keyset pages by row number); 403 when the rule's field is a
    column you may not see."""
    page = await quality_read.failures(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product_id,
        rule_id=rule,
        after=after,
        limit=limit,
    )
    return FailuresRead(
        product_id=page.product.id,
        rule=page.rule.id,
        version=page.version,
        columns=page.columns,
        rows=page.rows,
        next_cursor=page.next_cursor,
    )
