"""Scheduled reports, on both engines, with a real SMTP server on loopback: at the scheduled
time each recipient gets the report rendered as themselves (an NP one as an attachment, a DR
one only as a link), one who may not read the space gets nothing and a ``refused`` row says
so; a run is made once; only the space's editors schedule; bad input is a 422 in French."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.config import Settings
from hypervision.db import utcnow
from hypervision.identity.models import User
from hypervision.reports import schedules
from hypervision.reports.models import ReportDelivery
from tests.conftest import make_settings
from tests.factories import officer, tx
from tests.reports.helpers import DR_TITLE, HOSPITALS, NP_TITLE, PLACEHOLDER, crisis
from tests.synthesis.helpers import pages_text
from tests.synthesis.test_mail import (
    PUBLIC_URL,
    Mailbox,
    attachments,
    body_of,
    smtp,  # noqa: F401 - the SMTP server fixture
)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp: Mailbox) -> Settings:  # noqa: F811
    return make_settings(
        tmp_path, database_url, smtp_host="127.0.0.1", smtp_port=smtp.port,
        smtp_timeout_seconds=5, public_url=PUBLIC_URL,
    )  # fmt: skip


async def set_email(app: FastAPI, username: str) -> None:
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == username))
        assert user is not None
        user.email = f"{username}@example.org"


async def test_each_recipient_gets_the_report_as_themselves(
    app: FastAPI,
    client: AsyncClient,
    smtp: Mailbox,  # noqa: F811
) -> None:
    room = await crisis(app, client)
    await officer(app, client, "autre", "SDIS")
    narrowed = await client.patch(  # shared with PREF and SANTE only: SDIS loses it
        f"/api/v1/spaces/{room.space_id}",
        json={"label": {"level": "NP", "need_to_know": [], "audience": ["PREF", "SANTE"]}},
        headers={**room.chef, "If-Match": f'"{room.space_id}.1"'},
    )
    assert narrowed.status_code == 200, narrowed.text
    for name in ("voisin", "medecin", "autre"):
        await set_email(app, name)
    made = await client.post(
        f"/api/v1/spaces/{room.space_id}/report-schedules",
        json={"name": "Point transport", "times": ["07:00", "19:00"],
              "recipients": {"users": ["voisin", "medecin", "autre"]}},
        headers=room.chef,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["times"] == ["07:00", "19:00"]

    sessions, settings = app.state.system_sessions, app.state.settings
    later = utcnow() + timedelta(days=1)
    made_rows = await schedules.run_due(sessions, settings, now=later)
    assert len(made_rows) == 3
    assert await schedules.run_due(sessions, settings, now=later) == []  # once per time

    async with tx(app) as session:
        rows = {
            (await session.get(User, r.user_id)).username: r  # type: ignore[union-attr]
            for r in await session.scalars(select(ReportDelivery))
        }
        withheld = list(
            await session.scalars(
                select(AuditRecord).where(AuditRecord.action == "space.report.withheld")
            )
        )
    assert {n: (r.status, r.level) for n, r in rows.items()} == {
        "voisin": ("delivered", "NP"),
        "medecin": ("delivered", "DR"),
        "autre": ("refused", None),
    }
    assert rows["autre"].email_status == "none" and len(withheld) == 1
    assert rows["voisin"].email_status == rows["medecin"].email_status == "sent"

    by_to = {m["To"]: m for m in smtp.received}
    assert set(by_to) == {"voisin@example.org", "medecin@example.org"}  # nothing to "autre"
    (attachment,) = attachments(by_to["voisin@example.org"])
    text = " ".join(pages_text(attachment.get_content()))
    assert NP_TITLE in text and DR_TITLE not in text and PLACEHOLDER in text
    assert "Voisin —" in text  # watermarked for its reader
    protected = by_to["medecin@example.org"]
    assert attachments(protected) == []
    said = f"{protected['Subject']}\n{body_of(protected)}"
    for secret in (DR_TITLE, *HOSPITALS, "Cellule transport", "Point transport"):
        assert secret not in said
    assert f"{PUBLIC_URL}/api/v1/spaces/{room.space_id}/report.pdf" in said

    mine = await client.get("/api/v1/report-deliveries", headers=room.medecin)
    assert [d["level"] for d in mine.json()] == ["DR"]
    again = await client.get(mine.json()[0]["link"].removeprefix(PUBLIC_URL), headers=room.medecin)
    assert again.status_code == 200 and DR_TITLE in " ".join(pages_text(again.content))


async def test_only_editors_schedule_and_bad_input_is_refused_in_french(
    app: FastAPI, client: AsyncClient
) -> None:
    room = await crisis(app, client)
    url = f"/api/v1/spaces/{room.space_id}/report-schedules"
    body = {"name": "Point", "times": ["07:00"], "recipients": {"users": ["voisin"]}}
    reader = await client.post(url, json=body, headers=room.medecin)  # reads, may not edit
    assert reader.status_code == 403
    assert "rédacteurs" in reader.json()["error"]["message"]
    unknown = await client.post(url, json={**body, "modules": ["fil", "nulle"]}, headers=room.chef)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["message"] == "Module inconnu dans cet espace : nulle."
    nobody = await client.post(
        url, json={**body, "recipients": {"users": ["fantome"]}}, headers=room.chef
    )
    assert nobody.status_code == 422
    assert nobody.json()["error"]["message"] == "Destinataire(s) inconnu(s) : fantome."
    bad_time = await client.post(url, json={**body, "times": ["25:00"]}, headers=room.chef)
    assert bad_time.status_code == 422
    made = await client.post(url, json=body, headers=room.chef)
    assert made.status_code == 201
    listed = await client.get(url, headers=room.chef)
    assert [s["name"] for s in listed.json()] == ["Point"]
    stopped = await client.delete(f"{url}/{made.json()['id']}", headers=room.chef)
    assert stopped.status_code == 204
    assert (await client.get(url, headers=room.chef)).json() == []
    assert (await client.delete(f"{url}/{made.json()['id']}", headers=room.chef)).status_code == 404
