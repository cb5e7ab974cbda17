"""Reading a data product's quality (ADR 0027): its rules, its latest run and history, and the
failing rows of a rule. Failing rows are product rows: they are read like ``GET /rows``, under
the product's label and its stewards' row and column rules; a rule over a column the reader
may not see shows no figure and lists no row (403, as a filter on that column would). A reader
whom the rules restrict gets the figures of what they may see, not the product's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Forbidden, Invalid, NotFound
from hypervision.db import utcnow
from hypervision.identity.principal import Principal
from hypervision.products import derived, service
from hypervision.products.models import DataProduct
from hypervision.products.quality import (
    HISTORY,
    full_view,
    is_stale,
    latest_runs,
    stored,
)
from hypervision.products.quality_models import QualityFailure, QualityRun
from hypervision.products.quality_rules import QualityRule
from hypervision.records import access

PAGE_MAX = 500


@dataclass
class RuleFigures:
    rule: QualityRule
    passed: bool | None  # None: not checked yet, or hidden from this reader
    checked: int | None
    failing: int | None
    score: float | None
    hidden: bool  # the rule's field is a column this reader may not see


@dataclass
class QualityView:
    product: DataProduct
    scope: str  # "product": the product's own figures; "reader": those of what you may see
    stale: bool
    score: float | None
    run: QualityRun | None
    figures: list[RuleFigures]
    history: list[QualityRun]


def _reading(
    settings: Settings, actor: Principal, product: DataProduct, session: AsyncSession,
    run: QualityRun | None,
) -> service._Reading:  # fmt: skip
    version = None
    if run is not None and 0 < run.data_version < product.data_version:
        version = run.data_version
    return service._Reading(settings, actor, product, access.dialect_of(session), version)


async def view(
    *, session: AsyncSession, settings: Settings, actor: Principal, product_id: uuid.UUID
) -> QualityView:
    """The product's quality as this reader may see it (one audit record)."""
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    rules = stored(product)
    history = list(
        await session.scalars(
            select(QualityRun)
            .where(QualityRun.product_id == product.id)
            .order_by(QualityRun.at.desc())
            .limit(HISTORY)
        )
    )
    run = history[0] if history else None
    imports = await service.last_imports(session=session, products=[product])
    stale = is_stale(rules, imports.get(product.id), utcnow())
    full = full_view(actor, product)
    results = {r["rule"]: r for r in (run.results if run else [])}
    figures: list[RuleFigures] = []
    score: float | None = run.score if run is not None else None
    if full:
        for rule in rules:
            got = results.get(rule.id)
            figures.append(RuleFigures(
                rule, got["passed"] if got else None, got["checked"] if got else None,
                got["failing"] if got else None, got["score"] if got else None, False,
            ))  # fmt: skip
    else:
        figures, score = await _reader_figures(session, settings, actor, product, rules, run)
    await audit.record(
        session=session,
        actor=actor,
        action="product.quality_read",
        resource_type="product",
        resource_ids=[product.id],
        labels=[product.label_level],
        detail={"scope": "product" if full else "reader", "runs": len(history)},
    )
    return QualityView(
        product=product,
        scope="product" if full else "reader",
        stale=stale,
        score=score,
        run=run,
        figures=figures,
        history=history if full else [],
    )


async def _reader_figures(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product: DataProduct,
    rules: list[QualityRule],
    run: QualityRun | None,
) -> tuple[list[RuleFigures], float | None]:
    """Figures over the rows and columns this reader may see: rows counted under their rules,
    failing rows those of the run's kept failures they may see."""
    reading = _reading(settings, actor, product, session, run)
    results = {r["rule"]: r for r in (run.results if run else [])}
    seen = 0
    failing: dict[str, int] = {}
    if run is not None:
        table = reading.table
        seen = int(
            await session.scalar(select(func.count()).select_from(table).where(*reading.where)) or 0
        )
        query = (
            select(QualityFailure.rule_id, func.count())
            .join(table, table.c._row == QualityFailure.row)
            .where(QualityFailure.run_id == run.id, *reading.where)
            .group_by(QualityFailure.rule_id)
        )
        failing = {rule_id: int(n) for rule_id, n in (await session.execute(query)).all()}
    figures = []
    for rule in rules:
        got = results.get(rule.id)
        hidden = rule.field is not None and rule.field not in reading.columns
        if got is None or hidden:
            figures.append(RuleFigures(rule, None, None, None, None, hidden))
        elif rule.per_row:
            bad = failing.get(rule.id, 0)
            share = (seen - bad) / seen if seen else 1.0
            figures.append(RuleFigures(rule, bad == 0, seen, bad, share, False))
        else:  # freshness and row count: facts about the product, not about rows
            figures.append(RuleFigures(rule, got["passed"], 1, got["failing"], got["score"], False))
    scores = [f.score for f in figures if f.score is not None]
    return figures, (sum(scores) / len(scores) if scores else None)


@dataclass
class FailuresPage:
    product: DataProduct
    rule: QualityRule
    version: int
    columns: list[str]
    rows: list[dict[str, Any]]
    next_cursor: str | None


async def failures(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    rule_id: str,
    after: str | None = None,
    limit: int = 50,
) -> FailuresPage:
    """A page (keyset, by row number) of the rows that failed ``rule_id`` in the latest run,
    those the reader may see, in the columns they may see; one audit record per query."""
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    await derived.check_reader(session=session, settings=settings, actor=actor, product=product)
    rule = next((r for r in stored(product) if r.id == rule_id), None)
    if rule is None:
        raise NotFound("Règle de qualité introuvable.", "Quality rule not found.")
    if not rule.per_row:
        raise Invalid(
            "Cette règle porte sur tout le produit : elle ne désigne pas de lignes.",
            "This rule is about the whole product: it names no rows.",
            extra={"fields": [{"field": "rule", "message": "no rows"}]},
        )
    run = await session.scalar(latest_runs([product.id]))
    reading = _reading(settings, actor, product, session, run)
    if rule.field not in reading.columns:
        raise Forbidden(
            f"Le champ « {rule.field} » ne vous est pas accessible (règle {rule.id}).",
            f"The field {rule.field!r} is not available to you (rule {rule.id}).",
        )
    table = reading.table
    start = 0
    if after:
        try:
            start = int(after)
        except ValueError:
            raise Invalid(
                "Curseur de pagination invalide.",
                "Invalid pagination cursor.",
                extra={"fields": [{"field": "after", "message": "invalid"}]},
            ) from None
    limit = max(1, min(limit, PAGE_MAX))
    rows: list[dict[str, Any]] = []
    more = False
    if run is not None:
        kept = select(QualityFailure.row).where(
            QualityFailure.run_id == run.id, QualityFailure.rule_id == rule.id
        )
        query = (
            select(table.c._row, *(table.c[n] for n in reading.columns))
            .where(*reading.where, table.c._row.in_(kept), table.c._row > start)
            .order_by(table.c._row)
            .limit(limit + 1)
        )
        found = (await session.execute(query)).all()
        more = len(found) > limit
        rows = [
            {"_row": r[0], **{n: service._plain(v) for n, v in zip(reading.columns, r[1:],
                                                                  strict=True)}}
            for r in found[:limit]
        ]  # fmt: skip
    await audit.record(
        session=session,
        actor=actor,
        action="product.quality_failures",
        resource_type="product",
        resource_ids=[product.id],
        labels=[product.label_level],
        detail={
            "data_version": run.data_version if run else product.data_version,
            "predicate": reading.fingerprint({"quality_rule": rule.id, "after": after}),
            "rows": len(rows),
            "columns": reading.columns,
        },
    )
    return FailuresPage(
        product=product,
        rule=rule,
        version=run.data_version if run else product.data_version,
        columns=reading.columns,
        rows=rows,
        next_cursor=str(rows[-1]["_row"]) if more and rows else None,
    )
