"""What each module of a space shows a reader, read through the policy *as that reader*.

Each module's data is computed under a savepoint: a module whose source the reader may not see
(or that is gone) answers ``unavailable`` with one neutral message — the same whether hidden,
deleted or never there, so a placeholder reveals nothing —, a module whose configuration no
longer fits (a field removed, a rule that now hides a column) answers ``invalid``, a type this
version does not know answers ``unknown``. Never an error page, never a leak. The reads the
module makes are audited by the services it calls; the module read itself is audited too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core import markdown
from hypervision.core.errors import Forbidden, Invalid, NotFound
from hypervision.geo import zones
from hypervision.identity.principal import Principal
from hypervision.logbook import entries, situations
from hypervision.logbook.models import Situation
from hypervision.products import service as products
from hypervision.products.models import ProductStatus
from hypervision.records import access
from hypervision.spaces import cache, figures
from hypervision.spaces.models import Space
from hypervision.spaces.reading import DEPRECATED, Reading, entry_query
from hypervision.spaces.schemas import (
    CONFIGS,
    MAX_MODULES,
    FeedConfig,
    FormConfig,
    LinksConfig,
    MapConfig,
    ModuleData,
    SituationsConfig,
    TableConfig,
    TextConfig,
)
from hypervision.synthesis.access import visible_syntheses
from hypervision.synthesis.models import Synthesis, SynthesisStatus

log = logging.getLogger(__name__)

UNAVAILABLE = (
    "Ce module n'est pas disponible pour vous.",
    "This module is not available to you.",
)
INVALID = (
    "Ce module ne peut plus être affiché : sa configuration ne correspond plus aux données "
    "que vous pouvez lire. Son auteur peut le modifier.",
    "This module can no longer be shown: its configuration no longer fits the data you may "
    "read. Its author can change it.",
)
MAP_LIMIT = 500


def _entry_item(entry: Any) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "title": entry.title,
        "category": entry.category,
        "severity": entry.severity,
        "status": entry.status,
        "occurred_at": entry.occurred_at.isoformat(),
        "label": entry.label_level,
    }


async def _feed(r: Reading, config: FeedConfig) -> dict[str, Any]:
    rows, _ = await entries.list_entries(
        session=r.session,
        settings=r.settings,
        actor=r.actor,
        filters=entry_query(config.filter),
        cursor=None,
        limit=config.limit,
    )
    r.saw(*(e.label_level for e in rows))
    r.read("entry.list", "entry", (e.id for e in rows), (e.label_level for e in rows))
    return {"entries": [_entry_item(e) for e in rows]}


async def _map(r: Reading, config: MapConfig) -> dict[str, Any]:
    rows, _ = await entries.list_entries(
        session=r.session,
        settings=r.settings,
        actor=r.actor,
        filters=entry_query(config.filter),
        cursor=None,
        limit=MAP_LIMIT,
    )
    r.read("entry.list", "entry", (e.id for e in rows), (e.label_level for e in rows))
    located = [e for e in rows if e.location]
    r.saw(*(e.label_level for e in located))
    features = [
        {"type": "Feature", "geometry": e.location, "properties": _entry_item(e)} for e in located
    ]
    shapes: list[dict[str, Any]] = []
    if config.zones:
        found = await zones.list_zones(session=r.session, settings=r.settings, actor=r.actor)
        r.saw(*(z.label_level for z in found))
        r.read("zone.list", "zone", (z.id for z in found), (z.label_level for z in found))
        shapes = [
            {"type": "Feature", "geometry": z.geometry, "properties": {"name": z.name}}
            for z in found
        ]
    return {
        "entries": {"type": "FeatureCollection", "features": features},
        "zones": {"type": "FeatureCollection", "features": shapes},
        # read by the page from the layers' and products' own routes, as the reader
        "layers": [str(i) for i in config.layer_ids],
        "products": [str(i) for i in config.product_ids],
        "truncated": len(rows) == MAP_LIMIT,
    }


def _note_status(r: Reading, status: str) -> None:
    if status == ProductStatus.DEPRECATED.value:
        r.message = r.words(DEPRECATED)


async def _table(r: Reading, config: TableConfig) -> dict[str, Any]:
    page = await products.read_rows(
        session=r.session,
        settings=r.settings,
        actor=r.actor,
        product_id=config.product_id,
        conditions=[products.parse_condition(f) for f in config.filters],
        sort=config.sort,
        limit=config.limit,
        columns=config.columns or None,
    )
    r.saw(page.product.label_level)
    r.read("product.rows", "product", [page.product.id], [page.product.label_level],
           rows=len(page.rows), columns=page.columns)  # fmt: skip
    _note_status(r, page.product.status)
    titles = {f["name"]: f.get("title") for f in page.product.table_schema.get("fields", [])}
    return {
        "product": {"id": str(page.product.id), "name": page.product.name},
        "columns": page.columns,
        "titles": [titles.get(c) or c for c in page.columns],
        "rows": [[row.get(c) for c in page.columns] for row in page.rows],
        "more": page.next_cursor is not None,
    }


async def _text(r: Reading, config: TextConfig) -> dict[str, Any]:
    return {"html": markdown.render(config.markdown)}


async def _links(r: Reading, config: LinksConfig) -> dict[str, Any]:
    return {"links": [link.model_dump() for link in config.links]}


async def _situations(r: Reading, config: SituationsConfig) -> dict[str, Any]:
    query = situations.visible_situations(r.session, r.settings, r.actor)
    if config.statuses:
        query = query.where(Situation.status.in_(config.statuses))
    rows = list(
        await r.session.scalars(query.order_by(Situation.started_at.desc()).limit(config.limit))
    )
    await access.delivered(r.session, r.actor, action="situation.list", kind="situation", rows=rows)
    r.read("situation.list", "situation", (s.id for s in rows), (s.label_level for s in rows))
    r.saw(*(s.label_level for s in rows))
    return {
        "situations": [
            {
                "id": str(s.id),
                "title": s.title,
                "severity": s.severity,
                "status": s.status,
                "started_at": s.started_at.isoformat(),
                "label": s.label_level,
            }
            for s in rows
        ]
    }


async def _synthesis(r: Reading, config: BaseModel) -> dict[str, Any]:
    done = (SynthesisStatus.VALIDATED.value, SynthesisStatus.SENT.value)
    latest = await r.session.scalar(
        visible_syntheses(r.session, r.settings, r.actor)
        .where(Synthesis.status.in_(done))
        .order_by(Synthesis.updated_at.desc(), Synthesis.id)
        .limit(1)
    )
    if latest is None:
        return {"synthesis": None}
    await access.delivered(
        r.session, r.actor, action="synthesis.list", kind="synthesis", rows=[latest]
    )
    r.read("synthesis.list", "synthesis", [latest.id], [latest.label_level])
    r.saw(latest.label_level)
    return {
        "synthesis": {
            "id": str(latest.id),
            "title": latest.title,
            "status": latest.status,
            "at": (latest.sent_at or latest.validated_at or latest.updated_at).isoformat(),
            "label": latest.label_level,
        }
    }


async def _form(r: Reading, config: FormConfig) -> dict[str, Any]:
    if config.target == "entry":
        return {"target": "entry", "preset": config.preset}
    assert config.product_id is not None
    product = await products.find_product(
        session=r.session, settings=r.settings, actor=r.actor, product_id=config.product_id
    )
    reading = products.reading_for(r.settings, r.actor, product, access.dialect_of(r.session))
    fields = [
        {"name": f["name"], "type": f.get("type", "string"), "title": f.get("title") or f["name"]}
        for f in product.table_schema.get("fields", [])
        if f["name"] in reading.types
    ]
    r.saw(product.label_level)
    _note_status(r, product.status)
    return {
        "target": "product",
        "product": {"id": str(product.id), "name": product.name},
        "fields": fields,
        "preset": {k: v for k, v in config.preset.items() if k in reading.types},
    }


Handler = Callable[[Reading, Any], Awaitable[dict[str, Any]]]
HANDLERS: dict[str, Handler] = {
    "feed": _feed,
    "map": _map,
    "table": _table,
    "chart": figures.chart,
    "kpi": figures.kpi,
    "text": _text,
    "links": _links,
    "form": _form,
    "synthesis": _synthesis,
    "situations": _situations,
}
# The live topics whose events refresh a module of each type (the page listens to them).
LIVE: dict[str, tuple[str, ...]] = {
    "feed": ("entry",),
    "map": ("entry",),
    "table": ("product",),
    "chart": ("entry", "product"),
    "kpi": ("entry", "product"),
    "synthesis": ("synthesis",),
    "situations": ("situation",),
    "form": ("product",),
}


def find_module(space: Space, module_id: str) -> dict[str, Any] | None:
    return next((m for m in space.modules if m.get("id") == module_id), None)


MODULE_LIST_MAX = 1400  # characters of ``modules=a,b,c``: MAX_MODULES ids of 32 and commas


def listed(space: Space, text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The modules of ``space`` named in ``text`` (comma-separated ids, each once, in the
    order given), and the ids named that ``space`` does not have: a clear error for an empty
    list or more than ``MAX_MODULES``."""
    ids = list(dict.fromkeys(i.strip() for i in text.split(",") if i.strip()))
    if not ids or len(ids) > MAX_MODULES:
        raise Invalid(
            f"Indiquez de 1 à {MAX_MODULES} modules (modules=a,b,c).",
            f"Name 1 to {MAX_MODULES} modules (modules=a,b,c).",
            extra={"fields": [{"field": "modules", "message": f"1 to {MAX_MODULES} module ids"}]},
        )
    found = {str(m.get("id")): m for m in space.modules}
    return [found[i] for i in ids if i in found], [i for i in ids if i not in found]


def pick(space: Space, text: str) -> list[dict[str, Any]]:
    """The modules of ``space`` named in ``text`` (``listed``): a clear error for an id the
    space does not have (the ids are the caller's own and the space's list is theirs to read:
    naming them reveals nothing)."""
    wanted, unknown = listed(space, text)
    if unknown:
        names = ", ".join(i[:32] for i in unknown[:10])
        raise NotFound(
            f"Module introuvable dans cet espace : {names}.",
            f"No such module in this space: {names}.",
        )
    return wanted


def topics(module: dict[str, Any]) -> list[str]:
    """The live topics whose events refresh ``module``: its kinds of records (``entry``…) and
    each product it reads (``product:<id>``: the events of that product alone, ADR 0047)."""
    kind = str(module.get("type", ""))
    kinds, products = cache.sources(module)
    found = [t for t in LIVE.get(kind, ()) if t != "product" and (t != "entry" or t in kinds)]
    if kind == "map":
        config = module.get("config") or {}
        ids = config.get("product_ids") if isinstance(config, dict) else None
        for raw in ids if isinstance(ids, list) else []:
            with contextlib.suppress(ValueError):
                products += (uuid.UUID(str(raw)),)
    return found + [f"product:{p}" for p in dict.fromkeys(products)]


async def module_data(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    space: Space,
    module: dict[str, Any],
    french: bool = True,
    shared: cache.ModuleCache | None = None,
) -> ModuleData:
    """What ``module`` of ``space`` (a space ``actor`` may read) shows ``actor``. With
    ``shared``, a result computed for a reader the policy cannot tell from ``actor``, from the
    same data, may be served (``spaces.cache``); ``actor``'s read is audited all the same."""
    found = await answers(
        session=session,
        settings=settings,
        actor=actor,
        space=space,
        wanted=[module],
        french=french,
        shared=shared,
    )
    return found[0].data


@dataclass(frozen=True)
class Answer:
    """A module's answer to one reader, and the shared result it came from with its key (a
    page may keep the result's rendering with it: ``ModuleCache.keep_rendered``)."""

    data: ModuleData
    result: cache.Shared
    key: cache.Key | None


async def answers(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    space: Space,
    wanted: list[dict[str, Any]],
    french: bool = True,
    shared: cache.ModuleCache | None = None,
) -> list[Answer]:
    """What each module of ``wanted`` (modules of ``space``, a space ``actor`` may read) shows
    ``actor``, in order, with the shared result each came from and its key: ``module_data``
    for several at once (a page's live refresh, ADR 0051) — their keys' freshness read in one
    statement, and the audit records this reader leaves (a shared result's reads replayed,
    each module's ``space.module``) appended together (``audit.append_many``), in this
    transaction: nothing is answered without its record."""
    found, records = await _answered(session, settings, actor, space, wanted, french, shared)
    await audit.append_many(session, records)
    return found


async def _answered(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    space: Space,
    wanted: list[dict[str, Any]],
    french: bool,
    shared: cache.ModuleCache | None,
) -> tuple[list[Answer], list[dict[str, Any]]]:
    """Each module's answer to ``actor``, and the audit records a reader served them leaves
    (for the caller to append or not)."""
    keys: list[cache.Key | None] = [None] * len(wanted)
    if shared is not None and wanted:
        keys = list(await shared.keys(session, settings, actor, space.id, wanted, french))
    found: list[Answer] = []
    records: list[dict[str, Any]] = []
    for module, key in zip(wanted, keys, strict=True):
        data, result, reads = await _answer(
            session, settings, actor, space, module, french, shared, key
        )
        found.append(Answer(data, result, key))
        records.extend(reads)
    return found, records


async def pushed(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    space: Space,
    wanted: list[dict[str, Any]],
    french: bool,
    shared: cache.ModuleCache,
) -> list[Answer]:
    """What each module of ``wanted`` shows ``actor`` and the readers of its visibility
    signature it is pushed to (docs/adr/0052), computed as ``actor``: its keys' freshness in
    one statement, each result shared. Nothing is audited here but what computing a result
    audits (the services' own records of ``actor``'s read): the push appends
    ``push_records`` for what it sends, in this transaction, before sending it."""
    found, _ = await _answered(session, settings, actor, space, wanted, french, shared)
    return found


def push_records(
    readers: Sequence[Principal],
    space: Space,
    wanted: list[dict[str, Any]],
    found: list[Answer],
) -> list[dict[str, Any]]:
    """The audit trail of one push of ``wanted`` to ``readers``: each read the services
    audited for the results, once (``live-stream``, with the number of readers), then one
    ``space.push`` record per reader naming the modules, their status, the levels shown and
    the ids of those reads."""
    reads: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = []
    levels = {space.label_level}
    for module, answer in zip(wanted, found, strict=True):
        ident, result = str(module.get("id", ""))[:32], answer.result
        reads.extend(
            audit.record_values(
                actor=None,
                actor_name="live-stream",
                action=read.action,
                surface="stream",
                resource_type=read.kind,
                resource_ids=read.ids,
                labels=read.labels,
                detail={
                    **read.detail,
                    "space": str(space.id),
                    "module": ident,
                    "readers": len(readers),
                },
            )
            for read in result.reads
        )
        shown.append({"module": ident, "type": str(module.get("type", ""))[:32],
                      "status": result.status})  # fmt: skip
        if result.status == "ok":
            levels.update(result.levels)
    # the reads' ids are named too: "who was shown this read" is an index range
    # (``audit_resources``), as "who read this record" is
    named = [space.id, *(r["id"] for r in reads)]
    detail = {"modules": shown, "reads": [str(r["id"]) for r in reads]}
    return reads + [
        audit.record_values(
            actor=reader,
            action="space.push",
            surface="stream",
            resource_type="space",
            resource_ids=named,
            labels=sorted(levels),
            detail=detail,
        )
        for reader in readers
    ]


async def _answer(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    space: Space,
    module: dict[str, Any],
    french: bool,
    shared: cache.ModuleCache | None,
    key: cache.Key | None,
) -> tuple[ModuleData, cache.Shared, list[dict[str, Any]]]:
    """One module's answer, its result and the audit records ``actor`` leaves for it (to
    append): a shared result's reads again, as the services wrote them when it was computed,
    marked ``shared``, then the module's read itself."""
    kind = str(module.get("type", ""))
    ident = str(module.get("id", ""))

    async def compute() -> cache.Shared:
        return await _compute(session, settings, actor, module, french)

    if shared is None or key is None:
        result, was_shared = await compute(), False
    else:
        result, was_shared = await shared.get(key, compute)
    records: list[dict[str, Any]] = []
    if was_shared:  # the reads the services audited when it was computed, for this reader
        records.extend(
            audit.record_values(
                actor=actor,
                action=read.action,
                resource_type=read.kind,
                resource_ids=read.ids,
                labels=read.labels,
                detail={
                    **read.detail,
                    "shared": True,
                    "space": str(space.id),
                    "module": ident[:32],
                },
            )
            for read in result.reads
        )
    detail: dict[str, Any] = {"module": ident[:32], "type": kind[:32], "status": result.status}
    if was_shared:
        detail["shared"] = True
    records.append(
        audit.record_values(
            actor=actor,
            action="space.module",
            resource_type="space",
            resource_ids=[space.id],
            labels=sorted({space.label_level, *result.levels})
            if result.status == "ok"
            else [space.label_level],
            detail=detail,
        )
    )
    found = ModuleData(
        module_id=ident,
        type=kind,
        status=result.status,
        message=result.message,
        label=result.label,
        data=result.data,  # a shared result is never changed: read, rendered, serialised
        live=list(result.live),
    )
    return found, result, records


async def _compute(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    module: dict[str, Any],
    french: bool,
) -> cache.Shared:
    """The module's answer for ``actor`` (not ``shareable`` when it failed unexpectedly). A
    placeholder carries no live topic: it reveals nothing, not even which
    product it would follow (the leak matrix compares it with a missing product's)."""
    kind = str(module.get("type", ""))
    r = Reading(session, settings, actor, french)
    handler, shape = HANDLERS.get(kind), CONFIGS.get(kind)
    message: str | None = None
    data: dict[str, Any] = {}
    if handler is None or shape is None:
        status = "unknown"
        message = r.words(
            (
                f"Type de module inconnu « {kind[:32]} » : ce module ne peut pas être affiché.",
                f"Unknown module type {kind[:32]!r}: this module cannot be shown.",
            )
        )
    else:
        status, data = await _run(r, handler, shape, module.get("config") or {})
        message = r.message if status == "ok" else None
        if status == "unavailable":
            message = r.words(UNAVAILABLE)
        elif status == "invalid":
            message = r.words(INVALID)
    ok = status == "ok"
    return cache.Shared(
        status=status,
        message=message,
        label=r.highest() if ok else None,
        data=data,
        live=topics(module) if ok else [],
        levels=tuple(sorted(r.levels)) if ok else (),
        reads=tuple(r.reads),
        size=len(json.dumps(data, default=str)) + 512,
        shareable=r.shareable,
    )


async def _run(
    r: Reading, handler: Handler, shape: type[BaseModel], raw: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    try:
        config = shape.model_validate(raw)
    except ValidationError:
        return "invalid", {}
    try:
        async with r.session.begin_nested():
            return "ok", await handler(r, config)
    except (NotFound, Forbidden):  # hidden, withheld, missing: all alike
        r.levels.clear()
        return "unavailable", {}
    except Invalid:
        r.levels.clear()
        return "invalid", {}
    except Exception:  # a module never takes the page down with it
        log.exception("space module failed", extra={"module_type": type(handler).__name__})
        r.levels.clear()
        r.shareable = False  # perhaps passing (a timeout): never served to others
        return "invalid", {}
