"""Editing a small product's rows in place (issue 17: "an editable grid for small products,
cell edits are versions"). A row saved from the web is a one-row file imported by key through
``service.import_data``: the same reading of French values, the same checks, the same version,
outbox event and audit record as any import — and what an import refuses, an edit refuses.

Editing needs a primary key (a row is found, and replaced, by its key; a key is not edited: a
new row is added instead), a product small enough for a grid (``GRID_MAX`` rows), and a
steward who sees every column (a row is replaced whole: a column hidden from the steward would
be lost)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.core.errors import AppError, Conflict, Forbidden, NotFound
from hypervision.identity.principal import Principal
from hypervision.products import service
from hypervision.products.models import DataProduct, ImportMode
from hypervision.products.rules import Reader

GRID_MAX = 5000
SOURCE_NAME = "saisie-dans-le-tableau.csv"


@dataclass(frozen=True)
class Grid:
    """Whether a reader may edit a product's rows, and if not, why (French, English)."""

    key: tuple[str, ...]
    refusal: AppError | None

    @property
    def editable(self) -> bool:
        return self.refusal is None

    def named(self, row: Mapping[str, Any]) -> str:
        """A row named by its key's values, for people."""
        return " – ".join(str(row.get(name, "")) for name in self.key)

    def address(self, product_id: uuid.UUID, row: Mapping[str, Any]) -> str:
        """The address of a row's form: its key in the query."""
        key = {name: "" if row.get(name) is None else str(row[name]) for name in self.key}
        return f"/donnees/{product_id}/ligne?{urlencode(key)}"


def grid_of(settings: Settings, actor: Principal, product: DataProduct) -> Grid:
    schema = service.schema_of(product)
    key = tuple(schema.primary_key or ())
    try:
        service.check_steward(actor, product)
    except Forbidden:
        return Grid(key, Forbidden("Seuls les gestionnaires du domaine modifient les lignes.",
                                   "Only the domain's stewards edit rows."))  # fmt: skip
    if not key:
        return Grid(key, Conflict(
            "Ce produit n'a pas de clé primaire : ses lignes se changent par un import.",
            "This product has no primary key: its rows change through an import.",
        ))  # fmt: skip
    if product.row_count > GRID_MAX:
        return Grid(key, Conflict(
            f"Plus de {GRID_MAX} lignes : ce produit se change par un import.",
            f"More than {GRID_MAX} rows: this product changes through an import.",
        ))  # fmt: skip
    names = [f.name for f in schema.fields]
    rules = service.rules_of(settings, product, schema)
    hidden = [n for n in names if n not in rules.visible_columns(Reader.of(settings, actor), names)]
    if hidden:
        return Grid(key, Conflict(
            "Des colonnes vous sont masquées par les règles : modifier une ligne les effacerait.",
            "The rules hide columns from you: editing a row would erase them.",
        ))  # fmt: skip
    return Grid(key, None)


async def find_row(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    key: Mapping[str, str],
) -> tuple[DataProduct, dict[str, Any] | None]:
    """The current row with this key, as the reader may see it (None when there is none)."""
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    names: list[str] = list(service.schema_of(product).primary_key or [])
    if not names or any(name not in key for name in names):
        return product, None
    page = await service.read_rows(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product.id,
        conditions=[service.Condition(name, "eq", key[name]) for name in names],
        limit=2,
    )
    return product, (page.rows[0] if len(page.rows) == 1 else None)


def text_of(value: Any, kind: str) -> str:
    """A stored value as a person types it (French decimal comma, oui/non, GeoJSON text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if kind == "number" and isinstance(value, float):
        return repr(value).removesuffix(".0").replace(".", ",")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


async def save_row(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    product_id: uuid.UUID,
    values: Mapping[str, str],
    new: bool,
) -> service.Imported:
    """A row added (``new``: its key must be free) or replaced by its key, as the product's
    next data version."""
    product = await service.find_product(
        session=session, settings=settings, actor=actor, product_id=product_id
    )
    grid = grid_of(settings, actor, product)
    if grid.refusal is not None:
        raise grid.refusal
    if not new:
        _, row = await find_row(
            session=session, settings=settings, actor=actor, product_id=product.id, key=values
        )
        if row is None:
            raise NotFound(
                "Ligne introuvable : elle a peut-être été changée entre-temps.",
                "Row not found: it may have changed meanwhile.",
            )
    fields = [f.name for f in service.schema_of(product).fields]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(fields)
    writer.writerow([values.get(name, "").strip() for name in fields])
    return await service.import_data(
        session=session,
        settings=settings,
        actor=actor,
        product_id=product.id,
        source=io.BytesIO(buffer.getvalue().encode()),
        filename=SOURCE_NAME,
        media_type="text/csv",
        mode=(ImportMode.APPEND if new else ImportMode.UPSERT).value,
    )
