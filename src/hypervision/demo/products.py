"""The demo's data products: five domains each bring a table of the Games, under rules of
their own — hospital capacity (health: SAMU rows for health services only, serious-patient
counts for the MEDICAL group only), gate counts every 15 minutes (sports), transit incidents
(transport, on the map), heat alerts (environment), forces deployed (interior, DR: intelligence
missions for the RENSEIGNEMENT group only, head counts for the interior ministry only).

The data is generated (seeded, the same at every load) and goes in through the products'
own service: created by a steward of the domain, imported as version 1, then published. One
derived product (ADR 0028) sums the hospital beds per department: the health domain's own
source read whole, released to every organisation by a second steward of the domain (its
source's rules restrict readers: four eyes); it is recomputed at each import."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.demo.scenario import username_of
from hypervision.geo.places import find_venue
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import Organisation, User
from hypervision.identity.principal import Principal
from hypervision.products import derived_create, quality, service, storage
from hypervision.products.models import DataProduct
from hypervision.records.schemas import LabelIn

PARIS = ZoneInfo("Europe/Paris")
DAY = datetime(2024, 8, 2, tzinfo=PARIS)


def _text(value: str) -> dict[str, Any]:
    return {"value": value}


def _member_of(org_id: str) -> dict[str, Any]:
    """The reader belongs to ``org_id`` or to one of its services."""
    return {"op": "in", "left": _text(org_id), "right": {"user": "organisation_ancestors"}}


def _in_group(code: str) -> dict[str, Any]:
    return {"op": "contains", "left": {"user": "groups"}, "right": _text(code)}


@dataclass(frozen=True)
class DemoProduct:
    slug: str
    name: str
    description: str
    tags: tuple[str, ...]
    steward: str
    level: str
    fields: tuple[dict[str, Any], ...]
    primary_key: tuple[str, ...]
    rules: Callable[[dict[str, str]], dict[str, Any] | None]  # organisation ids by code
    rows: Callable[[random.Random], tuple[str, bytes]]  # a file name and its bytes
    quality: tuple[dict[str, Any], ...] = ()  # quality rules (products/quality_rules.py)


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    """A CSV as French offices write it: Latin-1, ';', decimal commas."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([str(v).replace(".", ",") if isinstance(v, float) else v for v in row])
    return out.getvalue().encode("cp1252")


HOSPITALS = [
    ("Hôpital Bichat", "75"), ("Hôpital Lariboisière", "75"), ("Hôpital Cochin", "75"),
    ("Hôpital européen Georges-Pompidou", "75"), ("Hôpital de la Pitié-Salpêtrière", "75"),
    ("Hôpital Avicenne", "93"), ("Hôpital Delafontaine", "93"), ("Hôpital Jean-Verdier", "93"),
    ("Hôpital Beaujon", "92"), ("Hôpital Ambroise-Paré", "92"), ("Hôpital Henri-Mondor", "94"),
    ("Hôpital Bicêtre", "94"),
]  # fmt: skip
SERVICES = [("Urgences", 40), ("Réanimation", 20), ("SAMU", 10), ("Chirurgie", 60)]


def _hospital_rows(rng: random.Random) -> tuple[str, bytes]:
    rows = []
    for hospital, department in HOSPITALS:
        for service_name, size in SERVICES:
            beds = size + rng.randint(-size // 4, size // 4)
            used = rng.randint(beds // 2, beds)
            stamp = (DAY + timedelta(hours=18, minutes=rng.randint(0, 59))).isoformat()
            rows.append(
                [hospital, department, service_name, beds, used, rng.randint(0, used // 4), stamp]
            )
    header = ["hopital", "departement", "service", "lits", "lits_occupes", "patients_graves",
              "mis_a_jour"]  # fmt: skip
    return "capacite-hospitaliere.csv", _csv(header, rows)


GATES = {
    "Stade de France": ("Porte A", "Porte D", "Porte H", "Porte M"),
    "Tour Eiffel": ("Accès Nord", "Accès Sud"),
    "Champ-de-Mars": ("Accès Nord", "Accès Sud", "Accès Est"),
    "Roland-Garros": ("Porte Gordon-Bennett", "Porte d'Auteuil"),
    "Parc des Princes": ("Porte Boulogne", "Porte Auteuil"),
}


def _gate_rows(rng: random.Random) -> tuple[str, bytes]:
    rows = []
    for venue, gates in GATES.items():
        for gate in gates:
            for quarter in range(40, 96):  # 10:00 to midnight, every 15 minutes
                when = DAY + timedelta(minutes=15 * quarter)
                peak = 1.0 if 68 <= quarter <= 80 else 0.35  # the evening's sessions
                count = int(rng.gauss(900 * peak, 120 * peak))
                rows.append([venue, gate, when.isoformat(), max(0, count)])
    return "affluence.csv", _csv(["site", "porte", "heure", "entrees"], rows)


LINES = [("RER B", "Stade de France - Saint-Denis"), ("RER D", "Stade de France"),
         ("Métro 13", "Saint-Denis - Porte de Paris"), ("Métro 6", "Bir-Hakeim"),
         ("RER C", "Champ de Mars - Tour Eiffel"), ("Métro 9", "Porte de Saint-Cloud"),
         ("Tramway T3a", "Porte d'Auteuil")]  # fmt: skip
NATURES = ["Colis suspect", "Panne de signalisation", "Affluence exceptionnelle",
           "Personne sur les voies", "Malaise voyageur", "Incident technique"]  # fmt: skip
STATIONS = {
    "Stade de France - Saint-Denis": (2.3538, 48.9186),
    "Stade de France": (2.3600, 48.9215),
    "Saint-Denis - Porte de Paris": (2.3567, 48.9297),
    "Bir-Hakeim": (2.2893, 48.8539),
    "Champ de Mars - Tour Eiffel": (2.2895, 48.8559),
    "Porte de Saint-Cloud": (2.2567, 48.8376),
    "Porte d'Auteuil": (2.2585, 48.8480),
}


def _incident_features(rng: random.Random) -> tuple[str, bytes]:
    features = []
    for number in range(1, 41):
        line, station = rng.choice(LINES)
        lon, lat = STATIONS[station]
        start = DAY + timedelta(minutes=rng.randint(360, 1380))
        end = start + timedelta(minutes=rng.randint(5, 90))
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "numero": f"TR-{number:03d}",
                    "ligne": line,
                    "gare": station,
                    "nature": rng.choice(NATURES),
                    "debut": start.isoformat(),
                    "fin": end.isoformat() if number % 7 else None,  # some still running
                    "gravite": rng.choice(["faible", "moyenne", "moyenne", "forte"]),
                },
            }
        )
    collection = {"type": "FeatureCollection", "features": features}
    return "incidents.geojson", json.dumps(collection, ensure_ascii=False).encode()


DEPARTMENTS = ["75", "77", "78", "91", "92", "93", "94", "95"]


def _heat_rows(rng: random.Random) -> tuple[str, bytes]:
    rows = []
    for offset in range(-3, 4):
        date = (DAY + timedelta(days=offset)).date().isoformat()
        base = 31 + 3 * (offset >= 0) - abs(offset)
        for department in DEPARTMENTS:
            tmax = round(base + rng.uniform(-1.5, 2.5) + (1.5 if department == "75" else 0), 1)
            level = "rouge" if tmax >= 37 else "orange" if tmax >= 34 else "jaune"
            rows.append([department, date, level, tmax])
    return "vigilance-canicule.csv", _csv(["departement", "date", "vigilance", "tmax"], rows)


SECTORS = ["Stade de France", "Tour Eiffel", "Champ-de-Mars", "Concorde", "Roland-Garros",
           "Parc des Princes", "Trocadéro", "Invalides"]  # fmt: skip
FORCES = ["Police nationale", "Gendarmerie nationale", "Sapeurs-pompiers", "Sécurité civile"]
MISSIONS = ["sécurisation", "circulation", "secours", "renseignement"]


def _force_features(rng: random.Random) -> tuple[str, bytes]:
    features = []
    for sector in SECTORS:
        venue = find_venue(sector)
        lon, lat = (venue.lon, venue.lat) if venue else (2.3522, 48.8566)
        for force in FORCES:
            mission = rng.choice(MISSIONS)
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [lon, lat]},
                    "properties": {
                        "secteur": sector,
                        "force": force,
                        "mission": mission,
                        "effectif": rng.randint(10, 400),
                    },
                }
            )
    collection = {"type": "FeatureCollection", "features": features}
    return "forces.geojson", json.dumps(collection, ensure_ascii=False).encode()


def _field(name: str, kind: str, title: str, **constraints: Any) -> dict[str, Any]:
    field: dict[str, Any] = {"name": name, "type": kind, "title": title}
    if constraints:
        field["constraints"] = constraints
    return field


PRODUCTS: list[DemoProduct] = [
    DemoProduct(
        slug="capacite-hospitaliere",
        name="Capacité hospitalière d'Île-de-France",
        description="Lits installés et occupés par hôpital et service, patients graves ; mis "
        "à jour par l'ARS Île-de-France.",
        tags=("santé", "hôpitaux", "lits"),
        steward="Léa Girard",
        level="NP",
        fields=(
            _field("hopital", "string", "Hôpital", required=True),
            _field("departement", "string", "Département"),
            _field("service", "string", "Service", required=True),
            _field("lits", "integer", "Lits installés", minimum=0),
            _field("lits_occupes", "integer", "Lits occupés", minimum=0),
            _field("patients_graves", "integer", "Patients graves", minimum=0),
            _field("mis_a_jour", "datetime", "Mis à jour"),
        ),
        primary_key=("hopital", "service"),
        rules=lambda orgs: {
            "rows": [
                {
                    "effect": "allow",
                    "when": {"op": "ne", "left": {"rec": "service"}, "right": _text("SAMU")},
                },
                {"effect": "allow", "when": _member_of(orgs["MINSANTE"])},
            ],
            "rows_default": "deny",
            "columns": [
                {
                    "columns": ["patients_graves"],
                    "effect": "deny",
                    "when": {"not": _in_group("MEDICAL")},
                },
            ],
        },
        rows=_hospital_rows,
        quality=(
            {
                "id": "departement",
                "kind": "pattern",
                "field": "departement",
                "pattern": r"\d{2}",
                "severity": "blocking",
                "note": "Un code de département à deux chiffres",
            },
            {"id": "lits", "kind": "range", "field": "lits", "min": 0, "max": 200},
        ),
    ),
    DemoProduct(
        slug="affluence-portes",
        name="Affluence aux portes des sites",
        description="Entrées comptées par porte, tous les quarts d'heure, sur les sites "
        "olympiques.",
        tags=("sites", "affluence", "JOP"),
        steward="Céline Dumont",
        level="NP",
        fields=(
            _field("site", "string", "Site", required=True),
            _field("porte", "string", "Porte", required=True),
            _field("heure", "datetime", "Quart d'heure", required=True),
            _field("entrees", "integer", "Entrées", minimum=0),
        ),
        primary_key=("site", "porte", "heure"),
        rules=lambda orgs: None,
        rows=_gate_rows,
        quality=(  # counts come every quarter of an hour: stale after 15 minutes
            {"id": "frais", "kind": "freshness", "max_age_minutes": 15},
            {"id": "taille", "kind": "row_count", "min": 100, "severity": "blocking"},
        ),
    ),
    DemoProduct(
        slug="incidents-transports",
        name="Incidents sur les transports en commun",
        description="Incidents signalés sur les lignes desservant les sites, avec leur gare.",
        tags=("transports", "RER", "métro"),
        steward="Camille Fontaine",
        level="NP",
        fields=(
            _field("numero", "string", "Numéro", required=True),
            _field("ligne", "string", "Ligne"),
            _field("gare", "string", "Gare"),
            _field("nature", "string", "Nature"),
            _field("debut", "datetime", "Début"),
            _field("fin", "datetime", "Fin"),
            _field("gravite", "string", "Gravité", enum=["faible", "moyenne", "forte"]),
            _field("geometry", "geojson", "Emplacement"),
        ),
        primary_key=("numero",),
        rules=lambda orgs: None,
        rows=_incident_features,
        quality=(  # some incidents are still running: the warning fails on 5 of 40 rows
            {
                "id": "fin",
                "kind": "required",
                "field": "fin",
                "note": "Un incident signalé doit recevoir son heure de fin",
            },
            {
                "id": "numero",
                "kind": "pattern",
                "field": "numero",
                "pattern": r"TR-\d{3}",
                "severity": "blocking",
            },
        ),
    ),
    DemoProduct(
        slug="vigilance-canicule",
        name="Vigilance canicule par département",
        description="Niveau de vigilance et température maximale prévue, par département "
        "d'Île-de-France.",
        tags=("météo", "chaleur", "environnement"),
        steward="Olivier Chevalier",
        level="NP",
        fields=(
            _field("departement", "string", "Département", required=True),
            _field("date", "date", "Date", required=True),
            _field("vigilance", "string", "Vigilance", enum=["vert", "jaune", "orange", "rouge"]),
            _field("tmax", "number", "Température maximale (°C)"),
        ),
        primary_key=("departement", "date"),
        rules=lambda orgs: None,
        rows=_heat_rows,
        quality=(
            {"id": "frais", "kind": "freshness", "max_age_minutes": 1440},
            {"id": "tmax", "kind": "range", "field": "tmax", "min": -30, "max": 50},
        ),
    ),
    DemoProduct(
        slug="forces-deployees",
        name="Forces déployées par secteur",
        description="Effectifs engagés par force et par mission sur chaque secteur.",
        tags=("forces", "sécurité", "secteurs"),
        steward="Romain Morel",
        level="DR",
        fields=(
            _field("secteur", "string", "Secteur", required=True),
            _field("force", "string", "Force", required=True),
            _field("mission", "string", "Mission"),
            _field("effectif", "integer", "Effectif", minimum=0),
            _field("geometry", "geojson", "Position"),
        ),
        primary_key=("secteur", "force"),
        rules=lambda orgs: {
            "rows": [
                {
                    "effect": "allow",
                    "when": {
                        "op": "ne",
                        "left": {"rec": "mission"},
                        "right": _text("renseignement"),
                    },
                },
                {"effect": "allow", "when": _in_group("RENSEIGNEMENT")},
            ],
            "rows_default": "deny",
            "columns": [
                {
                    "columns": ["effectif"],
                    "effect": "deny",
                    "when": {"not": _member_of(orgs["MININT"])},
                },
            ],
        },
        rows=_force_features,
    ),
]


async def principal_of(session: AsyncSession, name: str) -> Principal:
    """A demo user, signed in as the loader (from this machine)."""
    user = await session.scalar(select(User).where(User.username == username_of(name)))
    assert user is not None, name
    client = Client(address="127.0.0.1", request_id="demo-loader")
    return await build_principal(session=session, user=user, scopes=None, client=client)


async def load(session: AsyncSession, settings: Settings) -> int:
    """Create, fill and publish the five products; does nothing when they exist."""
    if await session.scalar(select(DataProduct.id).where(DataProduct.slug == PRODUCTS[0].slug)):
        return 0
    orgs = {code: str(i) for code, i in await session.execute(select(Organisation.code,
                                                                     Organisation.id))}  # fmt: skip
    rng = random.Random(2024)  # noqa: S311 - reproducible demo data, not secrets
    made: dict[str, DataProduct] = {}
    for spec in PRODUCTS:
        steward = await principal_of(session, spec.steward)
        schema: dict[str, Any] = {"fields": list(spec.fields)}
        schema["primaryKey"] = list(spec.primary_key)
        product = await service.create_product(
            session=session,
            settings=settings,
            actor=steward,
            slug=spec.slug,
            name=spec.name,
            description=spec.description,
            tags=spec.tags,
            table_schema=schema,
            rules=spec.rules(orgs),
            label=LabelIn(level=spec.level),
        )
        filename, data = spec.rows(rng)
        await service.import_data(
            session=session,
            settings=settings,
            actor=steward,
            product_id=product.id,
            source=io.BytesIO(data),
            filename=filename,
            media_type=None,
            mode="replace",
        )
        await service.set_status(
            session=session, settings=settings, actor=steward, product_id=product.id,
            status="active",
        )  # fmt: skip
        if spec.quality:
            await quality.set_rules(
                session=session, settings=settings, actor=steward, product_id=product.id,
                items=spec.quality,
            )  # fmt: skip
            await storage.as_system(session, settings)  # the loader goes on as itself
        made[spec.slug] = product
    await _beds_per_department(session, settings, made["capacite-hospitaliere"])
    return len(PRODUCTS) + 1


SECOND_HEALTH_STEWARD = "Baptiste Renaud"


async def _beds_per_department(
    session: AsyncSession, settings: Settings, beds: DataProduct
) -> None:
    """The derived product: installed and occupied beds summed per department."""
    steward = await principal_of(session, PRODUCTS[0].steward)
    product = await derived_create.create_derived(
        session=session,
        settings=settings,
        actor=steward,
        slug="lits-par-departement",
        name="Lits hospitaliers par département",
        description="Lits installés et occupés, sommés par département ; recalculé depuis la "
        "capacité hospitalière à chacune de ses versions.",
        tags=("santé", "lits", "départements"),
        definition={
            "sources": [{"product": str(beds.id), "alias": "h"}],
            "group_by": ["departement"],
            "measures": [
                {"fn": "sum", "field": "lits", "name": "lits"},
                {"fn": "sum", "field": "lits_occupes", "name": "lits_occupes"},
                {"fn": "count", "name": "services"},
            ],
        },
        rules=None,
        label=LabelIn(level="NP"),
    )
    # Its source's rules restrict readers: a second steward of the domain releases it.
    await derived_create.release_derived(
        session=session,
        settings=settings,
        actor=await principal_of(session, SECOND_HEALTH_STEWARD),
        product_id=product.id,
    )
    await service.set_status(
        session=session, settings=settings, actor=steward, product_id=product.id,
        status="active",
    )  # fmt: skip
