"""Alerts by e-mail (docs/adr/0046), with a real SMTP server on loopback (aiosmtpd): queued
in the sequencer's pass, sent after it by the mail loop, exactly to the security officers who
subscribed and may still receive alerts, never with protected content (no title, no name, no
address: kind, severity, counts, ids and a link); a refusing server is retried later."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update

from hypervision.alerts import mail
from hypervision.alerts.models import AlertMail
from hypervision.audit.models import AuditRecord
from hypervision.config import Settings
from hypervision.db import utcnow
from hypervision.identity.models import User
from hypervision.policy.roles import Role
from tests.alerts.helpers import alerts, evaluate, security_officer, set_rule
from tests.conftest import make_settings
from tests.factories import ENTRY, admin_headers, officer, sequenced, tx
from tests.synthesis.test_mail import Mailbox, body_of, free_port

PUBLIC_URL = "https://hypervision.example"
SECRET_TITLE = "Exfiltration du plan de continuité"


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    box.start()
    yield box
    box.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp: Mailbox) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_timeout_seconds=5,
        public_url=PUBLIC_URL,
        alert_mail_retry_seconds=30,
    )


async def _officers(app: FastAPI, client: AsyncClient) -> dict[str, dict[str, str]]:
    """Four security officers: two subscribe (one to the rules marked e-mail, one also to
    every high alert), one does not, one subscribes and is then disabled."""
    who = {name: await security_officer(app, client, name) for name in ("sophie", "paul", "nina")}
    who["ex"] = await security_officer(app, client, "ex.secu")
    for name, body in (
        ("sophie", {"enabled": True}),
        ("paul", {"enabled": True, "min_severity": "high"}),
        ("ex", {"enabled": True}),
    ):
        put = await client.put("/api/v1/security/alert-mail", json=body, headers=who[name])
        assert put.status_code == 200, put.text
    mine = await client.get("/api/v1/security/alert-mail", headers=who["paul"])
    assert mine.json() == {"enabled": True, "min_severity": "high"}
    async with tx(app) as session:
        await session.execute(update(User).values(email=User.username + "@example.org"))
        ex = await session.scalar(select(User).where(User.username == "ex.secu"))
        assert ex is not None
    admin = await admin_headers(app, client)
    assert (await client.post(f"/api/v1/users/{ex.id}/disable", headers=admin)).status_code == 200
    return who


def _to(box: Mailbox) -> list[str]:
    return sorted(str(m["To"]) for m in box.received)


async def test_alerts_are_mailed_to_the_subscribed_officers_without_content(
    app: FastAPI, client: AsyncClient, smtp: Mailbox, settings: Settings
) -> None:
    who = await _officers(app, client)
    secu = who["sophie"]
    await set_rule(client, secu, "sign_in_off_hours", enabled=False)  # late at night
    await set_rule(client, secu, "sign_in_new_address", enabled=False)
    # Bulk reads: high, not marked e-mail (goes to whoever wants every high alert).
    await set_rule(client, secu, "bulk_reads", threshold=1, severity="high", email=False)
    # Probing: medium, marked e-mail (goes to every subscriber).
    await set_rule(client, secu, "id_probing", threshold=1, severity="medium", email=True)
    alice = await officer(app, client, "alice", "PP")
    ids = [
        (
            await client.post(
                "/api/v1/entries", json={**ENTRY, "title": f"{SECRET_TITLE} {n}"}, headers=alice
            )
        ).json()["id"]
        for n in range(2)
    ]
    mallory = await officer(app, client, "mallory", "PP")
    for entry_id in ids:
        assert (await client.get(f"/api/v1/entries/{entry_id}", headers=mallory)).status_code == 200
    await evaluate(app)  # queued in the pass: nothing sent yet
    assert smtp.received == []
    [bulk] = await alerts(client, secu, kind="bulk_reads")

    assert await mail.send_due(app.state.system_sessions, settings) == 1
    assert _to(smtp) == ["paul@example.org"]  # high, by severity only
    [message] = smtp.received
    body = body_of(message)
    assert bulk["id"] in body and f"{PUBLIC_URL}/securite/alertes/{bulk['id']}" in body
    assert "élevée" in message["Subject"] and "lectures en masse" in message["Subject"]
    for secret in (SECRET_TITLE, "mallory", "alice", *ids, "Colis", "testclient"):
        assert secret not in body and secret not in str(message["Subject"])

    smtp.received.clear()
    for _ in range(2):
        await client.get(f"/api/v1/entries/{uuid.uuid4()}", headers=mallory)
    await evaluate(app)
    assert await mail.send_due(app.state.system_sessions, settings) == 2
    # Marked e-mail: every subscriber who may still receive alerts (not Nina, who did not
    # subscribe, nor the disabled account), each their own message.
    assert _to(smtp) == ["paul@example.org", "sophie@example.org"]
    for message in smtp.received:
        assert "mallory" not in body_of(message) and "sondage" in str(message["Subject"])
    assert await mail.send_due(app.state.system_sessions, settings) == 0  # sent once

    await sequenced(app)
    async with tx(app) as session:
        sent = list(
            await session.scalars(
                select(AuditRecord)
                .where(AuditRecord.action == "security_alert.mail")
                .order_by(AuditRecord.seq)
            )
        )
        users = {u.username: str(u.id) for u in await session.scalars(select(User))}
    assert [r.detail["recipients"] for r in sent] == [
        [users["paul"]],
        [users["paul"], users["sophie"]],
    ]


async def test_a_refusing_server_is_retried_later_and_never_holds_the_pass(
    app: FastAPI, client: AsyncClient, smtp: Mailbox, settings: Settings
) -> None:
    who = await _officers(app, client)
    secu = who["sophie"]
    await set_rule(client, secu, "id_probing", threshold=1, email=True)
    mallory = await officer(app, client, "mallory", "PP")
    smtp.stop()  # the SMTP server is down
    for _ in range(2):
        await client.get(f"/api/v1/entries/{uuid.uuid4()}", headers=mallory)
    assert await evaluate(app) > 0  # the pass raised the alert and committed regardless
    assert [a["kind"] for a in await alerts(client, secu, kind="id_probing")] == ["id_probing"]
    assert await mail.send_due(app.state.system_sessions, settings) == 0
    async with tx(app) as session:
        rows = list(await session.scalars(select(AlertMail).where(AlertMail.state == "pending")))
    probing = [r for r in rows if r.attempts == 1]
    assert probing and all(r.last_error for r in probing)
    assert all(r.next_at > utcnow() + timedelta(seconds=20) for r in probing)  # backed off
    assert mail.delay(settings, 1) == 30 and mail.delay(settings, 3) == 120
    assert mail.delay(settings, 20) == 3600

    smtp.start()  # back: not before its time, then sent
    assert await mail.send_due(app.state.system_sessions, settings) == 0
    later = utcnow() + timedelta(seconds=31)
    assert await mail.send_due(app.state.system_sessions, settings, now=later) >= 2
    assert {"paul@example.org", "sophie@example.org"} <= set(_to(smtp))
    assert "ex.secu@example.org" not in _to(smtp) and "nina@example.org" not in _to(smtp)


async def test_only_security_officers_subscribe(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP", roles=(Role.OFFICER,))
    refused = await client.put("/api/v1/security/alert-mail", json={"enabled": True}, headers=alice)
    assert refused.status_code == 403
    secu = await security_officer(app, client)
    bad = await client.put(
        "/api/v1/security/alert-mail",
        json={"enabled": True, "min_severity": "urgent"},
        headers=secu,
    )
    assert bad.status_code == 422 and "min_severity" in bad.text
