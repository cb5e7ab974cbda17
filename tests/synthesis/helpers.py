"""A small crisis room for the synthesis tests: people made on first use (with an e-mail
address, which ``tests.factories.make_user`` does not set), entries, drafts, the workflow
steps, and the text of a PDF page by page."""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from pypdf import PdfReader
from sqlalchemy import select

from hypervision.identity import service
from hypervision.identity.models import NeedToKnowGroup, Organisation, User
from hypervision.identity.schemas import UserCreate
from hypervision.policy.roles import Role
from hypervision.synthesis.models import SynthesisRecipient
from tests.factories import ADMIN, ENTRY, PASSWORD, make_group, make_org, sign_in, tx

W, A, OFF = Role.WATCH_OFFICER, Role.AUTHORITY, Role.OFFICER
MARKING = "DIFFUSION RESTREINTE"


@dataclass(frozen=True)
class Person:
    org: str
    roles: tuple[Role, ...]
    clearance: str
    full_name: str
    groups: tuple[str, ...] = ()
    email: bool = True


PEOPLE: dict[str, Person] = {
    # the national centre's watch officers (write, submit, validate, send)
    "claire": Person("CNCS", (W,), "DR", "Claire Dubois", ("VIP",)),
    "marc": Person("CNCS", (W,), "DR", "Marc Lefebvre"),
    "sophie": Person("CNCS", (W,), "DR", "Sophie Martin", ("VIP",)),
    "lucie": Person("CNCS", (W,), "DR", "Lucie Moreau", ("MEDICAL",)),  # the medical desk
    # officers who write entries (and read the feed)
    "antoine": Person("PP", (OFF,), "DR", "Antoine Roux", ("VIP",)),
    "emilie": Person("PP", (OFF,), "NP", "Émilie Blanc"),
    # authorities: the prefecture has cleared and uncleared members, the town hall none
    "prefet": Person("PREF", (A,), "DR", "Hélène Préfète"),
    "ministre": Person("PREF", (A,), "DR", "Jean Ministre", ("VIP",)),
    "garde": Person("PREF", (A,), "NP", "Paul Garde"),
    "philippe.garnier": Person("PREF", (A,), "DR", "Philippe Garnier"),
    "docteur": Person("PREF", (A,), "DR", "Nadia Docteur", ("MEDICAL",)),
    "maire": Person("MAIRIE", (A,), "NP", "Anne Maire"),
    "elu": Person("MAIRIE", (A,), "NP", "Louis Élu", email=False),
}

PUBLIC = {"level": "NP", "audience": []}  # released to every organisation
RESTRICTED = {"level": "DR", "audience": []}


def email_of(username: str) -> str:
    return f"{username}@example.org"


@dataclass
class Room:
    """``await room("claire")`` makes Claire (and her organisation) once, signs her in and
    returns her bearer headers."""

    app: FastAPI
    client: AsyncClient
    signed_in: dict[str, dict[str, str]] = field(default_factory=dict)

    async def __call__(self, username: str) -> dict[str, str]:
        if username not in self.signed_in:
            await self._make(username)
            self.signed_in[username] = await sign_in(self.client, username)
        return self.signed_in[username]

    async def _make(self, username: str) -> None:
        spec = PEOPLE[username]
        async with tx(self.app) as session:
            org = await session.scalar(select(Organisation).where(Organisation.code == spec.org))
            known = set(await session.scalars(select(NeedToKnowGroup.code)))
        if org is None:
            await make_org(self.app, spec.org)
        for group in set(spec.groups) - known:
            await make_group(self.app, group)
        data = UserCreate(
            username=username,
            full_name=spec.full_name,
            email=email_of(username) if spec.email else None,
            organisation_code=spec.org,
            roles=list(spec.roles),
            clearance=spec.clearance,
            groups=list(spec.groups),
            password=PASSWORD,
        )
        async with tx(self.app) as session:
            await service.create_user(
                session=session,
                actor=ADMIN,
                settings=self.app.state.settings,
                passwords=self.app.state.passwords,
                data=data,
            )

    async def entry(self, username: str, title: str, **fields: Any) -> dict[str, Any]:
        """An entry written by ``username``; released to everyone unless ``label`` says."""
        body = {**ENTRY, "label": PUBLIC, **fields, "title": title}
        response = await self.client.post(
            "/api/v1/entries", json=body, headers=await self(username)
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def draft(self, username: str, title: str, **scope: Any) -> dict[str, Any]:
        body = {"title": title, "scope": scope or {"hours": 24}}
        response = await self.client.post(
            "/api/v1/syntheses", json=body, headers=await self(username)
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def step(
        self, username: str, synthesis_id: str, action: str, json: Any = None, status: int = 200
    ) -> dict[str, Any]:
        """``POST /syntheses/{id}/{action}`` as ``username``, expecting ``status``."""
        response = await self.client.post(
            f"/api/v1/syntheses/{synthesis_id}/{action}", json=json, headers=await self(username)
        )
        assert response.status_code == status, response.text
        return dict(response.json()) if response.content else {}

    async def patch(
        self, username: str, synthesis_id: str, body: dict[str, Any], status: int = 200
    ) -> dict[str, Any]:
        response = await self.client.patch(
            f"/api/v1/syntheses/{synthesis_id}", json=body, headers=await self(username)
        )
        assert response.status_code == status, response.text
        return dict(response.json())

    async def validated(self, author: str, validator: str, synthesis_id: str) -> dict[str, Any]:
        """Submitted by its author, validated by another watch officer."""
        await self.step(author, synthesis_id, "submit")
        return await self.step(validator, synthesis_id, "validate")

    async def sent(
        self, author: str, validator: str, synthesis_id: str, **recipients: list[str]
    ) -> dict[str, Any]:
        for username in recipients.get("users", []):
            await self(username)
        await self.validated(author, validator, synthesis_id)
        return await self.step(validator, synthesis_id, "send", json=recipients)

    async def pdf(self, username: str, synthesis_id: str) -> bytes:
        response = await self.client.get(
            f"/api/v1/syntheses/{synthesis_id}/pdf", headers=await self(username)
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        return response.content

    async def user_id(self, username: str) -> uuid.UUID:
        await self(username)
        async with tx(self.app) as session:
            found = await session.scalar(select(User.id).where(User.username == username))
        assert found is not None
        return found

    async def recipients(self, synthesis_id: str) -> list[SynthesisRecipient]:
        async with tx(self.app) as session:
            return list(
                await session.scalars(
                    select(SynthesisRecipient).where(
                        SynthesisRecipient.synthesis_id == uuid.UUID(synthesis_id)
                    )
                )
            )


def pages_text(data: bytes) -> list[str]:
    """The text of every page, whitespace collapsed (letter-spaced headings come out with
    spaces between glyphs in some extractions: see ``squeezed``)."""
    reader = PdfReader(io.BytesIO(data))
    return [re.sub(r"\s+", " ", page.extract_text() or "") for page in reader.pages]


def squeezed(text: str) -> str:
    """Text without any whitespace, to count markings drawn with letter spacing."""
    return re.sub(r"\s+", "", text)
