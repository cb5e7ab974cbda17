"""The demo's hub (docs/adr/0042): a dozen liaison officers on duty in the operation's rooms
(the night shift ending, the day shift on, the evening shift next), two shared documents and
two announcements of the CNCS. Made through the services, by the demo's own people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.db import utcnow
from hypervision.demo.scenario import username_of
from hypervision.hub import announcements, documents, duty
from hypervision.hub.models import DutyAssignment, Importance
from hypervision.hub.schemas import AnnouncementCreate, DutyCreate
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.records.schemas import LabelIn
from hypervision.storage.blobs import BlobStore, LocalBlobStore

WATCH = "Claire Dubois"  # keeps the directory, publishes the announcements (CNCS)


@dataclass(frozen=True)
class Shift:
    who: str  # a demo user's name, or a name typed in for someone without an account
    account: bool
    organisation: str
    room: str
    function: str
    phone: str
    radio: str
    start: int  # hours from now
    hours: int


SHIFTS = [
    Shift("Marc Lefebvre", True, "MININT-CNCS", "Salle CNCS", "Chef de salle adjoint",
          "01 49 27 40 01", "TPH CNCS 1", -3, 12),
    Shift("Nadia Benali", True, "PP-DOPC", "Salle CNCS", "Officière de liaison DOPC",
          "01 53 71 40 02", "TPH DOPC 3", -3, 12),
    Shift("Karim Haddad", True, "ARSIDF-SAMU75", "Salle CNCS", "Médecin régulateur de liaison",
          "01 40 27 40 03", "", -3, 12),
    Shift("Étienne Lacroix", True, "MINARMEES", "Salle CNCS", "Officier de liaison Sentinelle",
          "01 44 42 40 04", "PR4G 12", 9, 12),
    Shift("Antoine Roux", True, "PP-DOPC", "PC Stade de France", "Officier de liaison",
          "06 12 34 56 05", "TPH SDF 2", -2, 10),
    Shift("Cdt Martin (SDIS 93)", False, "PP-BSPP", "PC Stade de France",
          "Officier sapeur-pompier", "06 12 34 56 06", "ANTARES 93-1", -2, 10),
    Shift("Sarah Legrand", True, "DGGN-GGD93", "PC Stade de France", "Officière gendarmerie",
          "06 12 34 56 07", "", 8, 10),
    Shift("Hugo Faure", True, "PP-DOPC", "PC Paris La Défense Arena", "Officier de liaison",
          "06 12 34 56 08", "TPH PLDA 1", -1, 8),
    Shift("Zoé Robin", True, "ARSIDF-SAMU75", "PC Paris La Défense Arena", "Infirmière SAMU",
          "06 12 34 56 09", "", -1, 8),
    Shift("Julie Fournier", True, "DGSCGC-COGIC", "COGIC", "Officière de permanence",
          "01 72 71 40 10", "", -4, 12),
    Shift("M. Dupré (RATP)", False, "TRANS-DGITM", "Salle CNCS", "Liaison RATP",
          "01 58 76 40 11", "", -3, 12),
    Shift("Lucas Mercier", True, "PP-BSPP", "PC Concorde", "Officier BSPP",
          "06 12 34 56 12", "ANTARES 75-4", 1, 8),
]  # fmt: skip

DOCUMENTS = [
    (
        "Numéros utiles des salles",
        "Standard, permanences et canaux radio de chaque salle de l'opération.",
        "numeros-utiles.csv",
        "salle;standard;radio\nSalle CNCS;01 49 27 40 00;TPH CNCS 1\n"
        "PC Stade de France;01 49 46 40 00;TPH SDF 1\nCOGIC;01 72 71 40 00;\n",
        LabelIn(level="NP", audience=[]),
    ),
    (
        "Consignes d'évacuation — Stade de France",
        "Points de rassemblement et itinéraires d'évacuation des tribunes.",
        "consignes-evacuation.txt",
        "Consignes d'évacuation du Stade de France\n\n1. Tribune nord : porte B.\n"
        "2. Tribune sud : porte K.\n3. Point de rassemblement : parvis Est.\n",
        LabelIn(level="DR", audience=[]),
    ),
]

ANNOUNCEMENTS = [
    AnnouncementCreate(
        title="Cérémonie d'ouverture : bascule en dispositif renforcé à 17 h",
        body="Toutes les salles passent en **dispositif renforcé** à 17 h.\n\n"
        "- Point de situation toutes les heures ;\n- relèves décalées à 23 h.",
        importance=Importance.IMPORTANT,
        label=LabelIn(level="NP", audience=[]),
    ),
    AnnouncementCreate(
        title="Orages prévus en soirée sur l'Île-de-France",
        body="Vigilance **orange** orages de 19 h à minuit. Prévoir l'abri des spectateurs.",
        importance=Importance.URGENT,
        label=LabelIn(level="NP", audience=[]),
    ),
]


async def _principal(session: AsyncSession, name: str) -> Principal:
    user = await session.scalar(select(User).where(User.username == username_of(name)))
    assert user is not None, name
    client = Client(address="127.0.0.1", request_id="demo-loader")
    return await build_principal(session=session, user=user, scopes=None, client=client)


async def load(session: AsyncSession, settings: Settings, blobs: BlobStore | None = None) -> int:
    """Create the directory, the documents and the announcements; returns how many shifts
    were made (none when the directory is already there)."""
    if await session.scalar(select(DutyAssignment.id).limit(1)):
        return 0
    chef = await _principal(session, WATCH)
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    for shift in SHIFTS:
        starts = now + timedelta(hours=shift.start)
        data = DutyCreate(
            username=username_of(shift.who) if shift.account else None,
            person_name="" if shift.account else shift.who,
            organisation=shift.organisation,
            room=shift.room,
            function=shift.function,
            phone=shift.phone,
            radio=shift.radio,
            email=f"{username_of(shift.who)}@demo.hypervision.example" if shift.account else None,
            starts_at=starts,
            ends_at=starts + timedelta(hours=shift.hours),
        )
        await duty.create_duty(session=session, actor=chef, data=data)
    store = blobs or LocalBlobStore(settings.blob_dir)
    for title, description, filename, text, label in DOCUMENTS:
        await documents.add_document(
            session=session,
            settings=settings,
            actor=chef,
            blobs=store,
            title=title,
            description=description,
            label=label,
            filename=filename,
            data=text.encode(),
        )
    for notice in ANNOUNCEMENTS:
        await announcements.create_announcement(
            session=session, settings=settings, actor=chef, data=notice
        )
    return len(SHIFTS)
