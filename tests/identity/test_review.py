"""Access review (issue 21, docs/adr/0038): the report, its confirmation, its rights, and
dormant accounts disabled (time moved through the data); both engines."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update

from hypervision.audit.models import AuditRecord
from hypervision.config import Settings
from hypervision.db import utcnow
from hypervision.events.models import OutboxEvent
from hypervision.identity import review
from hypervision.identity.models import AccessReview, AuthSession, User
from hypervision.policy.roles import Role
from tests.conftest import once_across_engines
from tests.factories import (
    admin_headers,
    make_group,
    make_org,
    make_user,
    sequenced,
    sign_in,
    tx,
)
from tests.test_cli import _cli
from tests.web.pages import browse_as, csrf_of

URL = "/api/v1/organisations/MININT/access-review"


async def actions(app: FastAPI, action: str) -> list[AuditRecord]:
    await sequenced(app)
    async with tx(app) as session:
        found = await session.scalars(
            select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq)
        )
        return list(found)


async def age(app: FastAPI, username: str, days: int) -> None:
    """Moves an account's whole history ``days`` into the past (creation, change, sessions)."""
    then = utcnow() - timedelta(days=days)
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == username))
        assert user is not None
        await session.execute(
            update(User).where(User.id == user.id).values(created_at=then, updated_at=then)
        )
        await session.execute(
            update(AuthSession)
            .where(AuthSession.user_id == user.id)
            .values(created_at=then, last_seen_at=then)
        )


async def world(app: FastAPI, client: AsyncClient) -> dict[str, dict[str, str]]:
    admin = await admin_headers(app, client)
    await make_org(app, "MININT")
    await make_group(app, "CIC")
    await make_user(app, "alice", "MININT", clearance="DR", groups=["CIC"])
    await make_user(app, "bob", "MININT", roles=[Role.WATCH_OFFICER])
    await make_user(app, "robot", "MININT", machine=True, password=None)
    await make_user(app, "sec", "ADMINS", roles=[Role.SECURITY_OFFICER])
    return {
        "admin": admin,
        "alice": await sign_in(client, "alice"),
        "sec": await sign_in(client, "sec"),
    }


async def test_the_report_names_rights_activity_and_dormant_accounts(
    app: FastAPI, client: AsyncClient
) -> None:
    who = await world(app, client)
    await age(app, "bob", 100)  # never signed in, created 100 days ago: dormant
    answer = await client.get(URL, headers=who["admin"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["organisation_code"] == "MININT" and body["dormant_after_days"] == 90
    accounts = {a["username"]: a for a in body["accounts"]}
    assert list(accounts) == ["alice", "bob", "robot"]
    alice, bob, robot = accounts["alice"], accounts["bob"], accounts["robot"]
    assert (alice["roles"], alice["clearance"], alice["groups"]) == (["officer"], "DR", ["CIC"])
    assert alice["last_sign_in_at"] is not None and alice["dormant"] is False
    assert bob["roles"] == ["watch_officer"] and bob["last_sign_in_at"] is None
    assert bob["dormant"] is True and bob["is_active"] is True
    assert robot["is_machine"] is True and robot["dormant"] is False
    assert len(body["checksum"]) == 64 and body["last_review"] is None
    # The read is audited with the accounts it names.
    [read] = await actions(app, "access_review.read")
    assert sorted(read.resource_ids) == sorted(a["id"] for a in body["accounts"])
    assert read.detail == {"organisation": "MININT", "checksum": body["checksum"]}
    # The same accesses: the same checksum, however often the people work meanwhile.
    await sign_in(client, "alice")
    again = (await client.get(URL, headers=who["sec"])).json()
    assert again["checksum"] == body["checksum"]


async def test_rights_and_unknown_organisations(app: FastAPI, client: AsyncClient) -> None:
    who = await world(app, client)
    checksum = (await client.get(URL, headers=who["admin"])).json()["checksum"]
    confirm = {"checksum": checksum}
    unknown = "/api/v1/organisations/NOPE/access-review"
    # An officer: refused alike for a known and an unknown organisation.
    for url in (URL, unknown):
        assert (await client.get(url, headers=who["alice"])).status_code == 403
        assert (await client.post(url, json=confirm, headers=who["alice"])).status_code == 403
    # A security officer reads, does not confirm.
    assert (await client.get(URL, headers=who["sec"])).status_code == 200
    assert (await client.post(URL, json=confirm, headers=who["sec"])).status_code == 403
    # An administrator: 404 for an organisation that does not exist.
    missing = await client.get(unknown, headers=who["admin"])
    assert missing.status_code == 404
    assert (await client.post(unknown, json=confirm, headers=who["admin"])).status_code == 404
    malformed = await client.post(URL, json={"checksum": "abc"}, headers=who["admin"])
    assert malformed.status_code == 422
    assert malformed.json()["error"]["fields"][0]["field"].endswith("checksum")
    async with tx(app) as session:
        assert list(await session.scalars(select(AccessReview))) == []
    refusals = await actions(app, "refused:forbidden")
    assert {r.actor_name for r in refusals} == {"alice", "sec"}


async def test_a_confirmation_is_recorded_and_audited_and_must_be_current(
    app: FastAPI, client: AsyncClient
) -> None:
    who = await world(app, client)
    first = (await client.get(URL, headers=who["admin"])).json()
    bob = next(a for a in first["accounts"] if a["username"] == "bob")
    # The accesses change after the read: the confirmation of the old report is refused.
    disabled = await client.post(f"/api/v1/users/{bob['id']}/disable", headers=who["admin"])
    assert disabled.status_code == 200
    stale = await client.post(URL, json={"checksum": first["checksum"]}, headers=who["admin"])
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "review_changed"
    current = (await client.get(URL, headers=who["admin"])).json()
    confirmed = await client.post(
        URL, json={"checksum": current["checksum"], "note": "RAS"}, headers=who["admin"]
    )
    assert confirmed.status_code == 201, confirmed.text
    row = confirmed.json()
    assert row["checksum"] == current["checksum"] and row["confirmed_by_name"] == "root.admin"
    assert row["note"] == "RAS"
    async with tx(app) as session:
        [stored] = await session.scalars(select(AccessReview))
        assert stored.report["checksum"] == current["checksum"]
        assert [a["username"] for a in stored.report["accounts"]] == ["alice", "bob", "robot"]
    [record] = await actions(app, "access_review.confirm")
    assert record.actor_name == "root.admin" and record.decision == "allowed"
    assert record.detail["review_id"] == row["id"]
    assert record.detail["checksum"] == current["checksum"] and record.detail["accounts"] == 3
    after = (await client.get(URL, headers=who["sec"])).json()
    assert after["last_review"]["id"] == row["id"]


async def test_dormant_accounts_are_disabled_audited_and_announced(
    app: FastAPI, client: AsyncClient
) -> None:
    who = await world(app, client)
    await age(app, "alice", 120)  # signed in 120 days ago, nothing since
    await age(app, "robot", 95)
    await age(app, "bob", 89)  # not yet
    dormant = {
        a["username"]
        for a in (await client.get(URL, headers=who["admin"])).json()["accounts"]
        if a["dormant"]
    }
    assert dormant == {"alice", "robot"}
    settings = app.state.settings
    async with tx(app) as session:  # 0: never
        off = replace_days(settings, 0)
        assert await review.disable_dormant(session=session, settings=off) == []
    async with tx(app) as session:
        done = await review.disable_dormant(session=session, settings=settings)
        assert sorted(u.username for u in done) == ["alice", "robot"]
    async with tx(app) as session:
        states = dict((await session.execute(select(User.username, User.is_active))).all())
        assert states["alice"] is False and states["robot"] is False and states["bob"] is True
        events = list(
            await session.scalars(select(OutboxEvent).where(OutboxEvent.type == "identity.revoke"))
        )
        assert {e.payload["reason"] for e in events} == {"dormant"}
        assert len(events) == 2
    # Their sessions ended at once.
    assert (await client.get("/api/v1/auth/me", headers=who["alice"])).status_code == 401
    audited = await actions(app, "user.disable_dormant")
    assert len(audited) == 2 and {r.actor_name for r in audited} == {review.DORMANT_ACTOR}
    assert {r.detail["dormant_after_days"] for r in audited} == {90}
    assert all(r.detail["credentials_revoked"] >= 0 for r in audited)
    # A second round finds nothing more (the account just disabled is no longer active).
    async with tx(app) as session:
        assert await review.disable_dormant(session=session, settings=settings) == []


def replace_days(settings: Settings, days: int) -> Settings:
    return settings.model_copy(update={"dormant_after_days": days})


async def test_the_periodic_job_disables_dormant_accounts(
    app: FastAPI, client: AsyncClient
) -> None:
    await world(app, client)
    await age(app, "bob", 200)
    settings = app.state.settings.model_copy(update={"dormant_check_seconds": 0.05})
    job = asyncio.create_task(review.loop(app.state.system_sessions, settings))
    bob: User | None = None
    try:
        for _ in range(200):
            async with tx(app) as session:
                bob = await session.scalar(select(User).where(User.username == "bob"))
            assert bob is not None
            if not bob.is_active:
                break
            await asyncio.sleep(0.05)
        assert bob is not None and not bob.is_active
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
    assert [r.resource_ids for r in await actions(app, "user.disable_dormant")] == [[str(bob.id)]]


async def test_the_web_page_shows_and_confirms(app: FastAPI, client: AsyncClient) -> None:
    await world(app, client)
    await age(app, "bob", 100)
    await browse_as(client, "root.admin")
    page = await client.get("/administration/organisations/MININT/revue-des-acces")
    assert page.status_code == 200
    assert "Revue des accès" in page.text and 'id="compte-bob"' in page.text
    assert "1 compte dormant." in page.text
    assert "jamais été revus" in page.text
    confirmed = await client.post(
        "/administration/organisations/MININT/revue-des-acces",
        data={"csrf_token": csrf_of(page), "checksum": "0" * 64},
    )
    assert confirmed.status_code == 409 and "relisez la revue" in confirmed.text
    checksum = page.text.split('name="checksum" value="', 1)[1].split('"', 1)[0]
    done = await client.post(
        "/administration/organisations/MININT/revue-des-acces",
        data={"csrf_token": csrf_of(page), "checksum": checksum, "note": "vu"},
    )
    assert done.status_code == 200 and "Revue confirmée." in done.text
    assert "Dernière confirmation le" in done.text
    assert len(await actions(app, "access_review.confirm")) == 1
    unknown = await client.get("/administration/organisations/NOPE/revue-des-acces")
    assert unknown.status_code == 404


async def test_the_command_line(
    app: FastAPI, client: AsyncClient, database_url: str, owner_database_url: str, tmp_path: Path
) -> None:
    once_across_engines(database_url)
    await world(app, client)
    await age(app, "bob", 100)

    def run(*args: str) -> str:
        result = _cli(database_url, tmp_path, *args, owner_url=owner_database_url)
        assert result.returncode == 0, result.stderr
        return result.stdout

    said = run("access-review", "report", "MININT")
    assert "bob\tdormant\twatch_officer" in said and "never confirmed" in said
    assert "alice\tactive\tofficer\tDR\tCIC" in said
    assert "user bob disabled (dormant)" in run("access-review", "disable-dormant")
    said = run("org", "set", "MININT", "--allowed-networks", "10.0.0.0/8, 2001:db8::/32")
    assert "sign-in from 10.0.0.0/8, 2001:db8::/32" in said
    wrong = _cli(
        database_url, tmp_path, "org", "set", "MININT", "--allowed-networks", "10.0.0.1/8",
        owner_url=owner_database_url,
    )  # fmt: skip
    assert wrong.returncode == 1 and "Invalid network" in wrong.stderr
    async with tx(app) as session:
        bob = await session.scalar(select(User).where(User.username == "bob"))
        assert bob is not None and not bob.is_active
    assert [r.actor_name for r in await actions(app, "user.disable_dormant")] == [
        f"cli:{__import__('getpass').getuser()}"
    ]


async def test_an_organisation_administrator_confirms_only_their_own(
    app: FastAPI, client: AsyncClient
) -> None:
    """An organisation's administrator (a role scoped to their organisation, ADR 0046) reads
    and confirms their own organisation's review; any other, known or not, is refused alike
    (403, in French), and audited. Platform administrators keep every organisation."""
    who = await world(app, client)
    await make_org(app, "PREF75")
    await make_user(app, "oscar", "MININT", roles=[Role.ORGANISATION_ADMINISTRATOR])
    await make_user(app, "pia", "PREF75", roles=[Role.ORGANISATION_ADMINISTRATOR])
    oscar, pia = await sign_in(client, "oscar"), await sign_in(client, "pia")

    own = await client.get(URL, headers=oscar)
    assert own.status_code == 200, own.text
    confirmed = await client.post(URL, json={"checksum": own.json()["checksum"]}, headers=oscar)
    assert confirmed.status_code == 201 and confirmed.json()["confirmed_by_name"] == "oscar"

    checksum = own.json()["checksum"]
    for url in (URL, "/api/v1/organisations/NOPE/access-review"):
        read = await client.get(url, headers=pia)
        assert read.status_code == 403
        assert read.json()["error"]["code"] == "other_organisation"
        assert "votre organisation" in read.json()["error"]["message"]
        refused = await client.post(url, json={"checksum": checksum}, headers=pia)
        assert refused.status_code == 403
        assert "administrateur de cette organisation" in refused.json()["error"]["message"]
    theirs = await client.get("/api/v1/organisations/PREF75/access-review", headers=pia)
    assert theirs.status_code == 200
    # The role grants nothing else: no platform administration.
    assert (await client.get("/api/v1/users", headers=pia)).status_code == 403
    # A platform administrator confirms any organisation's review.
    other = await client.post(
        "/api/v1/organisations/PREF75/access-review",
        json={"checksum": theirs.json()["checksum"]},
        headers=who["admin"],
    )
    assert other.status_code == 201

    [record, platform] = await actions(app, "access_review.confirm")
    assert record.actor_name == "oscar" and platform.actor_name == "root.admin"
    await sequenced(app)
    async with tx(app) as session:
        refusals = list(
            await session.scalars(
                select(AuditRecord).where(
                    AuditRecord.actor_name == "pia", AuditRecord.action.like("refused:%")
                )
            )
        )
    assert len(refusals) == 5 and {r.decision for r in refusals} == {"denied"}  # with /users
