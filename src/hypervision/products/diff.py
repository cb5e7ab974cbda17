"""What changed between two data versions of a product, as a reader may see it (ADR 0028):
rows added, removed, and changed with the fields that changed, in keyset pages.

Each version is read through the same compiled rules as the rows API (``service._Reading``):
the reader's row rule at each version, the columns the reader may see. A hidden column is
never selected, so it never shows, not even as "changed"; a row that changed only in hidden
columns is not listed. Rows are matched by the primary key when the reader sees all of it,
else by row number. One audit record per query, like a read of rows."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, cast, func, null, or_, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.config import Settings
from hypervision.core.errors import Invalid
from hypervision.identity.principal import Principal
from hypervision.products import derived, service, storage
from hypervision.products.models import DataProduct
from hypervision.products.values import typed
from hypervision.records import access

PAGE_MAX = 500


@dataclass
class Diff:
    product: DataProduct
    old: int
    new: int
    key: list[str]
    columns: list[str]
    hidden_columns: list[str]
    changes: list[dict[str, Any]]
    next_cursor: str | None


def _side(reading: Any, key: list[str], columns: list[str], name: str, extra: Any) -> Any:
    table = reading.table
    picked = ([table.c._row] if key == ["_row"] else []) + [table.c[c] for c in columns]
    return select(*picked).where(*reading.where, extra).subquery(name)


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def _uncursor(raw: str, size: int) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(raw.encode()))
        if isinstance(values, list) and len(values) == size:
            return values
    except (ValueError, TypeError):
        pass
    raise Invalid("Curseur de pagination invalide.", "Invalid pagination cursor.",
                  extra={"fields": [{"field": "after", "message": "invalid"}]})  # fmt: skip


async def diff(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    old: int,
    new: int,
    after: str | None = None,
    limit: int = 100,
) -> Diff:
    """The changes from version ``old`` to version ``new`` (any two versions)."""
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    await derived.check_reader(session=session, settings=settings, actor=actor, product=product)
    if old == new:
        raise Invalid("Comparez deux versions différentes.", "Compare two different versions.",
                      extra={"fields": [{"field": "to", "message": "same version"}]})  # fmt: skip
    dialect = access.dialect_of(session)
    before = service._Reading(settings, actor, product, dialect, old)
    now = service._Reading(settings, actor, product, dialect, new)
    columns = before.columns
    primary = list(before.schema.primary_key)
    key = primary if primary and set(primary) <= set(columns) else ["_row"]
    names = (key if key == ["_row"] else []) + columns
    # A physical row valid at both versions is the same in both: only the others are read.
    a = _side(before, key, columns, "a", ~storage.at_version(now.table, new))
    b = _side(now, key, columns, "b", ~storage.at_version(before.table, old))
    on = and_(*(a.c[k] == b.c[k] for k in key))
    differs = or_(*(a.c[c].is_distinct_from(b.c[c]) for c in columns if c not in key))

    def none(side: Any) -> list[Any]:
        return [cast(null(), side.c[n].type).label(f"{side.name}_{n}") for n in names]

    def cells(side: Any) -> list[Any]:
        return [side.c[n].label(f"{side.name}_{n}") for n in names]

    # Two left joins rather than one full join: SQLite then indexes the inner side.
    removed_or_changed = (
        select(*cells(a), *cells(b))
        .select_from(a.outerjoin(b, on))
        .where(or_(b.c[key[0]].is_(None), differs))
    )
    added = select(*none(a), *cells(b)).select_from(b.outerjoin(a, on)).where(a.c[key[0]].is_(None))
    both = union_all(removed_or_changed, added).subquery("d")
    identity = [func.coalesce(both.c[f"a_{k}"], both.c[f"b_{k}"]) for k in key]
    query: Select[Any] = select(
        *(both.c[f"a_{n}"] for n in names), *(both.c[f"b_{n}"] for n in names)
    )
    if after:
        last = _uncursor(after, len(key))
        values = [
            int(v) if k == "_row" else typed(before.types[k], str(v), k)
            for k, v in zip(key, last, strict=True)
        ]
        query = query.where(tuple_(*identity) > tuple_(*values))
    limit = max(1, min(limit, PAGE_MAX))
    found = (await session.execute(query.order_by(*identity).limit(limit + 1))).all()
    more = len(found) > limit
    found = found[:limit]
    changes = [_change(r, names, key) for r in found]
    cursor = _cursor([changes[-1]["key"][k] for k in key]) if more and changes else None
    await audit.record(
        session=session,
        actor=actor,
        action="product.diff",
        resource_type="product",
        resource_ids=[product.id],
        labels=[product.label_level],
        detail={
            "data_version": new,
            "from_version": old,
            "predicate": before.fingerprint({"diff": [old, new], "after": after}),
            "rows": len(changes),
            "columns": columns,
        },
    )
    return Diff(product, old, new, key, columns, before.hidden, changes, cursor)


def _change(row: Any, names: list[str], key: list[str]) -> dict[str, Any]:
    size = len(names)
    was = {n: service._plain(v) for n, v in zip(names, row[:size], strict=True)}
    now = {n: service._plain(v) for n, v in zip(names, row[size:], strict=True)}
    if was[key[0]] is None:
        return {"change": "added", "key": {k: now[k] for k in key}, "row": now}
    if now[key[0]] is None:
        return {"change": "removed", "key": {k: was[k] for k in key}, "row": was}
    fields = [n for n in names if n not in key and was[n] != now[n]]
    return {
        "change": "changed",
        "key": {k: now[k] for k in key},
        "fields": fields,
        "before": {f: was[f] for f in fields},
        "after": {f: now[f] for f in fields},
    }
