# ruff: noqa: E501
"""The demo's main courante: a few hundred entries over four days around Paris 2024 venues,
with situations, comments, triage and varied labels. Deterministic (seeded)."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.db import utcnow
from hypervision.demo.scenario import USERS, username_of
from hypervision.geo import zones
from hypervision.geo.places import VENUES, find_venue
from hypervision.geo.schemas import ZoneCreate, ZoneKind
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import Organisation, User
from hypervision.identity.principal import Principal
from hypervision.logbook import comments, entries, situations, triage
from hypervision.logbook.models import Entry, Severity
from hypervision.logbook.schemas import CommentCreate, EntryCreate, Point, SituationCreate
from hypervision.policy.roles import Role
from hypervision.records.schemas import LabelIn
from hypervision.synthesis import service as synthesis_service
from hypervision.synthesis.schemas import Recipients, SynthesisDraft, SynthesisUpdate
from hypervision.synthesis.schemas import Scope as SynthesisScope

# name, kind, venue at its centre, half width in degrees, level
ZONES = [
    ("Périmètre Stade de France", ZoneKind.PERIMETER, "Stade de France", 0.008, "NP"),
    ("Périmètre Champ-de-Mars – Tour Eiffel", ZoneKind.PERIMETER, "Champ-de-Mars", 0.009, "NP"),
    ("Restriction de circulation Concorde", ZoneKind.TRAFFIC, "place de la Concorde", 0.006, "NP"),
    ("Zone d'évacuation pont d'Iéna", ZoneKind.EVACUATION, "pont d'Iéna", 0.004, "DR"),
]
ENTRY_COUNT = 320
DAYS = 4


# category: (organisations that write it, [(title template, body template)])
TEMPLATES: dict[str, tuple[tuple[str, ...], list[tuple[str, str]]]] = {
    "security": (
        ("PP-DOPC", "DGGN-GGD93", "ARMEES-EMZDP"),
        [
            (
                "Colis suspect — {venue}",
                "Bagage abandonné signalé près de {venue}. Périmètre de sécurité de 100 m, équipe de déminage engagée.",
            ),
            (
                "Intrusion en zone contrôlée — {venue}",
                "Individu ayant franchi le filtrage à {venue}, interpellé par les forces de l'ordre.",
            ),
            (
                "Drone non autorisé au-dessus de {venue}",
                "Drone détecté à basse altitude ; dispositif de brouillage activé, télépilote recherché.",
            ),
        ],
    ),
    "public_order": (
        ("PP-DOPC", "DGGN-GGD93"),
        [
            (
                "Rassemblement non déclaré — {venue}",
                "Environ {n} personnes rassemblées aux abords de {venue}. Situation calme, surveillance renforcée.",
            ),
            (
                "Forte affluence aux accès de {venue}",
                "Files d'attente de {minutes} minutes aux points de filtrage. Ouverture de files supplémentaires demandée.",
            ),
        ],
    ),
    "rescue": (
        ("PP-BSPP",),
        [
            (
                "Malaise d'un spectateur — {venue}",
                "Victime prise en charge par la BSPP à {venue}, évacuée vers l'hôpital.",
            ),
            (
                "Départ de feu — {venue}",
                "Feu de poubelle maîtrisé à proximité de {venue}, pas de victime.",
            ),
        ],
    ),
    "health": (
        ("ARSIDF-SAMU75", "SANTE-ARSIDF"),
        [
            (
                "Coups de chaleur en série — {venue}",
                "{n} prises en charge pour coup de chaleur à {venue}. Distribution d'eau renforcée.",
            ),
            (
                "Tension capacitaire aux urgences",
                "Taux d'occupation des urgences à {pct} %. Activation du plan blanc envisagée.",
            ),
        ],
    ),
    "transport": (
        ("TRANS-DGITM", "MINTRANSPORTS"),
        [
            (
                "Saturation de la ligne desservant {venue}",
                "Trafic ralenti, quais saturés ; régulation des flux en station.",
            ),
            (
                "Incident voyageur — desserte de {venue}",
                "Interruption de trafic de {minutes} minutes, reprise progressive.",
            ),
        ],
    ),
    "traffic": (
        ("PP-DOPC", "TRANS-DGITM"),
        [
            (
                "Voie olympique encombrée près de {venue}",
                "Ralentissements sur la voie réservée ; {n} véhicules non autorisés verbalisés.",
            ),
            (
                "Fermeture de voirie — {venue}",
                "Périmètre de circulation restreinte activé autour de {venue}.",
            ),
        ],
    ),
    "environment": (
        ("ECO-DRIEAT",),
        [
            (
                "Qualité de l'eau de la Seine — prélèvement {venue}",
                "Taux d'E. coli mesuré à {n} UFC/100 mL au point {venue}.",
            ),
            (
                "Débit de la Seine en hausse",
                "Débit mesuré à {n} m³/s, vigilance pour les épreuves nautiques.",
            ),
        ],
    ),
    "weather": (
        ("DGSCGC-COGIC",),
        [
            (
                "Vigilance orages — secteur {venue}",
                "Orages attendus en fin de journée ; consignes de mise à l'abri préparées.",
            ),
            (
                "Épisode de forte chaleur",
                "Températures prévues à {temp} °C ; vigilance canicule orange.",
            ),
        ],
    ),
    "logistics": (
        ("SPORTS-DIJOP", "DGSCGC-COGIC"),
        [
            (
                "Livraison retardée — {venue}",
                "Approvisionnement en eau retardé de {minutes} minutes à {venue}.",
            ),
            (
                "Panne d'alimentation électrique — {venue}",
                "Coupure partielle, groupes électrogènes en relais.",
            ),
        ],
    ),
    "cyber": (
        ("MININT-CNCS",),
        [
            (
                "Attaque par déni de service — billetterie",
                "Pic de {n} Gb/s contre la billetterie, absorbé par l'anti-DDoS.",
            ),
            (
                "Hameçonnage visant les bénévoles",
                "Campagne de courriels frauduleux ; message de prévention diffusé.",
            ),
        ],
    ),
    "communication": (
        ("SPORTS-DIJOP", "MININT-PP"),
        [
            (
                "Rumeur sur les réseaux sociaux — {venue}",
                "Fausse information sur une évacuation de {venue} ; démenti publié.",
            ),
            ("Point presse prévu à {venue}", "Point presse des autorités à {hour} h."),
        ],
    ),
}

SITUATIONS = [
    (
        "Cérémonie d'ouverture sur la Seine",
        Severity.CRITICAL,
        ("pont d'Iéna", "Trocadéro", "pont Alexandre-III"),
    ),
    (
        "Qualité de l'eau de la Seine et épreuves de triathlon",
        Severity.MAJOR,
        ("pont Alexandre-III", "pont d'Iéna"),
    ),
    (
        "Saturation des transports — nord de Paris",
        Severity.MAJOR,
        ("gare du Nord", "Stade de France", "Porte de la Chapelle Arena"),
    ),
    ("Épisode de forte chaleur", Severity.MAJOR, ("Champ-de-Mars", "esplanade des Invalides")),
    ("Menaces cyber contre l'organisation", Severity.MAJOR, ()),
    ("Colis suspects et levées de doute", Severity.MINOR, ("place de la Concorde",)),
]

COMMENTS = [
    "Reçu, transmis au PC.",
    "Renforts engagés.",
    "Levée de doute effectuée, RAS.",
    "Information confirmée par le terrain.",
    "À suivre au prochain point de situation.",
    "Le préfet a été informé.",
    "Photos disponibles auprès de l'équipe sur place.",
    "Situation revenue à la normale.",
    "Demande de précisions envoyée au service auteur.",
]


async def load(session: AsyncSession, settings: Settings) -> int:
    """Load the scenario's main courante; does nothing when entries already exist."""
    if await session.scalar(select(Entry.id).limit(1)) is not None:
        return 0
    rng = random.Random(2024)  # noqa: S311 - reproducible demo data, not secrets
    people = await _principals(session)
    by_org: dict[str, list[Principal]] = {}
    for principal, code in people:
        by_org.setdefault(code, []).append(principal)
    chiefs = [p for p, _ in people if Role.WATCH_OFFICER.value in p.roles]
    start = utcnow() - timedelta(days=DAYS)
    situation_ids: dict[str, tuple[uuid.UUID, tuple[str, ...]]] = {}
    for title, severity, venues in SITUATIONS:
        chief = chiefs[len(situation_ids) % len(chiefs)]
        created = await situations.create_situation(
            session=session,
            settings=settings,
            actor=chief,
            data=SituationCreate(
                title=title, severity=severity, started_at=start, label=LabelIn(level="NP")
            ),
        )
        situation_ids[title] = (created.id, venues)
    for number, (name, kind, venue, half_width, level) in enumerate(ZONES):
        place = find_venue(venue)
        assert place is not None, venue
        w, h = half_width, half_width * 0.66  # degrees: about as wide as high at 49° N
        ring = [
            [place.lon - w, place.lat - h],
            [place.lon + w, place.lat - h],
            [place.lon + w, place.lat + h],
            [place.lon - w, place.lat + h],
            [place.lon - w, place.lat - h],
        ]
        rank = settings.level_rank(level)  # a zone's author is cleared for its level
        cleared = [c for c in chiefs if c.clearance and settings.level_rank(c.clearance) >= rank]
        await zones.create_zone(
            session=session,
            settings=settings,
            actor=cleared[number % len(cleared)],
            data=ZoneCreate(
                name=name,
                kind=kind,
                geometry={"type": "Polygon", "coordinates": [ring]},
                label=LabelIn(level=level),
            ),
        )
    moments = sorted(
        start + timedelta(minutes=rng.uniform(0, DAYS * 24 * 60)) for _ in range(ENTRY_COUNT)
    )
    made: list[Entry] = []
    for moment in moments:
        made.append(await _one_entry(session, settings, rng, by_org, situation_ids, moment))
    await _triage_and_comment(session, settings, rng, chiefs, people, made)
    await _synthesis(session, settings, chiefs)
    return len(made)


async def _synthesis(session: AsyncSession, settings: Settings, chiefs: list[Principal]) -> None:
    """One point de situation of the last 24 hours, validated by a second watch officer and
    sent to the prefect's, the national centre's and the sports ministry's authorities."""
    author, validator = chiefs[0], chiefs[1]
    synthesis = await synthesis_service.draft(
        session=session,
        settings=settings,
        actor=author,
        data=SynthesisDraft(
            title="Point de situation de 19 h",
            scope=SynthesisScope(hours=24, min_severity=Severity.MAJOR),
            narrative=(
                "## Situation générale\n\nActivité soutenue autour des sites olympiques ; "
                "pas d'incident majeur non maîtrisé.\n\n## Points d'attention\n\n"
                "- Affluence aux abords du Stade de France en fin de soirée.\n"
                "- Chaleur : points d'eau renforcés sur le Champ-de-Mars.\n\n"
                "## Prochain point\n\nDemain 7 h.\n"
            ),
        ),
    )
    # Only what every recipient may read: no need-to-know group, released to everyone.
    chosen = await session.scalars(
        select(Entry).where(Entry.id.in_([uuid.UUID(i) for i in synthesis.entry_ids]))
    )
    shared = [e.id for e in chosen if not e.audience and not e.need_to_know]
    common: dict[str, Any] = {
        "session": session,
        "settings": settings,
        "synthesis_id": synthesis.id,
    }
    await synthesis_service.update(
        **common, actor=author, data=SynthesisUpdate(entry_ids=shared[:40])
    )
    await synthesis_service.submit(**common, actor=author)
    await synthesis_service.validate(**common, actor=validator)
    names = ("Laurent Nérac", "Hélène Rousseau", "Philippe Garnier")
    await synthesis_service.send(
        **common,
        actor=validator,
        recipients=Recipients(users=[username_of(n) for n in names]),
    )


async def _principals(session: AsyncSession) -> list[tuple[Principal, str]]:
    rows = (
        await session.execute(
            select(User, Organisation.code)
            .join(Organisation, Organisation.id == User.organisation_id)
            .where(User.is_active, User.is_machine.is_(False))
        )
    ).all()
    client = Client(address="127.0.0.1", request_id="demo-loader")
    order = {username_of(u.name): i for i, u in enumerate(USERS)}
    result = []  # in the scenario's order, whatever order the engine returns rows in
    for user, code in sorted(rows, key=lambda row: order.get(row[0].username, len(order))):
        principal = await build_principal(session=session, user=user, scopes=None, client=client)
        result.append((principal, code))
    return result


def _label(rng: random.Random, author: Principal) -> LabelIn:
    roll = rng.random()
    cleared = author.clearance == "DR"
    if cleared and roll < 0.07 and author.groups:
        return LabelIn(level="DR", need_to_know=[sorted(author.groups)[0]])
    if cleared and roll < 0.27:
        return LabelIn(level="DR")
    if roll < 0.40:
        return LabelIn(level="NP", audience=[])  # owner only is added by audience below
    return LabelIn(level="NP")


async def _one_entry(
    session: AsyncSession,
    settings: Settings,
    rng: random.Random,
    by_org: dict[str, list[Principal]],
    situation_ids: dict[str, tuple[uuid.UUID, tuple[str, ...]]],
    moment: datetime,
) -> Entry:
    category = rng.choice(list(TEMPLATES))
    orgs, templates = TEMPLATES[category]
    writers = [
        p
        for code in orgs
        for p in by_org.get(code, [])
        if "officer" in p.roles or "watch_officer" in p.roles
    ]
    author = rng.choice(writers)
    venue = rng.choice(VENUES)
    title, body = rng.choice(templates)
    values = {
        "venue": venue.name,
        "n": rng.choice([12, 25, 40, 80, 150, 300, 1200]),
        "minutes": rng.choice([10, 15, 20, 30, 45]),
        "pct": rng.choice([85, 92, 97, 104]),
        "temp": rng.choice([33, 35, 37, 38]),
        "hour": rng.choice([11, 14, 17, 19]),
    }
    label = _label(rng, author)
    audience_own = label.level == "NP" and label.audience == [] and rng.random() < 0.3
    situation_id = None
    for situation_title, (sid, venues) in situation_ids.items():
        if (venue.name in venues and rng.random() < 0.6) or (
            category == "cyber" and "cyber" in situation_title
        ):
            situation_id = sid
    jitter = rng.uniform(-0.002, 0.002)
    data = EntryCreate(
        title=title.format(**values),
        body=body.format(**values),
        category=category,
        severity=rng.choices(list(Severity), weights=[40, 35, 18, 7])[0],
        occurred_at=moment,
        location=Point(type="Point", coordinates=(venue.lon + jitter, venue.lat + jitter)),
        tags=["jo2024", venue.name.split()[-1].lower()],
        situation_id=situation_id,
        label=None if audience_own else label,
    )
    entry = await entries.create_entry(session=session, settings=settings, actor=author, data=data)
    # Demo data: recorded a few minutes after it happened, as a person would have typed it.
    entry.recorded_at = entry.updated_at = moment + timedelta(minutes=rng.uniform(1, 12))
    return entry


async def _triage_and_comment(
    session: AsyncSession,
    settings: Settings,
    rng: random.Random,
    chiefs: list[Principal],
    people: list[tuple[Principal, str]],
    made: list[Entry],
) -> None:
    from hypervision.policy.rules import Subject, can_see

    readers = [p for p, _ in people if "officer" in p.roles or "watch_officer" in p.roles]
    for entry in made:
        chief = rng.choice(chiefs)
        if not can_see(Subject.of(settings, chief), entry.label):
            continue
        if rng.random() < 0.35:
            await triage.validate(
                session=session, settings=settings, actor=chief, entry_id=entry.id
            )
        if rng.random() < 0.08:
            await triage.set_severity(
                session=session,
                settings=settings,
                actor=chief,
                entry_id=entry.id,
                severity=Severity.MAJOR,
            )
    for entry in rng.sample(made, k=len(made) // 2):
        candidates = [p for p in readers if can_see(Subject.of(settings, p), entry.label)]
        for _ in range(rng.choice([1, 1, 2, 3])):
            if candidates:
                await comments.add_comment(
                    session=session,
                    settings=settings,
                    actor=rng.choice(candidates),
                    entry_id=entry.id,
                    data=CommentCreate(body=rng.choice(COMMENTS)),
                )
