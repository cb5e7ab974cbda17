"""Alerts' workflow (audited, announced), malformed rules (422 naming the field), and the
security officers' gate on every route (docs/adr/0040)."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.events.models import OutboxEvent
from hypervision.policy.roles import Role
from tests.alerts.helpers import alerts, evaluate, security_officer, set_rule
from tests.factories import officer, sequenced, tx


async def _an_alert(app: FastAPI, client: AsyncClient, secu: dict[str, str]) -> dict[str, object]:
    await set_rule(client, secu, "id_probing", threshold=1)
    mallory = await officer(app, client, "mallory", "PP")
    for _ in range(2):
        await client.get(f"/api/v1/entries/{uuid.uuid4()}", headers=mallory)
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="id_probing")
    return alert


async def test_workflow_is_audited_and_announced(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    alert = await _an_alert(app, client, secu)
    url = f"/api/v1/security/alerts/{alert['id']}"
    ack = await client.post(
        f"{url}/transitions",
        json={"to": "acknowledged", "note": "Vu, j'appelle le chef de salle."},
        headers=secu,
    )
    assert ack.status_code == 200, ack.text
    assert ack.json()["state"] == "acknowledged" and ack.json()["notes"][0]["by"] == "sophie.secu"
    again = await client.post(f"{url}/transitions", json={"to": "acknowledged"}, headers=secu)
    assert again.status_code == 409 and again.json()["error"]["code"] == "bad_transition"
    closed = await client.post(
        f"{url}/transitions", json={"to": "closed", "note": "Erreur de saisie."}, headers=secu
    )
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert [n["to"] for n in closed.json()["notes"]] == ["acknowledged", "closed"]
    reopen = await client.post(f"{url}/transitions", json={"to": "acknowledged"}, headers=secu)
    assert reopen.status_code == 409
    detail = await client.get(url, headers=secu)
    assert detail.status_code == 200 and detail.json()["records"]
    await sequenced(app)
    async with tx(app) as session:
        # This alert's records and events (late at night, sign-ins raise off-hours alerts too)
        actions = [
            action
            for action, ids in await session.execute(
                select(AuditRecord.action, AuditRecord.resource_ids)
                .where(AuditRecord.action.like("security_alert.%"))
                .order_by(AuditRecord.seq)
            )
            if alert["id"] in ids
        ]
        events = list(
            await session.scalars(
                select(OutboxEvent.type)
                .where(
                    OutboxEvent.resource_type == "security_alert",
                    OutboxEvent.resource_id == uuid.UUID(str(alert["id"])),
                )
                .order_by(OutboxEvent.id)
            )
        )
    assert actions == [
        "security_alert.raise",
        "security_alert.list",
        "security_alert.acknowledge",
        "security_alert.close",
        "security_alert.read",
    ]
    assert events == [
        "security_alert.raise",
        "security_alert.acknowledged",
        "security_alert.closed",
    ]
    # A closed alert takes no more records: the next burst opens a new one.
    mallory_again = await officer(app, client, "mallory2", "PP")
    assert mallory_again
    assert (
        await client.get("/api/v1/security/alerts", params={"state": "closed"}, headers=secu)
    ).json()["total"] == 1


async def test_malformed_rules_are_refused_naming_the_field(
    app: FastAPI, client: AsyncClient
) -> None:
    secu = await security_officer(app, client)
    cases = [
        ({"kind": "bulk_reads", "name": "x", "threshold": 0}, "threshold"),
        ({"kind": "bulk_reads", "name": "x"}, "threshold"),
        ({"kind": "teleport", "name": "x"}, "kind"),
        ({"kind": "exports", "name": "x", "threshold": 5, "measure": "bytes"}, "measure"),
        ({"kind": "sign_in_off_hours", "name": "x", "start": "25:00"}, "start"),
        ({"kind": "sign_in_off_hours", "name": "x", "start": "08:00", "end": "08:00"}, "end"),
        ({"kind": "id_probing", "name": "", "threshold": 3}, "name"),
        (
            {"kind": "mfa_failures", "name": "x", "threshold": 3, "window_minutes": 0},
            "window_minutes",
        ),
        ({"kind": "rights_widened", "name": "x", "threshold": 3}, "threshold"),  # not its field
    ]
    for body, field in cases:
        answer = await client.post("/api/v1/security/alert-rules", json=body, headers=secu)
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.json()["error"]["message"], (body, answer.text)
    good = await client.post(
        "/api/v1/security/alert-rules",
        json={"kind": "exports", "name": "Exports nombreux", "threshold": 3, "measure": "count"},
        headers=secu,
    )
    assert good.status_code == 201, good.text
    rule = good.json()
    stale = await client.put(
        f"/api/v1/security/alert-rules/{rule['id']}",
        json={"kind": "exports", "name": "Exports", "threshold": 4},
        headers={**secu, "If-Match": '"7"'},
    )
    assert stale.status_code == 409
    gone = await client.delete(f"/api/v1/security/alert-rules/{rule['id']}", headers=secu)
    assert gone.status_code == 204
    assert (
        await client.get(f"/api/v1/security/alert-rules/{rule['id']}", headers=secu)
    ).status_code == 404


async def test_only_security_officers(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    alert = await _an_alert(app, client, secu)
    rule = (await client.get("/api/v1/security/alert-rules", headers=secu)).json()["items"][0]
    calls = [
        ("GET", "/api/v1/security/alert-rules", None),
        ("GET", "/api/v1/alert-rules", None),
        ("POST", "/api/v1/security/alert-rules", {"kind": "label_lowered", "name": "x"}),
        ("GET", f"/api/v1/security/alert-rules/{rule['id']}", None),
        (
            "PUT",
            f"/api/v1/security/alert-rules/{rule['id']}",
            {"kind": "label_lowered", "name": "x"},
        ),
        ("DELETE", f"/api/v1/security/alert-rules/{rule['id']}", None),
        ("GET", "/api/v1/security/alerts", None),
        ("GET", f"/api/v1/security/alerts/{alert['id']}", None),
        ("POST", f"/api/v1/security/alerts/{alert['id']}/transitions", {"to": "closed"}),
    ]
    for name, roles in (
        ("olivia", (Role.OFFICER,)),
        ("walter", (Role.WATCH_OFFICER,)),
        ("ada", (Role.ADMINISTRATOR,)),
    ):
        headers = await officer(app, client, name, "PP", roles=roles)
        for method, url, body in calls:
            answer = await client.request(method, url, json=body, headers=headers)
            assert answer.status_code == 403, (name, method, url, answer.text)
    for method, url, body in calls:
        assert (await client.request(method, url, json=body)).status_code == 401
    # Nothing changed.
    [still] = await alerts(client, secu, kind="id_probing")
    assert still["state"] == "new"


async def test_a_full_alert_keeps_counting_and_a_closed_one_takes_no_more(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypervision.alerts import service

    monkeypatch.setattr(service, "MAX_CITED", 3)
    secu = await security_officer(app, client)
    await set_rule(client, secu, "id_probing", threshold=1)
    mallory = await officer(app, client, "mallory", "PP")

    async def probe(times: int) -> None:
        for _ in range(times):
            await client.get(f"/api/v1/entries/{uuid.uuid4()}", headers=mallory)
        await evaluate(app)

    await probe(4)
    [alert] = await alerts(client, secu, kind="id_probing")
    assert len(alert["records"]) == 3 and alert["record_count"] == 4
    await probe(2)  # the list is full: the count goes on, with one UPDATE
    [grown] = await alerts(client, secu, kind="id_probing")
    assert grown["id"] == alert["id"] and grown["record_count"] == 6
    assert len(grown["records"]) == 3 and grown["version"] > alert["version"]
    url = f"/api/v1/security/alerts/{alert['id']}/transitions"
    assert (await client.post(url, json={"to": "closed"}, headers=secu)).status_code == 200
    await probe(2)  # closed: the next crossing raises a new alert
    found = await alerts(client, secu, kind="id_probing")
    assert len(found) == 2 and {a["state"] for a in found} == {"new", "closed"}
    assert next(a for a in found if a["id"] == alert["id"])["record_count"] == 6
