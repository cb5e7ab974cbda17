"""A token and its holder in one statement: the same principal as built step by step."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.identity.auth import Client, build_principal
from hypervision.identity.credentials import holder_of
from hypervision.identity.models import ApiToken, AuthSession
from hypervision.identity.secrets import new_token
from hypervision.identity.service import organisation_ancestry
from tests.factories import make_group, make_org, make_user, sign_in, tx
from tests.queries import count_queries


def sql(statements: list[str]) -> list[str]:
    """Leaving out what opens the transaction (SQLite's BEGIN, PostgreSQL's RLS context)."""
    return [s for s in statements if not s.startswith(("BEGIN", "SELECT set_config("))]


async def test_one_statement_gives_what_four_did(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "MININT")
    await make_org(app, "MININT-PP", "MININT")
    await make_org(app, "PP-DOPC", "MININT-PP")
    for code in ("NUC", "VIP"):
        await make_group(app, code)
    user = await make_user(app, "paul", "PP-DOPC", groups=("VIP", "NUC"), clearance="DR")
    token = (await sign_in(client, "paul"))["Authorization"].removeprefix("Bearer ")
    async with tx(app) as session:
        with count_queries(app) as statements:
            found = await holder_of(session, AuthSession, token)
        assert len(sql(statements)) == 1
        assert found is not None and isinstance(found.credential, AuthSession)
        assert found.user.id == user.id
        chain = await organisation_ancestry(session=session, org_id=user.organisation_id)
        assert found.ancestry == tuple(o.id for o in chain)
        assert len(found.ancestry) == 3
        assert found.groups == {"NUC", "VIP"}
        built = await build_principal(
            session=session, user=found.user, scopes=None, client=Client(None, None)
        )
        assert built.organisation_ancestry == found.ancestry
        assert built.groups == found.groups


async def test_unknown_token_and_user_without_groups(app: FastAPI) -> None:
    await make_org(app, "MAIRIE")
    await make_user(app, "lea", "MAIRIE")
    async with tx(app) as session:
        assert await holder_of(session, AuthSession, new_token("hvs_")) is None
        assert await holder_of(session, ApiToken, new_token("hvt_")) is None
