"""Organisation codes and usernames: read once per database, since they never change."""

from __future__ import annotations

from fastapi import FastAPI

from hypervision.identity import names
from tests.factories import make_org, make_user, tx
from tests.queries import count_queries


def sql(statements: list[str]) -> list[str]:
    """Leaving out what opens the transaction (SQLite's BEGIN, PostgreSQL's RLS context)."""
    return [s for s in statements if not s.startswith(("BEGIN", "SELECT set_config("))]


async def test_names_read_once_then_only_what_is_new(app: FastAPI) -> None:
    pp = await make_org(app, "PP")
    paul = await make_user(app, "paul", "PP")
    async with tx(app) as session:
        with count_queries(app) as first:
            found = await names.lookup(session, [paul.id, None], [pp.id])
        with count_queries(app) as again:
            same = await names.lookup(session, [paul.id], [pp.id])
    assert len(sql(first)) == 1  # every organisation and the unknown user, together
    assert len(sql(again)) == 0
    assert found.orgs[pp.id] == same.orgs[pp.id] == "PP"
    assert found.users == same.users == {paul.id: "paul"}

    mairie = await make_org(app, "MAIRIE")
    lea = await make_user(app, "lea", "MAIRIE")
    async with tx(app) as session:
        with count_queries(app) as new:
            found = await names.lookup(session, [paul.id, lea.id], [mairie.id])
        with count_queries(app) as unsaid:
            everything = await names.lookup(session, [], None)
    assert len(sql(new)) == 1  # a new organisation: all read again, with the one new user
    assert found.orgs[mairie.id] == "MAIRIE"
    assert found.users == {paul.id: "paul", lea.id: "lea"}
    assert len(sql(unsaid)) == 1  # organisations not named: read, not assumed
    assert set(everything.orgs) >= {pp.id, mairie.id}
    assert everything.users == {}
