"""The demo's open data (ADR 0035): two public datasets, each proposed by a steward of its
domain and approved by a second one (four eyes) through the same service as the API — the
heat alerts per department, and the daily transit incidents counted per line and day with
small-count suppression (from a product of individual incidents made here)."""

from __future__ import annotations

import io
import random
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.demo.products import DAY, LINES, NATURES, _csv, principal_of
from hypervision.identity.principal import Principal
from hypervision.opendata import service as opendata
from hypervision.opendata.models import Publication
from hypervision.opendata.schemas import Aggregation, PublicationCreate
from hypervision.products import service, storage
from hypervision.products.models import DataProduct
from hypervision.records.schemas import LabelIn

INCIDENTS = "incidents-transports-quotidiens"


def _incident_rows(rng: random.Random) -> bytes:
    rows = []
    number = 0
    for offset in range(-10, 4):
        day = (DAY + timedelta(days=offset)).date().isoformat()
        for line, _ in LINES:
            for _ in range(max(1, int(rng.gauss(16, 7)))):
                number += 1
                gravity = rng.choice(["faible", "moyenne", "moyenne", "forte"])
                rows.append([f"J-{number:05d}", line, day, rng.choice(NATURES), gravity])
    return _csv(["numero", "ligne", "jour", "nature", "gravite"], rows)


async def _incidents(session: AsyncSession, settings: Settings, steward: Principal) -> DataProduct:
    fields = [
        {"name": "numero", "type": "string", "title": "Numéro", "constraints": {"required": True}},
        {"name": "ligne", "type": "string", "title": "Ligne"},
        {"name": "jour", "type": "date", "title": "Jour"},
        {"name": "nature", "type": "string", "title": "Nature"},
        {"name": "gravite", "type": "string", "title": "Gravité"},
    ]
    product = await service.create_product(
        session=session,
        settings=settings,
        actor=steward,
        slug=INCIDENTS,
        name="Incidents quotidiens sur les transports en commun",
        description="Chaque incident signalé sur les lignes desservant les sites, par jour.",
        tags=("transports", "incidents"),
        table_schema={"fields": fields, "primaryKey": ["numero"]},
        rules=None,
        label=LabelIn(level="NP"),
    )
    await service.import_data(
        session=session,
        settings=settings,
        actor=steward,
        product_id=product.id,
        source=io.BytesIO(_incident_rows(random.Random(19))),  # noqa: S311 - demo data
        filename="incidents-quotidiens.csv",
        media_type=None,
        mode="replace",
    )
    await storage.as_system(session, settings)  # the loader goes on as itself
    return product


async def load(session: AsyncSession, settings: Settings) -> int:
    """Publish the two datasets; does nothing when they exist."""
    if await session.scalar(select(Publication.id).where(Publication.slug == INCIDENTS)):
        return 0
    heat = await session.scalar(select(DataProduct).where(DataProduct.slug == "vigilance-canicule"))
    if heat is None:
        return 0
    olivier = await principal_of(session, "Olivier Chevalier")
    yann = await principal_of(session, "Yann Le Gall")
    camille = await principal_of(session, "Camille Fontaine")
    quentin = await principal_of(session, "Quentin Brunet")
    incidents = await _incidents(session, settings, camille)
    proposals = [
        (
            olivier,
            yann,
            PublicationCreate(
                product_id=heat.id,
                slug="vigilance-canicule",
                title="Vigilance canicule par département",
                description="Niveau de vigilance canicule et température maximale prévue, par "
                "département d'Île-de-France et par jour.",
                keywords=["canicule", "vigilance", "météo", "Île-de-France"],
                themes=["ENVI", "HEAL"],
                schedule="daily",
            ),
        ),
        (
            camille,
            quentin,
            PublicationCreate(
                product_id=incidents.id,
                slug=INCIDENTS,
                title="Incidents quotidiens par ligne de transport",
                description="Nombre d'incidents signalés par ligne et par jour. Les effectifs "
                "inférieurs à 11 sont masqués (secret statistique), ainsi qu'une seconde "
                "case par ligne ou par jour quand il le faut pour qu'aucun total ne les révèle.",
                keywords=["transports", "incidents", "RER", "métro"],
                themes=["TRAN"],
                aggregation=Aggregation(group_by=["ligne", "jour"], measures=["count"]),
            ),
        ),
    ]
    for proposer, approver, data in proposals:
        made = await opendata.propose(session=session, settings=settings, actor=proposer, data=data)
        await opendata.approve(
            session=session, settings=settings, actor=approver, publication_id=made.id
        )
    return len(proposals)
