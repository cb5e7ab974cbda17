"""Data products' quality (issue 17, ADR 0027): stewards declare rules (``quality_rules.py``),
checked over the product's current rows at every import (in the import's transaction: a failing
blocking rule refuses it), on schedule and on demand; each check is a run with a score per
rule and per product, kept as history, and the failing rows of the latest run are listed
through the product's read path, under its stewards' rules."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.errors import Forbidden, Invalid, NotFound
from hypervision.db import utcnow
from hypervision.identity.principal import Principal
from hypervision.policy import rls
from hypervision.products import base, storage
from hypervision.products.checks import show
from hypervision.products.models import DataProduct, ProductVersion
from hypervision.products.quality_models import QualityFailure, QualityRun
from hypervision.products.quality_rules import QualityRule, Target, failing, parse
from hypervision.products.rules import Problem, Reader, RuleError
from hypervision.records import access, versions

FAILURES_KEPT = 10_000  # failing rows kept per rule for the listing (counts are exact)
REPORTED = 100  # failing rows named in a refused import's report
HISTORY = 50


@dataclass
class RuleResult:
    rule: QualityRule
    passed: bool
    checked: int  # rows checked (row rules) or 1
    failing: int
    score: float
    rows: list[int] = field(default_factory=list)  # the first FAILURES_KEPT failing rows
    report: list[dict[str, Any]] = field(default_factory=list)  # the first REPORTED, in words
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.id,
            "passed": self.passed,
            "checked": self.checked,
            "failing": self.failing,
            "score": round(self.score, 6),
            "detail": self.detail,
        }


@dataclass
class Checked:
    results: list[RuleResult]
    row_count: int
    data_version: int

    @property
    def score(self) -> float | None:
        if not self.results:
            return None
        return sum(r.score for r in self.results) / len(self.results)

    @property
    def stale(self) -> bool:
        return any(not r.passed for r in self.results if r.rule.kind == "freshness")


def stored(product: DataProduct) -> list[QualityRule]:
    """The product's rules as stored (validated when they were written)."""
    return parse(product.quality_rules or [], base.field_types(base.schema_of(product)))


def is_stale(rules: Sequence[QualityRule], last_import: datetime | None, now: datetime) -> bool:
    """A freshness rule fails: no data yet, or the last data version is older than it allows."""
    for rule in rules:
        if rule.kind != "freshness" or rule.max_age_minutes is None:
            continue
        if last_import is None or now - last_import > timedelta(minutes=rule.max_age_minutes):
            return True
    return False


async def _last_import(session: AsyncSession, product_id: uuid.UUID) -> datetime | None:
    found: datetime | None = await session.scalar(
        select(func.max(ProductVersion.at)).where(ProductVersion.product_id == product_id)
    )
    return found


# --- checking ------------------------------------------------------------------------------


async def evaluate(
    session: AsyncSession,
    product: DataProduct,
    *,
    now: datetime | None = None,
    data_version: int | None = None,
) -> Checked:
    """Check every rule over the product's current rows. The caller runs it in the system
    context (every row counts, whatever the rules let anyone read). ``data_version``: the
    version an import is writing (its rows are current, the product not yet updated: that
    import is the last update, so it is fresh)."""
    now = now or utcnow()
    schema = base.schema_of(product)
    table = storage.table_of(product.id, schema)
    current = table.c._to.is_(None)
    rows = int(await session.scalar(storage.row_count_query(table)) or 0)
    key = [k for k in schema.primary_key if k in table.c]
    results = []
    for rule in stored(product):
        if rule.kind == "freshness":
            last = now if data_version is not None else await _last_import(session, product.id)
            ok = not is_stale([rule], last, now)
            detail = last.isoformat() if last else ""
            results.append(RuleResult(rule, ok, 1, 0 if ok else 1, float(ok), detail=detail))
            continue
        if rule.kind == "row_count":
            ok = (rule.min is None or rows >= rule.min) and (rule.max is None or rows <= rule.max)
            results.append(RuleResult(rule, ok, 1, 0 if ok else 1, float(ok), detail=str(rows)))
            continue
        target = await _target_table(session, rule)
        predicate = failing(rule, table, target)
        count = int(
            await session.scalar(select(func.count()).select_from(table).where(current, predicate))
            or 0
        )
        result = RuleResult(rule, count == 0, rows, count, (rows - count) / rows if rows else 1.0)
        if count:
            assert rule.field is not None
            found = (
                await session.execute(
                    select(table.c._row, table.c[rule.field], *(table.c[k] for k in key))
                    .where(current, predicate)
                    .order_by(table.c._row)
                    .limit(FAILURES_KEPT)
                )
            ).all()
            result.rows = [int(r[0]) for r in found]
            result.report = [_reported(rule, r[0], r[1], dict(zip(key, r[2:], strict=True)))
                             for r in found[:REPORTED]]  # fmt: skip
        results.append(result)
    version = product.data_version if data_version is None else data_version
    return Checked(results=results, row_count=rows, data_version=version)


async def _target_table(session: AsyncSession, rule: QualityRule) -> Any:
    if rule.kind != "reference" or rule.product is None:
        return None
    other = await session.get(DataProduct, uuid.UUID(rule.product))
    if other is None:
        return None
    return storage.table_of(other.id, base.schema_of(other))


def _reported(rule: QualityRule, row: int, value: Any, key: Mapping[str, Any]) -> dict[str, Any]:
    named = ", ".join(f"{k} = {show(v, 30)}" for k, v in key.items())
    where = f"ligne {row} du produit" + (f" ({named})" if named else "")
    shown = "vide" if value is None else f"« {show(value)} »"
    return {
        "row": int(row),
        "field": rule.field,
        "rule": rule.id,
        "message": f"{where}, champ « {rule.field} » : {shown} — règle {rule.id} "
        f"({rule.describe()})",
    }


async def record(
    session: AsyncSession, product: DataProduct, checked: Checked, trigger: str
) -> QualityRun:
    """Keep a run (its figures per rule) and its failing rows; the failing rows of the
    product's earlier runs go (only the latest run's are listed)."""
    run = QualityRun(
        product_id=product.id,
        at=utcnow(),
        trigger=trigger,
        data_version=checked.data_version,
        row_count=checked.row_count,
        score=checked.score,
        stale=checked.stale,
        failed_rules=sum(1 for r in checked.results if not r.passed),
        results=[r.as_json() for r in checked.results],
    )
    session.add(run)
    await session.flush()
    await session.execute(
        delete(QualityFailure).where(
            QualityFailure.product_id == product.id, QualityFailure.run_id != run.id
        )
    )
    failures = [
        {"run_id": run.id, "rule_id": r.rule.id, "row": row, "product_id": product.id}
        for r in checked.results
        for row in r.rows
    ]
    if failures:
        await session.execute(insert(QualityFailure), failures)
    return run


async def check_import(
    *, session: AsyncSession, settings: Settings, product: DataProduct, data_version: int
) -> list[str]:
    """At an import, in its transaction (system context), after its rows are written as
    ``data_version`` and before the product records it (a refusal leaves the product object
    untouched): a failing blocking rule refuses the whole import (its report names the first
    rows, then counts); failing warnings are returned, in words, and the run is kept."""
    if not product.quality_rules:
        return []
    checked = await evaluate(session, product, data_version=data_version)
    blocking = [r for r in checked.results if not r.passed and r.rule.blocking]
    if blocking:
        raise _refused(blocking)
    await record(session, product, checked, "import")
    return [
        f"Règle de qualité non respectée ({r.rule.describe()}) : {r.failing} ligne(s)."
        if r.rule.per_row
        else f"Règle de qualité non respectée : {r.rule.describe()}."
        for r in checked.results
        if not r.passed
    ]


def _refused(blocking: Sequence[RuleResult]) -> Invalid:
    rows = [line for r in blocking for line in r.report][:REPORTED]
    total = sum(r.failing for r in blocking)
    names = ", ".join(f"{r.rule.id} ({r.rule.describe()})" for r in blocking)
    names_en = ", ".join(f"{r.rule.id} ({r.rule.describe(english=True)})" for r in blocking)
    by_field: dict[str, int] = {}
    for r in blocking:
        name = r.rule.field or ""
        by_field[name] = by_field.get(name, 0) + r.failing
    return Invalid(
        f"Règle(s) de qualité bloquante(s) non respectée(s) : {names} ; rien n'est importé.",
        f"Blocking quality rule(s) failed: {names_en}; nothing is imported.",
        code="quality_refused",
        extra={
            "rows": rows,
            "error_count": total,
            "by_field": by_field,
            "by_rule": {r.rule.id: r.failing for r in blocking},
        },
    )


async def check_now(
    *, session: AsyncSession, product: DataProduct, trigger: str
) -> tuple[Checked, QualityRun]:
    """A check outside an import (system context), kept as a run."""
    checked = await evaluate(session, product)
    return checked, await record(session, product, checked, trigger)


# --- declaring rules -----------------------------------------------------------------------


async def set_rules(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    items: Sequence[Mapping[str, Any]],
) -> DataProduct:
    """New quality rules for a product (stewards of its domain): validated against its schema
    and the products they reference, stored on the product (a new record version, its event,
    its audit record), then checked at once (a run)."""
    product = await base.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    base.check_steward(actor, product)
    targets = await _targets(session, settings, actor, items)
    rules = parse(items, base.field_types(base.schema_of(product)), targets)
    await _check_patterns(session, rules)
    before = versions.snapshot(product)
    product.quality_rules = [r.to_tree() for r in rules]
    product.version += 1
    product.updated_at = utcnow()
    await versions.record_change(
        session=session,
        actor=actor,
        resource_type="product",
        row=product,
        action="quality",
        before=before,
        summary={"quality_rules": [r.id for r in rules]},
    )
    await storage.as_system(session, settings)
    await check_now(session=session, product=product, trigger="rules")
    await rls.bind(session, settings, actor)  # the rest of the request reads as the steward
    return product


async def _targets(
    session: AsyncSession, settings: Settings, actor: Principal, items: Sequence[Any]
) -> dict[str, Target]:
    """The products reference rules name, as the steward sees them (their label and their
    column rules): a product or a key field they may not see is "not found"."""
    found: dict[str, Target] = {}
    for item in items:
        if not isinstance(item, Mapping) or item.get("kind") != "reference":
            continue
        raw = str(item.get("product") or "")
        try:
            other = await base.find_product(
                session=session, settings=settings, actor=actor, product_id=uuid.UUID(raw)
            )
        except (ValueError, NotFound):
            continue
        schema = base.schema_of(other)
        ruleset = base.rules_of(settings, other, schema)
        names = ruleset.visible_columns(Reader.of(settings, actor), list(schema.field_names))
        types = {n: t for n, t in base.field_types(schema).items() if n in names}
        found[raw.lower()] = Target(str(other.id), types, schema.primary_key)
    return found


async def _check_patterns(session: AsyncSession, rules: Sequence[QualityRule]) -> None:
    """PostgreSQL's regular expressions are not Python's: each pattern is tried there too."""
    if access.dialect_of(session) != "postgresql":
        return
    problems = []
    for index, rule in enumerate(rules):
        if rule.pattern is None:
            continue
        try:
            async with session.begin_nested():
                await session.execute(text("SELECT '' ~ :p"), {"p": f"^(?:{rule.pattern})$"})
        except DBAPIError:
            problems.append(
                Problem(
                    f"[{index}].pattern",
                    "expression régulière refusée par PostgreSQL",
                    "regular expression refused by PostgreSQL",
                )
            )
    if problems:
        raise RuleError.of(problems)


# --- reading -------------------------------------------------------------------------------


def full_view(actor: Principal, product: DataProduct) -> bool:
    """Who reads the product's own figures (ADR 0027): its stewards, and everyone when its
    rules restrict no row and no column; others get the figures of what they may see."""
    open_rules = (
        not product.rules.get("rows")
        and product.rules.get("rows_default", "allow") == "allow"
        and not product.rules.get("columns")
    )
    if open_rules:
        return True
    try:
        base.check_steward(actor, product)
    except Forbidden:
        return False
    return True


def latest_runs(product_ids: Sequence[uuid.UUID]) -> Select[QualityRun]:
    newest = (
        select(QualityRun.product_id, func.max(QualityRun.at).label("at"))
        .where(QualityRun.product_id.in_(product_ids))
        .group_by(QualityRun.product_id)
        .subquery()
    )
    return select(QualityRun).join(
        newest, (QualityRun.product_id == newest.c.product_id) & (QualityRun.at == newest.c.at)
    )


@dataclass
class Summary:
    """What every reader of a product sees of its quality (catalogue, product, map)."""

    rules: int
    stale: bool
    score: float | None  # None: no run yet, or not for this reader (ADR 0027)
    failed_rules: int | None
    checked_at: datetime | None


async def summaries(
    *, session: AsyncSession, actor: Principal, products: Sequence[DataProduct]
) -> dict[uuid.UUID, Summary]:
    """The quality summary of each of ``products`` (already read through the policy and
    audited) that has quality rules; staleness is computed now."""
    ruled = [p for p in products if p.quality_rules]
    if not ruled:
        return {}
    runs = {r.product_id: r for r in await session.scalars(latest_runs([p.id for p in ruled]))}
    imports = await base.last_imports(session=session, products=ruled)
    now = utcnow()
    out = {}
    for product in ruled:
        run = runs.get(product.id)
        full = full_view(actor, product) and run is not None
        out[product.id] = Summary(
            rules=len(product.quality_rules),
            stale=is_stale(stored(product), imports.get(product.id), now),
            score=run.score if full and run is not None else None,
            failed_rules=run.failed_rules if full and run is not None else None,
            checked_at=run.at if run is not None else None,
        )
    return out
