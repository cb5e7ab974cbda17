"""The demo scenario loads on both engines and its accounts sign in as the README says."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.demo import scenario
from hypervision.identity import mfa
from hypervision.identity.models import Organisation, Role, User
from tests.factories import tx


async def test_demo_loads_once_and_users_sign_in(app: FastAPI, client: AsyncClient) -> None:
    settings = app.state.settings
    async with tx(app) as session:
        assert await scenario.load(session, settings) == len(scenario.USERS) + 1
    async with tx(app) as session:
        assert await scenario.load(session, settings) == 0  # idempotent
        users = list(await session.scalars(select(User)))
        orgs = await session.scalar(select(func.count()).select_from(Organisation))
    assert 55 <= len(users) <= 65
    assert orgs == len(scenario.ORGANISATIONS)
    roles = {role for user in users for role in user.roles}
    assert roles == {r.value for r in Role}
    assert {u.clearance for u in users} == {"NP", "DR"}

    form = {"username": "antoine.roux", "password": scenario.DEMO_PASSWORD}
    token = await client.post("/api/v1/auth/token", data=form)
    assert token.status_code == 200

    mfa_form = {"username": "claire.dubois", "password": scenario.DEMO_PASSWORD}
    assert (await client.post("/api/v1/auth/token", data=mfa_form)).status_code == 401
    async with tx(app) as session:
        claire = await session.scalar(select(User).where(User.username == "claire.dubois"))
        assert claire is not None
        code = mfa.current_otp(settings, claire)
    with_otp = await client.post("/api/v1/auth/token", data={**mfa_form, "otp": code})
    assert with_otp.status_code == 200
    assert with_otp.json()["mfa_enrolment_required"] is False
