"""The demo's spaces: the four templates, each made by the officer who would use it and shared
with the organisations that work with them, two of them with modules over data products."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.demo.products import principal_of
from hypervision.products.models import DataProduct
from hypervision.records.schemas import LabelIn
from hypervision.spaces import service
from hypervision.spaces.models import Space
from hypervision.spaces.schemas import ModuleIn, SpaceCreate
from hypervision.spaces.templates import TEMPLATES


def _module(ident: str, module_type: str, title: str, place: tuple[int, int, int, int], /,
            **config: Any) -> ModuleIn:  # fmt: skip
    x, y, w, h = place
    return ModuleIn(id=ident, type=module_type, title=title, x=x, y=y, w=w, h=h, config=config)


async def load(session: AsyncSession, settings: Settings) -> int:
    """Create the demo spaces; does nothing when they exist (or the products are missing)."""
    if await session.scalar(select(Space.id).limit(1)):
        return 0
    slugs = ("capacite-hospitaliere", "incidents-transports")
    found = {
        p.slug: p.id
        for p in await session.scalars(select(DataProduct).where(DataProduct.slug.in_(slugs)))
    }
    if len(found) < len(slugs):
        return 0
    beds, incidents = found["capacite-hospitaliere"], found["incidents-transports"]
    base = {code: service.template_modules(code) for code in TEMPLATES}
    specs: tuple[tuple[str, str, str, list[str], list[ModuleIn]], ...] = (
        ("Nadia Benali", "PC Stade de France", "poste-commandement-site",
         ["PP-DOPC", "MININT-CNCS", "PP-BSPP"], base["poste-commandement-site"]),
        ("Karim Haddad", "Cellule santé Île-de-France", "cellule-sante",
         ["ARSIDF-SAMU75", "SANTE-ARSIDF", "MINSANTE", "MININT-CNCS"], [
            *base["cellule-sante"],
            _module("lits", "chart", "Lits occupés par département", (0, 13, 6, 5),
                    source="product", product_id=str(beds), group_by="departement",
                    measure="sum:lits_occupes", kind="bar"),
            _module("capacite", "table", "Capacité des hôpitaux", (6, 13, 6, 5),
                    product_id=str(beds), columns=["hopital", "service", "lits", "lits_occupes"],
                    sort="hopital", limit=15),
        ]),
        ("Claire Dubois", "Cabinet — vue d'ensemble", "cabinet-prefet",
         ["MININT-CNCS", "MININT-PP"], base["cabinet-prefet"]),
        ("Camille Fontaine", "Suivi transport", "suivi-transport", [], [
            *base["suivi-transport"],
            _module("lignes", "chart", "Incidents par ligne", (0, 10, 6, 5), source="product",
                    product_id=str(incidents), group_by="ligne", kind="bar", horizontal=True),
            _module("incidents", "kpi", "Incidents signalés", (6, 10, 3, 2), source="product",
                    product_id=str(incidents), warning=20, alert=40),
            _module("signaler", "form", "Signaler une perturbation", (9, 10, 3, 5),
                    preset={"category": "transport"}),
        ]),
    )  # fmt: skip
    for name, title, template, audience, modules in specs:
        actor = await principal_of(session, name)
        await service.create_space(
            session=session,
            settings=settings,
            actor=actor,
            data=SpaceCreate(
                title=title,
                description=TEMPLATES[template].description,
                template=template,
                modules=modules,
                label=LabelIn(level="NP", audience=audience),
            ),
        )
    return len(specs)
