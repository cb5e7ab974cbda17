"""The security alerts' pages: security officers only, French, the triggering records by id
and level (never content), acknowledge and close with a note, rules in a form."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.policy.roles import Role
from tests.alerts.helpers import alerts, evaluate, security_officer, set_rule
from tests.factories import ENTRY, officer
from tests.web.pages import browse_as


async def test_a_security_officer_works_an_alert_in_the_pages(
    app: FastAPI, client: AsyncClient
) -> None:
    secu = await security_officer(app, client)
    await set_rule(client, secu, "bulk_reads", threshold=1)
    alice = await officer(app, client, "alice", "PP")
    made = [
        (
            await client.post(
                "/api/v1/entries", json={**ENTRY, "title": f"Secret {n}"}, headers=alice
            )
        ).json()
        for n in range(2)
    ]
    for entry in made:
        await client.get(f"/api/v1/entries/{entry['id']}", headers=alice)
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="bulk_reads")

    csrf = await browse_as(client, "sophie.secu")
    listing = await client.get("/securite/alertes")
    assert listing.status_code == 200 and "Alertes de sécurité" in listing.text
    assert (
        'id="badge-alertes"' in listing.text and f"/securite/alertes/{alert['id']}" in listing.text
    )
    page = await client.get(f"/securite/alertes/{alert['id']}")
    assert page.status_code == 200
    assert "entry.read" in page.text and made[0]["id"] in page.text and "Secret" not in page.text
    done = await client.post(
        f"/securite/alertes/{alert['id']}/etat",
        data={"csrf_token": csrf, "to": "acknowledged", "note": "Vérifié avec son chef."},
    )
    assert done.status_code == 303
    [acknowledged] = await alerts(client, secu, kind="bulk_reads")
    assert acknowledged["state"] == "acknowledged"
    assert acknowledged["notes"][0]["note"] == "Vérifié avec son chef."

    rules = await client.get("/securite/alertes/regles")
    assert rules.status_code == 200 and "Lectures en masse" in rules.text
    bad = await client.post(
        "/securite/alertes/regles",
        data={"csrf_token": csrf, "kind": "exports", "name": "Trop", "threshold": "0"},
    )
    assert bad.status_code == 422 and "threshold" in bad.text
    good = await client.post(
        "/securite/alertes/regles",
        data={
            "csrf_token": csrf,
            "kind": "exports",
            "name": "Exports en nombre",
            "threshold": "3",
            "measure": "count",
            "window_minutes": "30",
            "enabled": "1",
        },
    )
    assert good.status_code == 303
    made_rule = [
        r
        for r in (await client.get("/api/v1/security/alert-rules", headers=secu)).json()["items"]
        if r["name"] == "Exports en nombre"
    ]
    assert made_rule and made_rule[0]["params"] == {
        "window_minutes": 30,
        "threshold": 3,
        "measure": "count",
        "email": False,
    }


async def test_others_are_refused_the_pages(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    await set_rule(client, secu, "id_probing", threshold=1)
    prober = await officer(app, client, "prober", "PP")
    for _ in range(2):
        await client.get(f"/api/v1/entries/{uuid.uuid4()}", headers=prober)
    await evaluate(app)
    [alert] = await alerts(client, secu, kind="id_probing")  # (late at night: off hours too)
    await officer(app, client, "ada", "PP", roles=(Role.ADMINISTRATOR, Role.WATCH_OFFICER))
    for name in ("prober", "ada"):
        await browse_as(client, name)
        home = await client.get("/main-courante")
        assert home.status_code == 200 and "/securite/alertes" not in home.text
        for url in (
            "/securite/alertes",
            f"/securite/alertes/{alert['id']}",
            "/securite/alertes/regles",
            "/securite/alertes/badge",
        ):
            assert (await client.get(url)).status_code == 403, (name, url)


async def test_a_rule_is_edited_and_deleted_in_its_form(app: FastAPI, client: AsyncClient) -> None:
    secu = await security_officer(app, client)
    rules = (await client.get("/api/v1/security/alert-rules", headers=secu)).json()["items"]
    rule = next(r for r in rules if r["kind"] == "bulk_reads")
    csrf = await browse_as(client, "sophie.secu")
    page = await client.get(f"/securite/alertes/regles/{rule['id']}")
    assert page.status_code == 200 and 'value="200"' in page.text
    form = {"csrf_token": csrf, "name": "Lectures massives", "severity": "critical"}
    saved = await client.post(
        f"/securite/alertes/regles/{rule['id']}",
        data={**form, "threshold": "50", "window_minutes": "5", "enabled": "1", "action": "save"},
    )
    assert saved.status_code == 303
    after = (await client.get(f"/api/v1/security/alert-rules/{rule['id']}", headers=secu)).json()
    assert after["params"] == {"threshold": 50, "window_minutes": 5, "email": False}
    assert after["severity"] == "critical" and after["version"] == 2 and after["enabled"]
    wrong = await client.post(
        f"/securite/alertes/regles/{rule['id']}",
        data={**form, "threshold": "abc", "window_minutes": "5", "action": "save"},
    )
    assert wrong.status_code == 422 and "threshold" in wrong.text
    gone = await client.post(
        f"/securite/alertes/regles/{rule['id']}", data={"csrf_token": csrf, "action": "delete"}
    )
    assert gone.status_code == 303
    missing = await client.get(f"/api/v1/security/alert-rules/{rule['id']}", headers=secu)
    assert missing.status_code == 404
