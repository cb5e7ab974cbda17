"""Publications (ADR 0035): four eyes, the public principal's refusals, releases written once
with their checksum, schema changes held, withdrawal. On both engines."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.events.models import OutboxEvent
from hypervision.opendata.models import Release, ReleaseRow
from hypervision.policy.roles import Role
from hypervision.products.models import DataProduct
from tests.factories import make_user, sign_in, tx
from tests.products.test_products_api import CSV, PUBLIC, SCHEMA, create, health, upload
from tests.queries import count_queries
from tests.web.pages import browse_as

__all__ = ["health"]

OPEN_RULES = {"rows": [], "rows_default": "allow", "columns": []}
COLUMNS = ["hopital", "departement", "service", "lits"]


async def product(client: AsyncClient, steward: dict[str, str], health: str, **extra: Any) -> str:
    extra.setdefault("rules", OPEN_RULES)
    made = await create(client, steward, health, **extra)
    assert made.status_code == 201, made.text
    pid: str = made.json()["id"]
    assert (await upload(client, steward, pid, CSV)).status_code == 201
    return pid


async def propose(client: AsyncClient, headers: dict[str, str], pid: str, **extra: Any) -> Any:
    body = {
        "product_id": pid,
        "slug": "lits-hopitaux",
        "title": "Lits des hôpitaux",
        "description": "Capacité par hôpital",
        "keywords": ["santé"],
        "themes": ["HEAL"],
        "columns": COLUMNS,
        **extra,
    }
    return await client.post("/api/v1/publications", json=body, headers=headers)


async def stewards(app: FastAPI, client: AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    await make_user(app, "steward2", "SANTE", roles=[Role.DATA_STEWARD], clearance="DR")
    return await sign_in(client, "steward"), await sign_in(client, "steward2")


async def published(app: FastAPI, client: AsyncClient, health: str, **extra: Any) -> Any:
    first, second = await stewards(app, client)
    pid = await product(client, first, health)
    made = await propose(client, first, pid, **extra)
    assert made.status_code == 201, made.text
    approved = await client.post(
        f"/api/v1/publications/{made.json()['id']}/approve", headers=second
    )
    assert approved.status_code == 200, approved.text
    return first, second, pid, made.json()["id"], approved.json()


async def test_four_eyes_and_release_one(app: FastAPI, client: AsyncClient, health: str) -> None:
    first, second = await stewards(app, client)
    medecin = await sign_in(client, "medecin")
    pid = await product(client, first, health)
    made = await propose(client, first, pid)
    assert made.status_code == 201, made.text
    pub = made.json()["id"]
    assert made.json()["state"] == "proposed"
    # Not public yet: the same 404 as an unknown dataset.
    hidden = await client.get("/opendata/api/datasets/lits-hopitaux")
    unknown = await client.get("/opendata/api/datasets/nothing-here")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json()

    own = await client.post(f"/api/v1/publications/{pub}/approve", headers=first)
    assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes"
    outsider = await client.post(f"/api/v1/publications/{pub}/approve", headers=medecin)
    assert outsider.status_code == 403
    approved = await client.post(f"/api/v1/publications/{pub}/approve", headers=second)
    assert approved.status_code == 200, approved.text
    release = approved.json()
    assert release["number"] == 1 and release["row_count"] == 5
    again = await client.post(f"/api/v1/publications/{pub}/approve", headers=second)
    assert again.status_code == 409

    csv = await client.get(release["downloads"]["csv"])
    assert csv.status_code == 200
    assert csv.text.splitlines()[0] == "hopital,departement,service,lits"
    assert hashlib.sha256(csv.content).hexdigest() == release["sha256"]
    assert csv.headers["cache-control"].startswith("public")
    async with tx(app) as session:
        actions = set(
            await session.scalars(
                select(AuditRecord.action).where(AuditRecord.action.like("opendata.%"))
            )
        )
        events = set(
            await session.scalars(
                select(OutboxEvent.type).where(OutboxEvent.type.like("opendata.%"))
            )
        )
    assert {"opendata.propose", "opendata.approve"} <= actions
    assert {"opendata.propose", "opendata.approve"} <= events


async def test_dr_and_restricted_products_are_refused(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    first, _ = await stewards(app, client)
    dr = await product(client, first, health, label={**PUBLIC, "level": "DR"})
    refused = await propose(client, first, dr)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "not_publishable"
    assert "DR" in refused.json()["error"]["message"]

    # The health product's own rules: SAMU rows for health organisations only, patients for
    # MEDICAL only — compiled for the public principal.
    from tests.products.test_products_api import rules

    restricted = await product(client, first, health, slug="restreint", rules=rules(health))
    rows = await propose(client, first, restricted, slug="restreint")
    assert rows.status_code == 403, rows.text
    assert "1 ligne" in rows.json()["error"]["message"]
    column = await propose(
        client,
        first,
        restricted,
        slug="restreint",
        columns=["hopital", "patients"],
        conditions=["service:ne:SAMU"],
    )
    assert column.status_code == 403 and "patients" in column.json()["error"]["message"]
    # Filtering the hidden rows out makes it publishable.
    fine = await propose(
        client, first, restricted, slug="restreint", conditions=["service:ne:SAMU"]
    )
    assert fine.status_code == 201, fine.text


async def test_releases_are_immutable_and_schema_changes_are_held(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    first, second, pid, pub, one = await published(app, client, health)
    again = await client.post(f"/api/v1/publications/{pub}/refresh", headers=second)
    assert again.status_code == 200 and again.json()["release_count"] == 2
    releases = (await client.get(f"/api/v1/publications/{pub}/releases", headers=first)).json()
    assert [r["number"] for r in releases] == [1, 2]
    assert releases[0]["sha256"] == one["sha256"] == releases[1]["sha256"]  # same rows
    async with tx(app) as session:
        stored = (await session.scalars(select(Release).order_by(Release.number))).all()
        counts = [
            len(
                (
                    await session.scalars(select(ReleaseRow).where(ReleaseRow.release_id == r.id))
                ).all()
            )
            for r in stored
        ]
    assert counts == [5, 5]

    schema = {**SCHEMA, "fields": [*SCHEMA["fields"], {"name": "note", "type": "string"}]}
    changed = await client.put(
        f"/api/v1/products/{pid}/schema", json={"table_schema": schema}, headers=first
    )
    assert changed.status_code == 200, changed.text
    held = await client.post(f"/api/v1/publications/{pub}/refresh", headers=first)
    assert held.status_code == 200 and held.json()["held"] is True
    assert held.json()["release_count"] == 2
    assert "schéma" in held.json()["held_reason"]
    blocked = await client.post(f"/api/v1/publications/{pub}/refresh", headers=first)
    assert blocked.status_code == 409
    seen = await client.post(f"/api/v1/publications/{pub}/acknowledge", headers=second)
    assert seen.status_code == 200 and seen.json()["held"] is False
    three = await client.post(f"/api/v1/publications/{pub}/refresh", headers=first)
    assert three.json()["release_count"] == 3
    # Release 1 is still served, byte for byte.
    old = await client.get("/opendata/datasets/lits-hopitaux/releases/1/data.csv")
    assert hashlib.sha256(old.content).hexdigest() == one["sha256"]


async def test_withdrawal_answers_410_everywhere(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    first, _, _, pub, one = await published(app, client, health)
    short = await client.post(
        f"/api/v1/publications/{pub}/withdraw", json={"reason": ""}, headers=first
    )
    assert short.status_code == 422
    gone = await client.post(
        f"/api/v1/publications/{pub}/withdraw",
        json={"reason": "Erreur de saisie dans la source"},
        headers=first,
    )
    assert gone.status_code == 200 and gone.json()["state"] == "withdrawn"
    for url in (
        "/opendata/api/datasets/lits-hopitaux",
        "/opendata/api/datasets/lits-hopitaux/rows",
        one["downloads"]["csv"],
        "/opendata/datasets/lits-hopitaux/releases/latest/data.json",
    ):
        answer = await client.get(url)
        assert answer.status_code == 410, (url, answer.text)
        assert "Erreur de saisie" in answer.text
    listing = (await client.get("/opendata/api/datasets")).json()
    assert listing["total"] == 0


async def test_security_officer_lists_what_is_public(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    await published(app, client, health)
    await make_user(app, "rssi", "PREF", roles=[Role.SECURITY_OFFICER], clearance="NP")
    officer = await sign_in(client, "rssi")
    listed = await client.get("/api/v1/publications?state=published", headers=officer)
    assert listed.status_code == 200, listed.text
    assert [(p["slug"], p["approved_at"] is not None) for p in listed.json()] == [
        ("lits-hopitaux", True)
    ]
    # The same list on the security console's page: since when, who proposed and approved it.
    web = AsyncClient(transport=ASGITransport(app=app), base_url="https://testserver")
    async with web:
        await browse_as(web, "rssi")
        page = await web.get("/securite/donnees-publiques")
        assert page.status_code == 200, page.text
        assert (
            "Jeux de données publiés" in page.text and 'href="/opendata/lits-hopitaux"' in page.text
        )
        row = page.text.split('href="/opendata/lits-hopitaux"', 1)[1].split("</tr>", 1)[0]
        assert "<time datetime=" in row and "n° 1" in row and "5 lignes" in row
        console = await web.get("/securite")
        assert 'href="/securite/donnees-publiques"' in console.text
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://testserver") as web:
        await browse_as(web, "steward")  # a steward, not a security officer
        refused = await web.get("/securite/donnees-publiques")
        assert refused.status_code == 403 and "officiers de sécurité" in refused.text


async def test_a_raised_product_takes_its_dataset_off_the_public_side(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    """SECURITY.md 31: a publication never outlives its product's label."""
    _, _, pid, _, release = await published(app, client, health)
    assert (await client.get("/opendata/api/datasets/lits-hopitaux")).status_code == 200
    async with tx(app) as session:
        product = await session.get(DataProduct, uuid.UUID(pid))
        assert product is not None
        product.label_level = "DR"
    # Written straight into the database, as another replica would: this one sees it at its
    # next generation check (opendata_cache_check_seconds, ADR 0049), made due here.
    app.state.opendata_cache.freshness.expire()
    unknown = await client.get("/opendata/api/datasets/nothing-here")
    for url in (
        "/opendata/api/datasets/lits-hopitaux",
        "/opendata/api/datasets/lits-hopitaux/rows",
        release["downloads"]["csv"],
        "/opendata/lits-hopitaux",
    ):
        got = await client.get(url)
        assert got.status_code == 404, url
    got = await client.get("/opendata/api/datasets/lits-hopitaux")
    assert got.json() == unknown.json()
    assert (await client.get("/opendata/api/datasets")).json()["total"] == 0


async def test_approving_looks_the_publication_up_once(
    app: FastAPI, client: AsyncClient, health: str
) -> None:
    """The approval answers with what the service returns: the publication is found through
    the policy once, not found again to name the release's downloads."""
    first, second = await stewards(app, client)
    pid = await product(client, first, health)
    made = await propose(client, first, pid)
    with count_queries(app) as statements:
        approved = await client.post(
            f"/api/v1/publications/{made.json()['id']}/approve", headers=second
        )
    assert approved.status_code == 200, approved.text
    assert approved.json()["number"] == 1
    csv = approved.json()["downloads"]["csv"]
    assert csv == "/opendata/datasets/lits-hopitaux/releases/1/data.csv"
    lookups = [
        s
        for s in statements
        if s.lstrip().startswith("SELECT") and "FROM opendata_publications" in s
    ]
    assert len(lookups) == 1, lookups
