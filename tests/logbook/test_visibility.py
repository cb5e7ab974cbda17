"""What each user receives through the entry surfaces equals what the rule allows: records at
every label combination, users across clearance × organisation × need-to-know."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.logbook.models import Entry
from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_group, make_org, officer, owner_tx, refuse_audit, tx

LEVELS = ("NP", "DR")
NTK = ((), ("VIP",), ("VIP", "RENS"))
AUDIENCES = ((), ("PP",), ("MININT",))  # PP lies under MININT


@dataclass(frozen=True)
class Reader:
    clearance: str
    groups: tuple[str, ...]
    org: str
    ancestry: tuple[str, ...]


@dataclass(frozen=True)
class Marking:
    level: str
    need_to_know: tuple[str, ...]
    audience: tuple[str, ...]
    owner: str


def allowed(user: Reader, label: Marking) -> bool:
    """The rule, written again from DESIGN.md, as the reference model."""
    level_ok = LEVELS.index(label.level) <= LEVELS.index(user.clearance)
    ntk_ok = set(label.need_to_know) <= set(user.groups)
    audience = set(label.audience)
    org_ok = not audience or user.org == label.owner or bool(audience & set(user.ancestry))
    return level_ok and ntk_ok and org_ok


async def test_entry_surfaces_match_the_reference_model(app: FastAPI, client: AsyncClient) -> None:
    await make_group(app, "VIP")
    await make_group(app, "RENS")
    await make_org(app, "MININT")
    await make_org(app, "PP", "MININT")
    await make_org(app, "SAMU")
    author = await officer(
        app, client, "author", "SAMU", groups=["VIP", "RENS"], roles=(Role.WATCH_OFFICER,)
    )
    labels: dict[str, Marking] = {}
    for level, ntk, audience in itertools.product(LEVELS, NTK, AUDIENCES):
        body = {
            **ENTRY,
            "label": {"level": level, "need_to_know": list(ntk), "audience": list(audience)},
        }
        created = await client.post("/api/v1/entries", json=body, headers=author)
        assert created.status_code == 201, created.text
        entry_id = created.json()["id"]
        await client.post(
            f"/api/v1/entries/{entry_id}/comments", json={"body": "vu"}, headers=author
        )
        labels[entry_id] = Marking(level, ntk, audience, "SAMU")
    users: list[tuple[Reader, dict[str, str]]] = []
    for clearance, groups, org in itertools.product(
        LEVELS, ((), ("VIP",), ("VIP", "RENS")), ("PP", "MININT", "SAMU")
    ):
        name = f"u-{clearance}-{len(groups)}-{org}".lower()
        headers = await officer(app, client, name, org, clearance=clearance, groups=groups)
        ancestry = {"PP": ("PP", "MININT"), "MININT": ("MININT",), "SAMU": ("SAMU",)}[org]
        users.append((Reader(clearance, groups, org, ancestry), headers))
    checked = 0
    for user, headers in users:
        expected = {i for i, label in labels.items() if allowed(user, label)}
        feed = (await client.get("/api/v1/entries?limit=200", headers=headers)).json()["items"]
        assert {e["id"] for e in feed} == expected, user
        for entry_id in labels:
            got = await client.get(f"/api/v1/entries/{entry_id}", headers=headers)
            versions = await client.get(f"/api/v1/entries/{entry_id}/versions", headers=headers)
            comments = await client.get(f"/api/v1/entries/{entry_id}/comments", headers=headers)
            status = 200 if entry_id in expected else 404
            assert (got.status_code, versions.status_code, comments.status_code) == (status,) * 3
            checked += 1
    assert checked == len(users) * len(labels) == 18 * 18


async def test_no_audit_no_entry(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    created = (await client.post("/api/v1/entries", json=ENTRY, headers=alice)).json()
    async with owner_tx(app) as session:
        await refuse_audit(session)
    read = await client.get(f"/api/v1/entries/{created['id']}", headers=alice)
    assert read.status_code == 503 and "title" not in read.text
    feed = await client.get("/api/v1/entries", headers=alice)
    assert feed.status_code == 503 and created["title"] not in feed.text
    write = await client.post("/api/v1/entries", json=ENTRY, headers=alice)
    assert write.status_code == 503
    async with tx(app) as session:
        assert await session.scalar(select(func.count()).select_from(Entry)) == 1
