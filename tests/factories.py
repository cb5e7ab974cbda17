"""Factories: organisations, groups and users made through the real service functions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from hypervision.audit.sequencer import drain
from hypervision.config import Settings
from hypervision.db import session_factory, transaction
from hypervision.identity import service
from hypervision.identity.models import Organisation, User
from hypervision.identity.principal import system_principal
from hypervision.identity.schemas import GroupCreate, OrganisationCreate, UserCreate
from hypervision.policy.roles import Role

PASSWORD = "correct horse battery staple"
ADMIN = system_principal("tests")


@asynccontextmanager
async def tx(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A transaction of the server's own (system) context: set-up and checks."""
    async with transaction(app.state.system_sessions) as session:
        yield session


async def sequenced(app: FastAPI) -> int:
    """Chain the audit queue now, as the server's sequencer does in the background (tests
    run the app without its lifespan): what a test reads afterwards has its ``seq``."""
    async with tx(app) as session:
        return await drain(session)


REFUSE_AUDIT = "hv_test_refuse_audit"


async def refuse_audit(conn: AsyncSession | AsyncConnection) -> None:
    """Sabotage (as the owner): every later append to the audit trail fails, as when its table
    is unavailable. The test database's reset removes the trigger (tests.conftest)."""
    engine = conn.get_bind() if isinstance(conn, AsyncSession) else conn.engine
    if engine.dialect.name == "postgresql":
        await conn.execute(
            text(
                f"CREATE FUNCTION {REFUSE_AUDIT}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit trail unavailable (test)'; END $$"
            )
        )
        each = f"FOR EACH ROW EXECUTE FUNCTION {REFUSE_AUDIT}()"
        await conn.execute(
            text(f"CREATE TRIGGER {REFUSE_AUDIT} BEFORE INSERT ON audit_records {each}")
        )
    else:
        await conn.execute(
            text(
                f"CREATE TRIGGER {REFUSE_AUDIT} BEFORE INSERT ON audit_records "
                "BEGIN SELECT RAISE(ABORT, 'audit trail unavailable (test)'); END"
            )
        )


@asynccontextmanager
async def owner_tx(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A transaction as the database owner, for sabotage the application's role may not do
    (on PostgreSQL it connects as a restricted role; on SQLite there is one)."""
    from tests.conftest import OWNER_URLS

    owner = OWNER_URLS.get(app.state.settings.database_url)
    if owner is None:
        async with tx(app) as session:
            yield session
        return
    engine = create_async_engine(owner)
    try:
        async with transaction(session_factory(engine)) as session:
            yield session
    finally:
        await engine.dispose()


async def make_org(
    app: FastAPI, code: str, parent: str | None = None, *, mfa: bool = False
) -> Organisation:
    data = OrganisationCreate(
        code=code, name=f"Organisation {code}", parent_code=parent, mfa_required=mfa
    )
    async with tx(app) as session:
        return await service.create_organisation(session=session, actor=ADMIN, data=data)


async def make_group(app: FastAPI, code: str) -> None:
    async with tx(app) as session:
        await service.create_group(
            session=session, actor=ADMIN, data=GroupCreate(code=code, name=code)
        )


async def make_user(
    app: FastAPI,
    username: str,
    org: str,
    *,
    roles: Sequence[Role] = (Role.OFFICER,),
    clearance: str = "NP",
    groups: Sequence[str] = (),
    password: str | None = PASSWORD,
    machine: bool = False,
) -> User:
    settings: Settings = app.state.settings
    data = UserCreate(
        username=username,
        full_name=username.title(),
        organisation_code=org,
        roles=list(roles),
        clearance=clearance,
        groups=list(groups),
        password=password,
        is_machine=machine,
    )
    async with tx(app) as session:
        return await service.create_user(
            session=session,
            actor=ADMIN,
            settings=settings,
            passwords=app.state.passwords,
            data=data,
        )


async def sign_in(
    client: AsyncClient, username: str, password: str = PASSWORD, otp: str | None = None
) -> dict[str, str]:
    form = {"username": username, "password": password}
    if otp:
        form["otp"] = otp
    response = await client.post("/api/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def admin_headers(app: FastAPI, client: AsyncClient) -> dict[str, str]:
    await make_org(app, "ADMINS")
    await make_user(app, "root.admin", "ADMINS", roles=[Role.ADMINISTRATOR], clearance="DR")
    return await sign_in(client, "root.admin")


async def second_admin_headers(
    app: FastAPI, client: AsyncClient, username: str = "admin.two"
) -> dict[str, str]:
    """Another administrator (in the ADMINS organisation), for four-eyes approvals."""
    async with tx(app) as session:
        exists_ = await session.scalar(select(Organisation).where(Organisation.code == "ADMINS"))
    if exists_ is None:
        await make_org(app, "ADMINS")
    await make_user(app, username, "ADMINS", roles=[Role.ADMINISTRATOR], clearance="DR")
    return await sign_in(client, username)


async def approve_rights(client: AsyncClient, approver: dict[str, str], request: object) -> None:
    """A second administrator approves a pending rights request (a 202 answer's body, or the
    ``rights_request`` of a created user)."""
    assert isinstance(request, dict) and request.get("status") == "pending", request
    response = await client.post(
        f"/api/v1/rights-requests/{request['id']}/approve", headers=approver
    )
    assert response.status_code == 200, response.text


async def officer(
    app: FastAPI,
    client: AsyncClient,
    username: str,
    org: str,
    *,
    clearance: str = "DR",
    groups: Sequence[str] = (),
    roles: Sequence[Role] = (Role.OFFICER,),
) -> dict[str, str]:
    """A signed-in user (organisation created on first use) and their bearer headers."""
    async with tx(app) as session:
        exists_ = await session.scalar(select(Organisation).where(Organisation.code == org))
    if exists_ is None:
        await make_org(app, org)
    await make_user(app, username, org, roles=roles, clearance=clearance, groups=groups)
    return await sign_in(client, username)


ENTRY = {
    "title": "Colis suspect porte de la Chapelle",
    "body": "Périmètre de **sécurité** établi, démineurs prévenus.",
    "category": "security",
    "severity": "major",
    "location": {"type": "Point", "coordinates": [2.3601, 48.8984]},
    "tags": ["colis", "Chapelle"],
}
