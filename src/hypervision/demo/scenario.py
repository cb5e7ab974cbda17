"""The Paris 2024-like demo: organisations, need-to-know groups and about 60 users.

Every demo account shares one password (``DEMO_PASSWORD``), printed in the README: this is a
demonstration, never a deployment. Accounts marked ``mfa`` get a TOTP secret at load time;
``hypervision demo otp <username>`` prints their current code.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import pyotp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.config import Settings
from hypervision.identity import service
from hypervision.identity.models import User
from hypervision.identity.passwords import Passwords
from hypervision.identity.principal import system_principal
from hypervision.identity.schemas import GroupCreate, OrganisationCreate, UserCreate
from hypervision.identity.secrets import SecretBox
from hypervision.policy.roles import Role

DEMO_PASSWORD = "Hypervision-JO2024!"  # noqa: S105 - published demo password

# code, name, parent, MFA enforced
ORGANISATIONS: list[tuple[str, str, str | None, bool]] = [
    ("MININT", "Ministère de l'Intérieur", None, False),
    ("MININT-CNCS", "Centre national de commandement stratégique", "MININT", True),
    ("MININT-PP", "Préfecture de police", "MININT", False),
    ("PP-DOPC", "Direction de l'ordre public et de la circulation", "MININT-PP", False),
    ("PP-BSPP", "Brigade de sapeurs-pompiers de Paris", "MININT-PP", False),
    ("MININT-DGGN", "Direction générale de la Gendarmerie nationale", "MININT", False),
    ("DGGN-GGD93", "Groupement de gendarmerie de Seine-Saint-Denis", "MININT-DGGN", False),
    ("MININT-DGSCGC", "Direction générale de la sécurité civile et de la gestion des crises",
     "MININT", False),
    ("DGSCGC-COGIC", "Centre opérationnel de gestion interministérielle des crises",
     "MININT-DGSCGC", False),
    ("MINSANTE", "Ministère de la Santé", None, False),
    ("SANTE-ARSIDF", "Agence régionale de santé Île-de-France", "MINSANTE", False),
    ("ARSIDF-SAMU75", "SAMU de Paris", "SANTE-ARSIDF", False),
    ("MINTRANSPORTS", "Ministère chargé des Transports", None, False),
    ("TRANS-DGITM", "Direction générale des infrastructures, des transports et des mobilités",
     "MINTRANSPORTS", False),
    ("MINARMEES", "Ministère des Armées", None, False),
    ("ARMEES-EMZDP", "État-major de zone de défense de Paris", "MINARMEES", False),
    ("MINSPORTS", "Ministère des Sports et des Jeux olympiques et paralympiques", None, False),
    ("SPORTS-DIJOP", "Délégation interministérielle aux Jeux olympiques et paralympiques",
     "MINSPORTS", False),
    ("MINECOLOGIE", "Ministère de la Transition écologique", None, False),
    ("ECO-DRIEAT", "Direction régionale et interdépartementale de l'environnement (IDF)",
     "MINECOLOGIE", False),
]  # fmt: skip

# What each service's officers usually report (the new-entry form proposes it).
DEFAULT_CATEGORIES = {
    "MININT-PP": "public_order",
    "PP-DOPC": "public_order",
    "PP-BSPP": "rescue",
    "MININT-DGGN": "security",
    "DGGN-GGD93": "security",
    "MININT-DGSCGC": "rescue",
    "DGSCGC-COGIC": "rescue",
    "MINSANTE": "health",
    "SANTE-ARSIDF": "health",
    "ARSIDF-SAMU75": "health",
    "MINTRANSPORTS": "transport",
    "TRANS-DGITM": "transport",
    "MINARMEES": "security",
    "ARMEES-EMZDP": "security",
    "MINSPORTS": "logistics",
    "SPORTS-DIJOP": "logistics",
    "MINECOLOGIE": "environment",
    "ECO-DRIEAT": "environment",
}

GROUPS = [
    ("PROTECTION-VIP", "Protection des hautes personnalités"),
    ("RENSEIGNEMENT", "Renseignement opérationnel"),
    ("MEDICAL", "Données médicales nominatives"),
]

OFF, W, A, S = Role.OFFICER, Role.WATCH_OFFICER, Role.AUTHORITY, Role.DATA_STEWARD
ADM, SEC = Role.ADMINISTRATOR, Role.SECURITY_OFFICER
ORG_ADM = Role.ORGANISATION_ADMINISTRATOR


@dataclass(frozen=True)
class DemoUser:
    name: str
    org: str
    roles: tuple[Role, ...]
    clearance: str
    groups: tuple[str, ...] = ()
    mfa: bool = False


USERS: list[DemoUser] = [
    # crisis-room leadership and watch officers
    DemoUser("Claire Dubois", "MININT-CNCS", (W,), "DR", ("PROTECTION-VIP", "RENSEIGNEMENT"), True),
    DemoUser("Marc Lefebvre", "MININT-CNCS", (W,), "DR", ("RENSEIGNEMENT",), True),
    DemoUser("Sophie Martin", "DGSCGC-COGIC", (W,), "DR"),
    DemoUser("Julien Bernard", "DGSCGC-COGIC", (W,), "DR", ("MEDICAL",)),
    DemoUser("Nadia Benali", "PP-DOPC", (W,), "DR", ("PROTECTION-VIP",)),
    DemoUser("Thomas Petit", "PP-DOPC", (W,), "NP"),
    DemoUser("Isabelle Moreau", "SPORTS-DIJOP", (W,), "DR"),
    DemoUser("Karim Haddad", "ARSIDF-SAMU75", (W,), "DR", ("MEDICAL",)),
    # authorities
    DemoUser("Laurent Nérac", "MININT-PP", (A,), "DR", ("PROTECTION-VIP", "RENSEIGNEMENT"), True),
    DemoUser("Hélène Rousseau", "MININT-CNCS", (A,), "DR", ("RENSEIGNEMENT",), True),
    DemoUser("Philippe Garnier", "MINSPORTS", (A,), "DR"),
    DemoUser("Anne Lambert", "MINSANTE", (A,), "DR", ("MEDICAL",)),
    # data stewards
    DemoUser("Camille Fontaine", "TRANS-DGITM", (S, OFF), "NP"),
    DemoUser("Olivier Chevalier", "ECO-DRIEAT", (S, OFF), "NP"),
    DemoUser("Léa Girard", "SANTE-ARSIDF", (S, OFF), "DR", ("MEDICAL",)),
    # administration and security
    DemoUser("Pierre Admin", "MININT", (ADM,), "DR", (), True),
    DemoUser("Agnès Habilitations", "MININT-CNCS", (ADM,), "DR", (), True),
    DemoUser("Vincent Securite", "MININT", (SEC,), "DR", (), True),
    DemoUser("Maria Audit", "MININT-CNCS", (SEC,), "DR", (), True),
    # the prefecture of police's own administrator: its access review, nothing else
    DemoUser("Bruno Garcia", "PP-DOPC", (ORG_ADM,), "DR", (), True),
    # liaison officers
    DemoUser("Antoine Roux", "PP-DOPC", (OFF,), "DR", ("PROTECTION-VIP",)),
    DemoUser("Émilie Blanc", "PP-DOPC", (OFF,), "NP"),
    DemoUser("Hugo Faure", "PP-DOPC", (OFF,), "DR"),
    DemoUser("Manon Andre", "PP-DOPC", (OFF,), "NP"),
    DemoUser("Lucas Mercier", "PP-BSPP", (OFF,), "DR"),
    DemoUser("Chloé Bonnet", "PP-BSPP", (OFF,), "NP"),
    DemoUser("Nicolas Francois", "PP-BSPP", (OFF,), "DR", ("MEDICAL",)),
    DemoUser("Sarah Legrand", "DGGN-GGD93", (OFF,), "DR", ("RENSEIGNEMENT",)),
    DemoUser("Maxime Gauthier", "DGGN-GGD93", (OFF,), "NP"),
    DemoUser("Inès Perrin", "DGGN-GGD93", (OFF,), "DR"),
    DemoUser("Romain Morel", "MININT-DGGN", (S, OFF), "DR"),
    DemoUser("Julie Fournier", "DGSCGC-COGIC", (OFF,), "DR"),
    DemoUser("Alexandre Girard", "DGSCGC-COGIC", (OFF,), "NP"),
    DemoUser("Pauline Lemaire", "MININT-DGSCGC", (OFF,), "NP"),
    DemoUser("Mehdi Kaci", "ARSIDF-SAMU75", (OFF,), "DR", ("MEDICAL",)),
    DemoUser("Laura Dupuis", "ARSIDF-SAMU75", (OFF,), "NP"),
    DemoUser("Baptiste Renaud", "SANTE-ARSIDF", (S, OFF), "DR", ("MEDICAL",)),
    DemoUser("Océane Lucas", "SANTE-ARSIDF", (OFF,), "NP"),
    DemoUser("Quentin Brunet", "TRANS-DGITM", (S, OFF), "NP"),
    DemoUser("Mathilde Roy", "TRANS-DGITM", (OFF,), "DR"),
    DemoUser("Florian Colin", "MINTRANSPORTS", (OFF,), "NP"),
    DemoUser("Élodie Vidal", "TRANS-DGITM", (OFF,), "NP"),
    DemoUser("Guillaume Caron", "ARMEES-EMZDP", (OFF,), "DR", ("RENSEIGNEMENT",)),
    DemoUser("Amandine Picard", "ARMEES-EMZDP", (OFF,), "DR"),
    DemoUser("Kevin Marchand", "ARMEES-EMZDP", (OFF,), "NP"),
    DemoUser("Céline Dumont", "SPORTS-DIJOP", (S, OFF), "DR"),
    DemoUser("Sébastien Noël", "SPORTS-DIJOP", (OFF,), "NP"),
    DemoUser("Aurélie Meyer", "SPORTS-DIJOP", (OFF,), "NP"),
    DemoUser("Yann Le Gall", "ECO-DRIEAT", (S, OFF), "NP"),
    DemoUser("Margaux Barbier", "ECO-DRIEAT", (OFF,), "NP"),
    DemoUser("Damien Arnaud", "MINECOLOGIE", (OFF,), "DR"),
    DemoUser("Fatima Zahra Alaoui", "MININT-PP", (OFF,), "DR", ("RENSEIGNEMENT",)),
    DemoUser("Jérôme Schmitt", "MININT-PP", (OFF,), "NP"),
    DemoUser("Victoire Lemoine", "MININT-CNCS", (OFF,), "DR", (), True),
    DemoUser("Samuel Cohen", "MININT-CNCS", (OFF,), "DR", ("PROTECTION-VIP",), True),
    DemoUser("Lina Boucher", "PP-BSPP", (OFF,), "NP"),
    DemoUser("Arthur Guerin", "DGGN-GGD93", (OFF,), "NP"),
    DemoUser("Zoé Robin", "ARSIDF-SAMU75", (OFF,), "DR", ("MEDICAL",)),
    DemoUser("Bruno Masson", "MINSANTE", (OFF,), "NP"),
    DemoUser("Nathalie Hubert", "MININT-DGSCGC", (OFF,), "DR"),
    DemoUser("Étienne Lacroix", "MINARMEES", (OFF,), "DR"),
]

MACHINE_USER = ("sig-bsp-connector", "Connecteur SI BSPP", "PP-BSPP")


def username_of(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    first, _, last = ascii_name.lower().partition(" ")
    return f"{first}.{last.replace(' ', '')}"


def demo_usernames() -> set[str]:
    return {username_of(u.name) for u in USERS} | {MACHINE_USER[0]}


async def load(session: AsyncSession, settings: Settings) -> int:
    """Create the scenario's organisations, groups and users; returns how many users were made.
    Does nothing when the scenario is already there."""
    if await session.scalar(select(User.id).where(User.username == username_of(USERS[0].name))):
        return 0
    actor = system_principal("demo-loader")
    for code, name, parent, mfa_required in ORGANISATIONS:
        org = OrganisationCreate(
            code=code,
            name=name,
            parent_code=parent,
            mfa_required=mfa_required,
            default_category=DEFAULT_CATEGORIES.get(code),
        )
        await service.create_organisation(session=session, actor=actor, data=org)
    for code, name in GROUPS:
        await service.create_group(
            session=session, actor=actor, data=GroupCreate(code=code, name=name)
        )
    passwords = Passwords(settings)
    shared_hash = await passwords.hash(DEMO_PASSWORD)
    box = SecretBox(settings.secret_key)
    for spec in USERS:
        data = UserCreate(
            username=username_of(spec.name),
            full_name=spec.name,
            organisation_code=spec.org,
            roles=list(spec.roles),
            clearance=spec.clearance,
            groups=list(spec.groups),
        )
        user = await service.create_user(
            session=session, actor=actor, settings=settings, passwords=passwords, data=data
        )
        user.password_hash = shared_hash
        if spec.mfa:
            user.mfa_secret, user.mfa_enabled = box.seal(pyotp.random_base32()), True
    username, full_name, org_code = MACHINE_USER
    machine = UserCreate(
        username=username,
        full_name=full_name,
        organisation_code=org_code,
        roles=[Role.OFFICER],
        clearance="NP",
        is_machine=True,
    )
    await service.create_user(
        session=session, actor=actor, settings=settings, passwords=passwords, data=machine
    )
    await session.flush()
    return len(USERS) + 1
