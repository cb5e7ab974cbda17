"""Each default rule fires on its scenario, and not below its threshold (docs/adr/0040)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from hypervision.alerts.evaluator import Evaluator
from hypervision.audit import service as audit
from hypervision.identity import service as identity
from hypervision.identity.auth import Client, audit_login
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.policy.roles import Role
from tests.alerts.helpers import alerts, evaluate, security_officer, set_rule
from tests.factories import ADMIN, ENTRY, PASSWORD, admin_headers, officer, sign_in, tx


async def test_default_rules_ship_on(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    rules = (await client.get("/api/v1/security/alert-rules", headers=secu)).json()
    kinds = {r["kind"] for r in rules["items"] if r["enabled"]}
    assert kinds == {
        "bulk_reads",
        "id_probing",
        "exports",
        "mfa_failures",
        "sign_in_off_hours",
        "sign_in_new_address",
        "sign_in_new_country",
        "network_refused",
        "soc_export_failing",
        "rights_widened",
        "label_lowered",
        "audit_verify_failed",
    }
    # The contract's name for the list answers the same; a second start installs nothing.
    same = (await client.get("/api/v1/alert-rules", headers=secu)).json()
    await evaluate(app)
    assert same["total"] == rules["total"] == 12


async def bulk_reads_of(
    app: FastAPI, client: AsyncClient, count: int
) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """A security officer whose bulk-reads rule fires above 3 records in 10 minutes,
    ``count`` entries written by alice, and bob, who will read them."""
    secu = await security_officer(app, client)
    await set_rule(client, secu, "bulk_reads", threshold=3, window_minutes=10)
    alice = await officer(app, client, "alice", "PP")
    ids = []
    for n in range(count):
        body = {**ENTRY, "title": f"Entrée {n}"}
        ids.append((await client.post("/api/v1/entries", json=body, headers=alice)).json()["id"])
    return secu, ids, await officer(app, client, "bob", "PP")


async def test_bulk_reads_fire_above_the_threshold_and_merge(
    app: FastAPI, client: AsyncClient
) -> None:
    secu, ids, bob = await bulk_reads_of(app, client, 6)
    for entry_id in ids[:3]:  # three distinct records: at the threshold, not above
        assert (await client.get(f"/api/v1/entries/{entry_id}", headers=bob)).status_code == 200
    await client.get(f"/api/v1/entries/{ids[0]}", headers=bob)  # the same one again
    await evaluate(app)
    assert await alerts(client, secu, kind="bulk_reads") == []

    await client.get(f"/api/v1/entries/{ids[3]}", headers=bob)  # a fourth: above
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="bulk_reads")
    assert alert["subject_name"] == "bob" and alert["state"] == "new"
    assert alert["severity"] == "high" and alert["measure"] == 4
    assert alert["record_count"] == 5  # every read in the window, cited by seq and id
    first = {r["seq"] for r in alert["records"]}

    for entry_id in ids[4:]:  # more reads in the window join the same alert
        await client.get(f"/api/v1/entries/{entry_id}", headers=bob)
    await evaluate(app)
    [merged] = await alerts(client, secu, kind="bulk_reads")
    assert merged["id"] == alert["id"] and merged["record_count"] == 7
    assert first < {r["seq"] for r in merged["records"]} and merged["measure"] == 6


async def test_replicas_taking_turns_count_one_window(app: FastAPI, client: AsyncClient) -> None:
    # Two replicas' evaluators take the passes in turn: each adds to its windows the records
    # the other evaluated, so a window spanning their passes fires once, at the threshold,
    # and later reads join that alert on either replica.
    secu, ids, bob = await bulk_reads_of(app, client, 5)
    here, there = app.state.alerts, Evaluator(app.state.settings.label_levels)
    refills: list[int | None] = []  # each refill's ``after``: None reads the whole window
    for evaluator in (here, there):
        rebuild = evaluator._rebuild

        async def spied(*args: Any, rebuild: Any = rebuild, **kwargs: Any) -> None:
            refills.append(kwargs.get("after"))
            await rebuild(*args, **kwargs)

        evaluator._rebuild = spied  # type: ignore[method-assign]

    async def read(entry_id: str) -> None:
        assert (await client.get(f"/api/v1/entries/{entry_id}", headers=bob)).status_code == 200

    for entry_id in ids[:2]:
        await read(entry_id)
    await evaluate(app, here)
    await read(ids[2])  # three: at the threshold
    await evaluate(app, there)  # its first pass: the windows filled from the trail
    synced = here.synced
    await read(ids[3])  # four: above, evaluated where the third read was not
    assert await evaluate(app, here) > 0 and here.synced > synced
    [alert] = await alerts(client, secu, kind="bulk_reads")
    assert alert["subject_name"] == "bob" and alert["measure"] == 4
    await read(ids[4])
    await evaluate(app, there)  # takes the fourth read from the trail: the window has fired
    [merged] = await alerts(client, secu, kind="bulk_reads")
    assert merged["id"] == alert["id"] and merged["measure"] == 5
    # The whole window was read twice: by ``here`` for the changed rule, by ``there`` at its
    # first pass. After that, each took only the other's records.
    assert len(refills) == 4 and refills[:2] == [None, None], refills
    assert all(isinstance(after, int) for after in refills[2:]), refills


async def test_id_probing(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    await set_rule(client, secu, "id_probing", threshold=3)
    mallory = await officer(app, client, "mallory", "PP")
    for _ in range(3):
        answer = await client.get(f"/api/v1/entries/{uuid.uuid4()}", headers=mallory)
        assert answer.status_code == 404
    await evaluate(app)
    assert await alerts(client, secu, kind="id_probing") == []
    await client.get(f"/api/v1/entries/{uuid.uuid4()}", headers=mallory)
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="id_probing")
    assert alert["subject_name"] == "mallory" and alert["record_count"] == 4


async def test_id_probing_by_address(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    await set_rule(client, secu, "id_probing", threshold=2, by="address")
    for name in ("m1", "m2", "m3"):
        headers = await officer(app, client, name, "PP")
        await client.get(f"/api/v1/entries/{uuid.uuid4()}", headers=headers)
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="id_probing")
    assert alert["subject_kind"] == "address" and alert["subject_name"] == "203.0.113.7"


async def _sign_in_record(
    app: FastAPI, name: str, decision: str, detail: dict[str, str], address: str = "203.0.113.7"
) -> None:
    """What ``identity.auth.sign_in`` writes for an attempt (its own audit function)."""
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == name))
        await audit_login(session, name, Client(address, None), decision, detail, user)


async def test_mfa_failures(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    await set_rule(client, secu, "mfa_failures", threshold=2)
    await officer(app, client, "otto", "PP")
    for _ in range(2):
        await _sign_in_record(app, "otto", "denied", {"reason": "otp"})
    await _sign_in_record(app, "otto", "denied", {"reason": "credentials"})  # not a code
    await evaluate(app)
    assert await alerts(client, secu, kind="mfa_failures") == []
    await _sign_in_record(app, "otto", "denied", {"reason": "otp"})
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="mfa_failures")
    assert alert["subject_name"] == "otto" and alert["measure"] == 3


async def test_sign_in_off_hours(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    now = datetime.now(ZoneInfo("Europe/Paris"))
    inside = {
        "start": f"{(now - timedelta(hours=1)):%H:00}",
        "end": f"{(now + timedelta(hours=2)):%H:00}",
    }
    await set_rule(client, secu, "sign_in_off_hours", **inside)
    await officer(app, client, "early", "PP")
    await evaluate(app)
    assert await alerts(client, secu, kind="sign_in_off_hours") == []
    outside = {
        "start": f"{(now + timedelta(hours=2)):%H:00}",
        "end": f"{(now + timedelta(hours=4)):%H:00}",
    }
    await set_rule(client, secu, "sign_in_off_hours", **outside)
    await sign_in(client, "early")
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="sign_in_off_hours")
    assert alert["subject_name"] == "early" and alert["record_count"] == 1


async def test_sign_in_from_a_new_address(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    await officer(app, client, "nomad", "PP")  # first sign-in: learnt, nothing raised
    await sign_in(client, "nomad")  # the same address again
    await evaluate(app)
    assert [
        a
        for a in await alerts(client, secu, kind="sign_in_new_address")
        if a["subject_name"] == "nomad"
    ] == []
    transport = ASGITransport(app=app, client=("198.51.100.9", 50000))
    async with AsyncClient(transport=transport, base_url="https://testserver") as elsewhere:
        await sign_in(elsewhere, "nomad", PASSWORD)
    await evaluate(app)
    [alert] = [
        a
        for a in await alerts(client, secu, kind="sign_in_new_address")
        if a["subject_name"] == "nomad"
    ]
    assert alert["record_count"] == 1


async def test_rights_widened(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    await officer(app, client, "riser", "PP", clearance="NP")
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == "riser"))
        assert user is not None
    await evaluate(app)
    assert await alerts(client, secu, kind="rights_widened") == []
    async with tx(app) as session:
        await identity.set_clearance(
            session=session,
            actor=ADMIN,
            settings=app.state.settings,
            user_id=user.id,
            clearance="DR",
        )
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="rights_widened")
    assert alert["subject_key"] == str(user.id)


async def test_label_lowered(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    author = await officer(app, client, "author", "PP")
    entry = (
        await client.post(
            "/api/v1/entries", json={**ENTRY, "label": {"level": "DR"}}, headers=author
        )
    ).json()
    async with tx(app) as session:
        # What logbook.triage.decide_label_request writes when a lowering is approved.
        await audit.record(
            session=session,
            actor=ADMIN,
            action="entry.label_approve",
            resource_type="entry",
            resource_ids=[entry["id"]],
            labels=["DR", "NP"],
        )
        await audit.record(
            session=session,
            actor=ADMIN,
            action="entry.label_approve",
            resource_type="entry",
            resource_ids=[entry["id"]],
            labels=["NP", "DR"],  # raised: not an alert
        )
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="label_lowered")
    assert alert["subject_key"] == entry["id"] and alert["record_count"] == 1


async def test_audit_verification_failure(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    async with tx(app) as session:
        for decision in ("allowed", "denied"):  # what `hypervision audit verify` records
            await audit.record(
                session=session,
                actor=None,
                actor_name="cli",
                action="audit.verify",
                surface="cli",
                decision=decision,
                resource_type="audit_record",
                detail={
                    "checked": 3,
                    "problem": "record 2 altered" if decision == "denied" else "",
                },
            )
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="audit_verify_failed")
    assert alert["severity"] == "critical" and alert["record_count"] == 1


async def test_exports_above_a_threshold(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    await set_rule(client, secu, "exports", threshold=100, measure="rows")
    exporter = await officer(app, client, "exporter", "PP")
    assert exporter
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == "exporter"))
        assert user is not None
    person = Principal(
        user_id=user.id,
        username="exporter",
        organisation_id=user.organisation_id,
        organisation_ancestry=(),
        clearance="DR",
        roles=frozenset({Role.OFFICER.value}),
        groups=frozenset(),
    )
    product = uuid.uuid4()
    for rows in (60, 40):  # what products.service.export_rows writes: 100 rows, not above
        async with tx(app) as session:
            await audit.record(
                session=session,
                actor=person,
                action="product.export",
                resource_type="product",
                resource_ids=[product],
                labels=["NP"],
                detail={"rows": rows, "format": "csv"},
            )
    await evaluate(app)
    assert await alerts(client, secu, kind="exports") == []
    async with tx(app) as session:
        await audit.record(
            session=session,
            actor=person,
            action="product.export",
            resource_type="product",
            resource_ids=[product],
            labels=["NP"],
            detail={"rows": 1, "format": "csv"},
        )
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="exports")
    assert alert["subject_name"] == "exporter" and alert["measure"] == 101


async def test_connections_refused_upstream(app: FastAPI, client: AsyncClient) -> None:
    """Filtered upstream (ADR 0038) raises an alert for the security officer (ADR 0046):
    every refused sign-in from outside the organisation's networks, by address."""
    secu = await security_officer(app, client)
    await officer(app, client, "distant", "PREF")
    admin = await admin_headers(app, client)
    narrowed = await client.patch(
        "/api/v1/organisations/PREF", json={"allowed_networks": ["10.0.0.0/8"]}, headers=admin
    )
    assert narrowed.status_code == 200, narrowed.text
    for _ in range(2):
        refused = await client.post(
            "/api/v1/auth/token", data={"username": "distant", "password": PASSWORD}
        )
        assert refused.status_code == 403
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="network_refused")
    assert alert["subject_kind"] == "address" and alert["subject_name"] == "203.0.113.7"
    assert alert["record_count"] == 2 and alert["severity"] == "medium"


async def test_an_export_to_the_soc_failing(app: FastAPI, client: AsyncClient) -> None:
    """The SOC exporter's record after its threshold of failures (``soc.exporter``) raises
    one alert per sink; the malformed rule is refused with the field named."""
    secu = await security_officer(app, client)
    async with tx(app) as session:
        for _ in range(2):
            await audit.record(
                session=session,
                actor=None,
                actor_name="soc-exporter",
                action="soc.export_failing",
                surface="system",
                resource_type="soc_sink",
                resource_ids=["siem-ministere"],
                detail={"sink": "siem-ministere", "consecutive_failures": 5},
            )
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="soc_export_failing")
    assert alert["subject_name"] == "siem-ministere" and alert["severity"] == "high"
    assert alert["record_count"] == 2
    bad = await client.post(
        "/api/v1/security/alert-rules",
        json={"kind": "network_refused", "name": "x", "threshold": -1},
        headers=secu,
    )
    assert bad.status_code == 422 and "threshold" in bad.text


async def test_replicas_taking_turns_share_known_addresses(
    app: FastAPI, client: AsyncClient
) -> None:
    # A replica catching up re-reads the known addresses of the accounts that signed in
    # meanwhile, and only theirs: it knows what the other learnt (no second alert, no second
    # row for the same address), without reading every account's again.
    secu = await security_officer(app, client)
    await officer(app, client, "bystander", "PP")
    await officer(app, client, "nomad", "PP")  # first sign-in: learnt
    here, there = app.state.alerts, Evaluator(app.state.settings.label_levels)
    await evaluate(app, here)
    await evaluate(app, there)  # its first pass reads every account's addresses
    assert there.addresses.keys() == here.addresses.keys()
    async with tx(app) as session:
        nomad = await session.scalar(select(User.id).where(User.username == "nomad"))
    transport = ASGITransport(app=app, client=("198.51.100.9", 50000))
    async with AsyncClient(transport=transport, base_url="https://testserver") as elsewhere:
        await sign_in(elsewhere, "nomad", PASSWORD)
        await evaluate(app, there)  # raises the alert, learns the address
        await sign_in(elsewhere, "nomad", PASSWORD)  # the same address again
    read: list[set[str] | None] = []
    read_known = here._read_known

    async def spied(session: Any, accounts: set[str] | None) -> None:
        read.append(accounts)
        await read_known(session, accounts)

    here._read_known = spied
    assert await evaluate(app, here) > 0
    assert read == [{str(nomad)}]
    assert "198.51.100.9" in here.addresses[str(nomad)]
    [alert] = [
        a
        for a in await alerts(client, secu, kind="sign_in_new_address")
        if a["subject_name"] == "nomad"
    ]
    assert alert["record_count"] == 1
