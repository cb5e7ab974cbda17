"""Derived products (ADR 0028): products computed from others by a declarative definition
(``definition.py``), recomputed as a new data version whenever a source gets one.

Security: a derived product never widens what a reader may see of its sources.
- Its label dominates every source's (``derived_labels.py``), checked at creation and at
  every computation.
- The defining steward's rights read the sources at each computation: a source of the
  steward's own domain is read whole (the domain owns both), a source of another domain
  through the policy and that source's rules for the steward. A computation that can no
  longer read a source (steward gone, source hidden, field hidden, label no longer
  dominated) fails: nothing is written, the failure is stored, audited and announced.
- A reader of a derived product drawn from another domain's source must, at each read, see
  that source and every field used from it, and its row rules must show them every row
  they showed the steward (``check_reader``); else 403.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pyarrow as pa
from sqlalchemy import and_, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import AppError, Conflict, Forbidden, NotFound
from hypervision.db import utcnow
from hypervision.events.outbox import emit
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.policy import rls
from hypervision.policy.roles import Role
from hypervision.policy.rules import Subject, can_see
from hypervision.products import base, derived_labels, storage
from hypervision.products import definition as defs
from hypervision.products.derived_models import ProductDerivation, ProductInput
from hypervision.products.models import PRODUCT_KIND, DataProduct, ProductVersion
from hypervision.products.rules import Reader
from hypervision.records import access, versions

ARROW = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "geometry": pa.string(),
}
MAX_CASCADE = 200  # derived products recomputed after one change


@asynccontextmanager
async def system_context(session: AsyncSession, settings: Settings) -> AsyncIterator[None]:
    """The system context for the block (PostgreSQL), then the caller's own context back
    exactly as it was (a request's reader, or the system of a loader)."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    before = await session.scalar(select(func.current_setting(rls.SETTING, True)))
    await storage.as_system(session, settings)
    yield
    await rls.set_context(session, before or "")


async def derivation_of(session: AsyncSession, product_id: uuid.UUID) -> ProductDerivation | None:
    found: ProductDerivation | None = await session.scalar(
        select(ProductDerivation).where(ProductDerivation.product_id == product_id)
    )
    return found


# --- computing -------------------------------------------------------------------------------


async def sources_for(
    session: AsyncSession,
    settings: Settings,
    steward: Principal,
    owner: str,
    parsed: defs.Definition,
    *,
    creating: bool,
) -> list[defs.Source]:
    """Each source as the steward may read it now (own domain: whole)."""
    subject = Subject.of(settings, steward)
    dialect = session.get_bind().dialect.name
    found: list[defs.Source] = []
    for i, (ref, alias) in enumerate(zip(parsed.sources, parsed.aliases(), strict=True)):
        try:
            visible = access.visible(session, settings, steward, DataProduct)
            product = await access.find_in(session, visible, PRODUCT_KIND, ref.product)
        except NotFound:
            product = None
        # The label again in Python: the SQL filter may be off (the leak matrix's RLS run).
        if product is None or not can_see(subject, product.label):
            if creating:
                raise defs.bad(f"definition.sources[{i}].product", "produit inconnu.",
                               "unknown product.")  # fmt: skip
            raise Forbidden(
                "Une source n'est plus lisible par le gestionnaire qui a défini ce produit.",
                "A source is no longer readable by the defining steward.",
            )
        source = defs.source_of(product, alias)
        if str(product.organisation_id) != owner:
            rules = defs.rules_of(settings, product, defs.schema_of(product))
            reader = Reader.of(settings, steward)
            source.readable = rules.visible_columns(reader, source.readable)
            columns = {n: source.table.c[n] for n in source.types}
            source.where.append(rules.row_filter(reader, columns, dialect))
        found.append(source)
    return found


def _plain(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "geometry":
        return value if isinstance(value, str) else json.dumps(value)
    return value


def _arrow(plan: defs.Plan, rows: Sequence[Sequence[Any]]) -> pa.Table:
    columns = {}
    for index, output in enumerate(plan.outputs):
        kind = output.descriptor["type"]
        values = [_plain(kind, r[index]) for r in rows]
        columns[output.name] = pa.array(values, type=ARROW[kind])
    return pa.table(columns) if columns else pa.table({})


def _reader_tree(reader: Reader) -> dict[str, Any]:
    return {
        "organisation": reader.organisation,
        "ancestors": sorted(reader.ancestors),
        "groups": sorted(reader.groups),
        "clearance_rank": reader.clearance_rank,
        "roles": sorted(reader.roles),
    }


def _reader_of(tree: Mapping[str, Any]) -> Reader:
    return Reader(
        organisation=tree.get("organisation"),
        ancestors=frozenset(tree.get("ancestors", ())),
        groups=frozenset(tree.get("groups", ())),
        clearance_rank=int(tree.get("clearance_rank", -1)),
        roles=frozenset(tree.get("roles", ())),
    )


async def compute(
    session: AsyncSession,
    settings: Settings,
    steward: Principal,
    product: DataProduct,
    derivation: ProductDerivation,
    trigger: str,
) -> ProductVersion:
    """Read the sources as ``steward`` may, write the result as the next data version."""
    parsed = defs.parse(derivation.definition)
    owner = str(product.organisation_id)
    sources = await sources_for(session, settings, steward, owner, parsed, creating=False)
    lineage = await derived_labels.ancestries(
        session, {owner, *product.audience, *(a for s in sources for a in s.product.audience)}
    )
    for source in sources:
        if derived_labels.problems(settings, product.label, source.product.label, lineage):
            raise Forbidden(
                "Le marquage de ce produit dérivé ne couvre plus celui d'une source.",
                "This derived product's label no longer covers a source's.",
            )
    plan = defs.compile_plan(parsed, sources)
    expected = [(f["name"], f["type"]) for f in product.table_schema.get("fields", [])]
    if [(o.name, o.descriptor["type"]) for o in plan.outputs] != expected:
        raise Conflict("La définition ne donne plus le schéma du produit dérivé.",
                       "The definition no longer yields the derived product's schema.")  # fmt: skip
    rows = (await session.execute(plan.query)).all()  # in the system context: see ADR 0028
    if len(rows) > defs.MAX_ROWS:
        raise Conflict(f"Plus de {defs.MAX_ROWS} lignes : affinez la définition.",
                       f"More than {defs.MAX_ROWS} rows: narrow the definition.")  # fmt: skip
    for source in sources:
        await audit.record(
            session=session,
            actor=steward,
            action="product.derive_read",
            resource_type="product",
            resource_ids=[source.product.id, product.id],
            labels=[source.product.label_level],
            detail={
                "data_version": source.product.data_version,
                "columns": sorted(source.used),
                "whole": str(source.product.organisation_id) == owner,
            },
        )
    return await _write(
        session, settings, steward, product, derivation, plan, rows, sources, trigger
    )


async def _write(
    session: AsyncSession,
    settings: Settings,
    steward: Principal,
    product: DataProduct,
    derivation: ProductDerivation,
    plan: defs.Plan,
    rows: Sequence[Sequence[Any]],
    sources: Sequence[defs.Source],
    trigger: str,
) -> ProductVersion:
    await session.scalar(
        select(DataProduct.id).where(DataProduct.id == product.id).with_for_update()
    )
    before = versions.snapshot(product)
    number = product.data_version + 1
    table = storage.table_of(product.id, defs.schema_of(product))
    counts = await storage.load(
        session, table, _arrow(plan, rows), mode="replace", version=number, key=plan.primary_key
    )
    row_count = int(await session.scalar(storage.row_count_query(table)) or 0)
    version = ProductVersion(
        product_id=product.id,
        number=number,
        at=utcnow(),
        actor_id=steward.user_id,
        mode="derive",
        source={"derived": True, "trigger": trigger},
        rows_added=counts.added,
        rows_changed=counts.changed,
        rows_removed=counts.removed,
        row_count=row_count,
        schema_changes=[],
    )
    session.add(version)
    product.data_version = number
    product.row_count = row_count
    product.version += 1
    product.updated_at = utcnow()
    derivation.computed_from = {
        "reader": _reader_tree(Reader.of(settings, steward)),
        "sources": {
            str(s.product.id): {
                "version": s.product.data_version,
                "fields": sorted(s.used),
                "whole": str(s.product.organisation_id) == str(product.organisation_id),
            }
            for s in sources
        },
    }
    derivation.failure = None
    await versions.record_change(
        session=session,
        actor=steward,
        resource_type="product",
        row=product,
        action="derive",
        before=before,
        summary={"data_version": number, "trigger": trigger, "rows_added": counts.added,
                 "rows_changed": counts.changed, "rows_removed": counts.removed},
    )  # fmt: skip
    return version


async def _steward(
    session: AsyncSession, derivation: ProductDerivation, product: DataProduct
) -> Principal:
    """The defining steward as they are now: still active, still a steward of the domain."""
    user = await session.get(User, derivation.defined_by)
    if user is None or not user.is_active or user.disabled_at is not None:
        raise Forbidden(
            "Le gestionnaire qui a défini ce produit dérivé n'a plus de compte actif.",
            "The steward who defined this derived product has no active account.",
        )
    client = Client(address=None, request_id="derive")
    steward = await build_principal(session=session, user=user, scopes=None, client=client)
    if (
        not steward.has_role(Role.DATA_STEWARD)
        or steward.organisation_id != product.organisation_id
    ):
        raise Forbidden(
            "Celui qui a défini ce produit dérivé n'en gère plus le domaine.",
            "The defining steward no longer manages this product's domain.",
        )
    return steward


async def recompute(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product: DataProduct,
    trigger: str,
) -> bool:
    """One new data version of a derived product, all or nothing (a savepoint). A failure
    writes nothing of the data: it is stored on the derivation, audited and announced."""
    derivation = await derivation_of(session, product.id)
    assert derivation is not None
    try:
        async with session.begin_nested():
            steward = await _steward(session, derivation, product)
            await compute(session, settings, steward, product, derivation, trigger)
        return True
    except AppError as error:
        await session.refresh(product)
        await session.refresh(derivation)
        derivation.failure = {"fr": error.fr, "en": error.en, "at": utcnow().isoformat(),
                              "trigger": trigger}  # fmt: skip
        await audit.record(
            session=session,
            actor=actor,
            action="product.derive_failed",
            resource_type="product",
            resource_ids=[product.id],
            labels=[product.label_level],
            detail={"trigger": trigger, "reason": error.en},
        )
        await emit(
            session,
            type="product.derive_failed",
            resource_type="product",
            resource_id=product.id,
            label=product.label.as_dict(),
            payload={"id": str(product.id), "version": product.version, "action": "derive_failed"},
        )
        await session.flush()
        return False


async def _uses(session: AsyncSession, source_id: uuid.UUID) -> list[uuid.UUID]:
    query = select(ProductInput.derived_id).where(ProductInput.source_id == source_id)
    return sorted(await session.scalars(query))


async def recompute_uses(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product: DataProduct,
    trigger: str,
) -> None:
    """After ``product`` changed (new data version, new rules): recompute every product
    derived from it, then those derived from them (the definitions make no cycle: a source
    exists before what is derived from it). In the system context (every use, whoever may
    see it); the caller's context is restored after."""
    pending, seen = [product.id], set[uuid.UUID]()
    async with system_context(session, settings):
        while pending and len(seen) < MAX_CASCADE:
            for derived_id in await _uses(session, pending.pop(0)):
                if derived_id in seen:
                    continue
                seen.add(derived_id)
                derived = await session.get(DataProduct, derived_id)
                assert derived is not None
                if await recompute(session=session, settings=settings, actor=actor,
                                   product=derived, trigger=trigger):  # fmt: skip
                    pending.append(derived_id)


# --- hooks of the products' service ----------------------------------------------------------


async def refuse_import(session: AsyncSession, product: DataProduct) -> None:
    """A derived product's data comes from its sources only."""
    if await derivation_of(session, product.id) is not None:
        raise Conflict(
            "Un produit dérivé ne s'importe pas : il est recalculé depuis ses sources.",
            "A derived product is not imported into: it is recomputed from its sources.",
            code="derived_product",
        )


async def schema_breaks(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product: DataProduct,
    new_fields: Mapping[str, str],
) -> list[str]:
    """What a new schema of ``product`` (field name → type) would break among derived
    products: its own schema when it is derived, the fields its uses read. A use the actor
    may not know of is not named."""
    problems = []
    if await derivation_of(session, product.id) is not None:
        problems.append("le schéma d'un produit dérivé vient de sa définition")
    subject = Subject.of(settings, actor)
    async with system_context(session, settings):
        for derived_id in await _uses(session, product.id):
            derivation = await derivation_of(session, derived_id)
            derived = await session.get(DataProduct, derived_id)
            assert derivation is not None and derived is not None
            used = derivation.computed_from.get("sources", {}).get(str(product.id), {})
            types = defs.field_types(defs.schema_of(product))
            broken = [f for f in used.get("fields", []) if new_fields.get(f) != types.get(f)]
            if broken:
                who = f"« {derived.name} »" if can_see(subject, derived.label) else (
                    "un produit dérivé que vous ne connaissez pas")  # fmt: skip
                problems += [f"champ « {f} » utilisé par le produit dérivé {who}" for f in broken]
    return problems


async def check_reader(
    *, session: AsyncSession, settings: Settings, actor: Principal, product: DataProduct
) -> None:
    """403 when ``product`` is derived and withheld (ADR 0028: waiting for a second steward;
    its domain's stewards read it), or derived from another domain's source whose rules show
    the reader less than they showed the defining steward (fields used, rows)."""
    derivation = await derivation_of(session, product.id)
    if derivation is None:
        return
    if derivation.withheld and not base.is_steward(actor, product):
        raise Forbidden(
            "Ce produit dérivé attend qu'un second gestionnaire de données de son domaine le "
            "publie.",
            "This derived product waits for a second data steward of its domain to release it.",
            code="derived_withheld",
        )
    if not derivation.computed_from:
        return
    reader = Reader.of(settings, actor)
    steward = _reader_of(derivation.computed_from.get("reader", {}))
    subject = Subject.of(settings, actor)
    refused = Forbidden(
        "Ce produit dérivé reprend des données qu'une de ses sources ne vous montre pas.",
        "This derived product draws on data one of its sources does not show you.",
    )
    for source_id, info in derivation.computed_from.get("sources", {}).items():
        if info.get("whole"):
            continue
        source = await session.get(DataProduct, uuid.UUID(source_id))
        if source is None or not can_see(subject, source.label):
            raise refused
        if reader == steward:
            continue
        schema = defs.schema_of(source)
        rules = defs.rules_of(settings, source, schema)
        names = [f.name for f in schema.fields]
        if not set(info.get("fields", [])) <= set(rules.visible_columns(reader, names)):
            raise refused
        if await _rows_hidden(
            session, settings, actor, source, int(info["version"]), steward, reader
        ):
            raise refused


async def _rows_hidden(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    source: DataProduct,
    version: int,
    steward: Reader,
    reader: Reader,
) -> bool:
    """Whether a row of ``source`` at ``version`` shown to the steward is hidden from the
    reader by its rules: counted in the system context (RLS would hide exactly those rows),
    only the answer is used."""
    schema = defs.schema_of(source)
    rules = defs.rules_of(settings, source, schema)
    table = storage.table_of(source.id, schema)
    columns = {f.name: table.c[f.name] for f in schema.fields}
    dialect = session.get_bind().dialect.name
    query = (
        select(func.count())
        .select_from(table)
        .where(
            and_(
                storage.at_version(table, version),
                rules.row_filter(steward, columns, dialect),
                not_(rules.row_filter(reader, columns, dialect)),
            )
        )
    )
    async with system_context(session, settings):
        return bool(await session.scalar(query))
