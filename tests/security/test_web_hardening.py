"""Web hardening over EVERY route of the application (SECURITY.md items 9, 12, 15), both engines.

The routes are enumerated from the application itself, so a route added tomorrow is checked
tomorrow without anyone editing this file:

* every GET route, signed in (session cookie; and bearer token for the API), with its path
  parameters filled with real ids: strict Content-Security-Policy, HSTS, X-Frame-Options,
  nosniff, Referrer-Policy, and ``Cache-Control: no-store`` — pages, JSON, redirects, the PDF,
  the attachment download, the GeoJSON export, the live stream and error pages alike;
* every state-changing route (POST, PUT, PATCH, DELETE), web and API, with a valid session
  cookie and no or a forged CSRF token: 403 and the database unchanged, row for row. The only
  exceptions are the sign-in routes, which have no session yet (see the last tests: SameSite
  strict cookie, and cross-site sign-in refused by Origin / Sec-Fetch-Site);
* every template: no inline script, no event-handler attribute, no style attribute, no
  ``javascript:`` URL (the CSP is ``script-src 'self'; style-src 'self'``).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from httpx import ASGITransport, AsyncClient, Response
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.datastructures import Headers
from starlette.routing import Mount

import hypervision
from hypervision.audit.models import AuditHead, AuditRecord, AuditResource
from hypervision.core.deps import SESSION_COOKIE
from hypervision.db import Base
from hypervision.follows.models import SavedView
from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_org, make_user, sequenced, sign_in, tx
from tests.web.pages import browse_as

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sign-in routes: no session exists yet, so there is no CSRF token to check (see below).
SIGN_IN = frozenset(
    {
        ("POST", "/connexion"),
        ("POST", "/connexion/code"),  # the second step: a signed challenge, no session yet
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/token"),
        # An identity provider's back-channel logout: a server-to-server call with a logout
        # token signed by the provider, no cookie (tests/identity/test_oidc.py).
        ("POST", "/connexion/oidc/{provider}/deconnexion"),
    }
)
STREAM = "/api/v1/stream"
AUDIT_STREAM = "/api/v1/stream/audit"  # the security console's (docs/adr/0039)
# Required query strings (without them these answer 422, which is checked too, elsewhere).
QUERIES = {
    "/api/v1/map/entries": "?view=2.2,48.8,2.5,48.95&zoom=12",
    "/api/v1/search": "?q=colis",
    "/api/v1/places": "?q=saint",
    "/recherche": "?q=colis",
    "/api/v1/map/export": "?layer={layer_id}",
    "/api/v1/products/{product_id}/diff": "?from=1&to=2",
    "/donnees/{product_id}/comparer": "?de=1&a=2",
    "/api/v1/products/{product_id}/quality/failures": "?rule=lits",
    "/donnees/{product_id}/qualite/echecs": "?regle=lits",
    "/donnees/deriver": "?source={product_id}",  # step 2: the source's fields
    "/securite/qui-a-vu": "?type=entry&id={entry_id}",
    "/api/v1/spaces/{space_id}/modules/data": "?modules={module_id}",  # docs/adr/0051
    "/espaces/{space_id}/modules": "?modules={module_id}",
}
# GET routes that legitimately answer something else than 2xx/3xx for this user.
NOT_OK: dict[str, int] = {
    "/carte/tuiles/fond.pmtiles": 404,  # no base map file configured
    "/donnees/{product_id}/ligne": 409,  # the world's product has no key: no row form
    "/metrics": 404,  # the test client is not on the monitoring network (tests/test_metrics.py)
    # Single sign-on (docs/adr/0033): no provider is configured in the world, so its name is
    # unknown; tests/identity/test_oidc.py checks these answers with a real provider.
    "/connexion/oidc/{provider}": 404,
    "/connexion/oidc/{provider}/retour": 404,
}
ALL_ROLES = tuple(Role)
REPORT_SCHEDULE = {"name": "Point", "times": ["07:00"], "recipients": {"users": ["second"]}}


# --- the routes -----------------------------------------------------------------------------


def routes(app: FastAPI, methods: frozenset[str]) -> list[tuple[str, str]]:
    """(method, path template) of every route of the app answering one of ``methods``."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        path, allowed = route.path, route.methods or set()
        if path is None or isinstance(route.original_route, Mount):
            continue
        found.update((method, path) for method in allowed if method in methods)
    return sorted(found, key=lambda item: (item[1], item[0]))


def fill(path: str, ids: dict[str, str]) -> str:
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    missing = [name for name in names if name not in ids]
    assert not missing, f"{path}: no real id for {missing}: add one to the world fixture"
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: ids[m.group(1)], path)


# --- the headers ----------------------------------------------------------------------------


def csp_directives(policy: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives.setdefault(words[0].lower(), words[1:])
    return directives


def assert_hardened(headers: Mapping[str, str], what: str, *, no_store: bool = True) -> None:
    policy = headers.get("content-security-policy", "")
    directives = csp_directives(policy)
    script = directives.get("script-src", directives.get("default-src"))
    assert script, (what, policy)
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"} & set(
        script
    ), (what, policy)
    assert directives.get("object-src", directives.get("default-src")) == ["'none'"], what
    assert directives.get("frame-ancestors") == ["'none'"], (what, policy)
    assert directives.get("base-uri") in (["'none'"], ["'self'"]), (what, policy)
    hsts = headers.get("strict-transport-security", "")
    assert re.match(r"max-age=(\d+)", hsts) and int(hsts.split("=")[1].split(";")[0]) >= 31536000
    assert headers.get("x-frame-options") == "DENY", what
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("referrer-policy") in ("same-origin", "no-referrer", "strict-origin"), what
    if no_store:
        assert "no-store" in headers.get("cache-control", ""), (what, headers.get("cache-control"))


# --- a world where every path parameter has a real id ---------------------------------------


@dataclass
class World:
    ids: dict[str, str]
    bearer: dict[str, str]
    csrf: str
    bare: AsyncClient  # no cookie jar: the API with a bearer token only
    checked: list[str] = field(default_factory=list)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


GEOJSON = json.dumps(
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "Point d'eau"},
                "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
            }
        ],
    }
).encode()
POLYGON = {
    "type": "Polygon",
    "coordinates": [[[2.3, 48.85], [2.31, 48.85], [2.31, 48.86], [2.3, 48.86], [2.3, 48.85]]],
}


async def _ok(response: Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def world(app: FastAPI, client: AsyncClient) -> AsyncIterator[World]:
    await make_org(app, "PREF")
    await make_user(app, "root", "PREF", roles=ALL_ROLES, clearance="DR")
    await make_user(app, "second", "PREF", roles=ALL_ROLES, clearance="DR")
    transport = ASGITransport(app=app, client=("203.0.113.9", 50002))
    bare = AsyncClient(transport=transport, base_url="https://testserver")
    bearer = await sign_in(bare, "root")
    other = await sign_in(bare, "second")
    post = bare.post
    label = {"level": "NP", "audience": []}
    situation = await _ok(
        await post("/api/v1/situations", json={"title": "JO — cérémonie"}, headers=bearer)
    )
    entry = await _ok(
        await post(
            "/api/v1/entries",
            json={**ENTRY, "label": label, "situation_id": situation["id"]},
            headers=bearer,
        )
    )
    attachment = await _ok(
        await post(
            f"/api/v1/entries/{entry['id']}/attachments",
            files={"file": ("photo.png", png(), "image/png")},
            headers=bearer,
        )
    )
    zone = await _ok(
        await post("/api/v1/zones", json={"name": "Périmètre", "geometry": POLYGON}, headers=bearer)
    )
    layer = await _ok(
        await post(
            "/api/v1/layers",
            data={"name": "Points d'eau"},
            files={"file": ("eau.geojson", GEOJSON, "application/geo+json")},
            headers=bearer,
        )
    )
    synthesis = await _ok(
        await post(
            "/api/v1/syntheses",
            json={"title": "Point de situation", "scope": {"hours": 24}},
            headers=bearer,
        )
    )
    raised = await _ok(
        await post(
            f"/api/v1/entries/{entry['id']}/label", json={"label": {"level": "DR"}}, headers=other
        ),
        200,
    )
    assert raised["applied"] is True
    lowered = await _ok(
        await post(
            f"/api/v1/entries/{entry['id']}/label",
            json={"label": {"level": "NP"}, "reason": "erreur"},
            headers=other,
        ),
        202,
    )
    token = await _ok(
        await post(
            "/api/v1/api-tokens",
            json={"name": "passerelle", "username": "root", "scopes": ["read"]},
            headers=bearer,
        )
    )
    product = await _ok(
        await post(
            "/api/v1/products",
            json={
                "slug": "lits",
                "name": "Lits disponibles",
                "table_schema": {
                    "fields": [
                        {"name": "lits", "type": "integer"},
                        {"name": "geometry", "type": "geojson"},  # on the map
                    ]
                },
                "rules": {"rows": [], "rows_default": "deny"},
                "label": label,
            },
            headers=bearer,
        )
    )
    for count in (b"12", b"14"):  # two data versions, to compare
        await _ok(
            await bare.post(
                f"/api/v1/products/{product['id']}/imports",
                files={"file": ("lits.csv", b"lits;geometry\n" + count + b";\n", "text/csv")},
                headers=bearer,
            )
        )
    widened = await _ok(
        await bare.put(
            f"/api/v1/products/{product['id']}/rules",
            json={"rules": {"rows": [], "rows_default": "allow"}, "reason": "ouverture"},
            headers=bearer,
        ),
        200,
    )
    await _ok(
        await bare.put(
            f"/api/v1/products/{product['id']}/quality",
            json={"rules": [{"id": "lits", "kind": "required", "field": "lits"}]},
            headers=bearer,
        ),
        200,
    )
    # Open data (docs/adr/0035): a product published by root, approved by second.
    public = await _ok(
        await post(
            "/api/v1/products",
            json={
                "slug": "alertes",
                "name": "Alertes",
                "table_schema": {"fields": [{"name": "n", "type": "integer"}]},
                "label": label,
            },
            headers=bearer,
        )
    )
    await _ok(
        await bare.post(
            f"/api/v1/products/{public['id']}/imports",
            files={"file": ("n.csv", b"n\n1\n", "text/csv")},
            headers=bearer,
        )
    )
    publication = await _ok(
        await post(
            "/api/v1/publications",
            json={"product_id": public["id"], "slug": "alertes", "title": "Alertes"},
            headers=bearer,
        )
    )
    await _ok(await post(f"/api/v1/publications/{publication['id']}/approve", headers=other), 200)
    csrf = await browse_as(client, "root")
    saved = await client.post(
        "/vues", data={"csrf_token": csrf, "name": "Sécurité", "query": "category=security"}
    )
    assert saved.status_code == 303, saved.text
    async with tx(app) as session:
        view_id = await session.scalar(select(SavedView.id))
    users = (await bare.get("/api/v1/users", headers=bearer)).json()
    # A security alert and a rule (docs/adr/0040): one id probe above a threshold of 1.
    async with tx(app) as session:
        await app.state.alerts.run(session)  # first start: cursor and default rules
    rules = (await bare.get("/api/v1/security/alert-rules", headers=bearer)).json()["items"]
    probing = next(r for r in rules if r["kind"] == "id_probing")
    assert (
        await bare.put(
            f"/api/v1/security/alert-rules/{probing['id']}",
            json={"kind": "id_probing", "name": probing["name"], "threshold": 1},
            headers=bearer,
        )
    ).status_code == 200
    for _ in range(2):
        await bare.get(f"/api/v1/entries/{uuid.uuid4()}", headers=bearer)
    # The hub (docs/adr/0042): a shift, a document, and an announcement by the CNCS.
    shift = await _ok(
        await post(
            "/api/v1/hub/duty",
            json={
                "username": "second",
                "organisation": "PREF",
                "room": "Salle CNCS",
                "starts_at": datetime.now(UTC).isoformat(),
                "ends_at": (datetime.now(UTC) + timedelta(hours=8)).isoformat(),
            },
            headers=bearer,
        )
    )
    document = await _ok(
        await post(
            "/api/v1/hub/documents",
            params={"title": "Plan", "level": "NP"},
            files={"file": ("plan.png", png(), "image/png")},
            headers=bearer,
        )
    )
    await make_org(app, "MININT-CNCS")
    await make_user(app, "cncs", "MININT-CNCS", roles=[Role.WATCH_OFFICER], clearance="DR")
    notice = await _ok(
        await post(
            "/api/v1/hub/announcements",
            json={"title": "Point presse", "label": label},
            headers=await sign_in(bare, "cncs"),
        )
    )
    await sequenced(app)
    async with tx(app) as session:
        await app.state.alerts.run(session)
    alert = (await bare.get("/api/v1/security/alerts", headers=bearer)).json()["items"][0]
    form = {"id": "ajout", "type": "form", "config": {"preset": {"category": "transport"}}}
    space = await _ok(
        await post("/api/v1/spaces", json={"title": "PC", "modules": [form]}, headers=bearer)
    )
    schedule = await _ok(
        await post(
            f"/api/v1/spaces/{space['id']}/report-schedules",
            json=REPORT_SCHEDULE,
            headers=bearer,
        )
    )
    ids = {
        "entry_id": entry["id"],
        "attachment_id": attachment["id"],
        "situation_id": situation["id"],
        "zone_id": zone["id"],
        "layer_id": layer["id"],
        "synthesis_id": synthesis["id"],
        "request_id": lowered["request"]["id"],
        "token_id": token["id"],
        "user_id": next(u["id"] for u in users["items"] if u["username"] == "second"),
        "view_id": str(view_id),
        "product_id": product["id"],
        "change_id": widened["pending"]["id"],
        "alert_id": alert["id"],
        "rule_id": probing["id"],
        "locale": "en",
        "code": "PREF",  # an organisation's
        "provider": "keycloak",  # an OpenID Connect provider's name (none configured here)
        # the security console's (docs/adr/0039): who saw the entry, the second's activity
        "resource_type": "entry",
        "resource_id": entry["id"],
        "person_id": next(u["id"] for u in users["items"] if u["username"] == "second"),
        "publication_id": publication["id"],
        "slug": "alertes",  # a published dataset's
        "number": "1",
        "fmt": "csv",
        "action": "withdraw",
        "duty_id": shift["id"],
        "document_id": document["id"],
        "announcement_id": notice["id"],
        "space_id": space["id"],  # a space and its form module (docs/adr/0041)
        "module_id": "ajout",
        "schedule_id": schedule["id"],  # the space's report schedule (docs/adr/0045)
    }
    yield World(ids=ids, bearer=bearer, csrf=csrf, bare=bare)
    await bare.aclose()


# --- the live stream: headers only ----------------------------------------------------------


async def response_start(app: FastAPI, path: str, headers: dict[str, str]) -> tuple[int, Headers]:
    """The status and headers of a (never ending) streamed answer; then the client leaves."""
    started = asyncio.Event()
    box: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        if not box.get("asked"):
            box["asked"] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await started.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            box["start"] = message
            started.set()

    raw = [(b"host", b"testserver")] + [
        (name.lower().encode(), value.encode()) for name, value in headers.items()
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("203.0.113.7", 50000),
        "server": ("testserver", 443),
    }
    task = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), timeout=15)
    try:
        await asyncio.wait_for(task, timeout=5)
    except TimeoutError:
        task.cancel()
    start = box["start"]
    return int(start["status"]), Headers(raw=start["headers"])


# --- GET: headers and no-store everywhere ---------------------------------------------------


async def test_every_get_route_is_hardened_and_not_cached(
    app: FastAPI, client: AsyncClient, world: World
) -> None:
    gets = routes(app, frozenset({"GET"}))
    assert len(gets) >= 50  # the enumeration does find the app's routes
    cookie = {"cookie": f"{SESSION_COOKIE}={client.cookies.get(SESSION_COOKIE)}"}
    for _, path in gets:
        url = fill(path, world.ids) + QUERIES.get(path, "").format(**world.ids)
        credentials: list[tuple[str, AsyncClient, dict[str, str]]] = [("cookie", client, {})]
        if path.startswith("/api/"):
            credentials.append(("bearer", world.bare, world.bearer))
        for how, http, headers in credentials:
            what = f"GET {url} ({how})"
            got: Mapping[str, str]
            if path in (STREAM, AUDIT_STREAM):
                status, got = await response_start(app, url, headers or cookie)
            else:
                response = await http.get(url, headers=headers)
                status, got = response.status_code, response.headers
            assert status < 400 or NOT_OK.get(path) == status, (what, status)
            assert_hardened(got, what)
            world.checked.append(what)
    assert len(world.checked) >= len(gets)


async def test_files_exports_stream_and_errors_are_not_cached(
    app: FastAPI, client: AsyncClient, world: World
) -> None:
    """The special answers, one by one (the sweep above covers them; this names them)."""
    ids = world.ids
    pdf = await client.get(f"/api/v1/syntheses/{ids['synthesis_id']}/pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    download = await client.get(f"/api/v1/attachments/{ids['attachment_id']}")
    assert download.status_code == 200
    assert "sandbox" in download.headers["content-security-policy"]  # its own, completed
    export = await world.bare.get("/api/v1/map/export", headers=world.bearer)
    assert export.json()["type"] == "FeatureCollection"
    redirect = await client.get("/")
    assert redirect.status_code == 303
    language = await client.get("/langue/fr?suite=/aide")
    assert language.status_code == 303
    errors = [
        await client.get("/nulle-part"),  # HTML 404 page
        await client.get(f"/entrees/{uuid.uuid4()}"),  # HTML 404 of a record
        await client.get("/api/v1/nothing-here"),  # JSON 404
        await client.get("/vues"),  # 405
        await client.get("/api/v1/entries?limit=abc"),  # 422
        await world.bare.get("/api/v1/entries", headers={"Authorization": "Bearer nope"}),  # 401
        await world.bare.get(f"/api/v1/zones/{uuid.uuid4()}", headers=world.bearer),
    ]
    for response in [pdf, download, export, redirect, language, *errors]:
        assert_hardened(response.headers, f"{response.request.url} {response.status_code}")
    assert [r.status_code for r in errors] == [404, 404, 404, 405, 422, 401, 404]
    status, headers = await response_start(app, STREAM, world.bearer)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert_hardened(headers, "stream")


async def test_sign_in_answers_are_not_cached_and_static_files_may_be(
    app: FastAPI, client: AsyncClient, world: World
) -> None:
    anonymous = AsyncClient(transport=ASGITransport(app=app), base_url="https://testserver")
    async with anonymous:
        signed = await anonymous.post("/connexion", data={"username": "root", "password": "x"})
        assert signed.status_code == 401
        assert_hardened(signed.headers, "failed sign-in page")
        page = await anonymous.get("/connexion")
        assert_hardened(page.headers, "sign-in page")
        for url in ("/connexion/oidc/keycloak", "/connexion/oidc/keycloak/retour?state=x"):
            unknown = await anonymous.get(url)  # no such provider here
            assert unknown.status_code == 404 and "set-cookie" not in unknown.headers
            assert_hardened(unknown.headers, f"single sign-on {url}")
        public = await anonymous.get("/static/app.js")
        assert public.status_code == 200
        assert_hardened(public.headers, "static file", no_store=False)
        assert "no-store" not in public.headers.get("cache-control", "")
    # The same public file asked with the cookie: identical for everybody, it may be cached.
    mine = await client.get("/static/app.js")
    assert_hardened(mine.headers, "static file, signed in", no_store=False)
    # But a 404 under any other path, with the cookie, is not.
    assert_hardened((await client.get("/static-not/x")).headers, "404 signed in")


# --- CSRF on every state-changing route -----------------------------------------------------


AUDIT_TABLES = frozenset(
    {AuditRecord.__tablename__, AuditHead.__tablename__, AuditResource.__tablename__}
)


async def snapshot(engine: AsyncEngine) -> dict[str, list[str]]:
    """Every row of every table (as the owner: row-level security hides nothing) but the
    audit trail's, where a refusal is recorded (checked apart)."""
    async with engine.connect() as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in (await conn.execute(select(table))))
            for table in Base.metadata.sorted_tables
            if table.name not in AUDIT_TABLES
        }


async def audit_since(engine: AsyncEngine, qid: int) -> list[tuple[str, str]]:
    """Records appended after queue position ``qid``, chained yet or not."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(AuditRecord.action, AuditRecord.decision).where(AuditRecord.qid > qid)
        )
        return [(str(action), str(decision)) for action, decision in rows]


async def last_qid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.max(AuditRecord.qid))) or 0)


# Plausible bodies: without the CSRF check, these would change something.
API_BODIES: dict[str, Any] = {
    "/api/v1/entries": ENTRY,
    "/api/v1/entries/{entry_id}": {"title": "Titre changé"},
    "/api/v1/entries/{entry_id}/comments": {"body": "Un commentaire"},
    "/api/v1/entries/{entry_id}/severity": {"severity": "critical"},
    "/api/v1/entries/{entry_id}/label": {"label": {"level": "DR"}},
    "/api/v1/situations": {"title": "Autre situation"},
    "/api/v1/situations/{situation_id}": {"title": "Renommée"},
    "/api/v1/zones": {"name": "Autre", "geometry": POLYGON},
    "/api/v1/zones/{zone_id}": {"name": "Renommée"},
    "/api/v1/syntheses": {"title": "Autre", "scope": {"hours": 24}},
    "/api/v1/syntheses/{synthesis_id}": {"title": "Renommée"},
    "/api/v1/products/{product_id}/quality": {"rules": [{"kind": "required", "field": "lits"}]},
    "/api/v1/organisations": {"code": "EVIL", "name": "Evil"},
    "/api/v1/groups": {"code": "EVIL", "name": "Evil"},
    "/api/v1/users": {
        "username": "mallory",
        "full_name": "Mallory",
        "organisation_code": "PREF",
        "roles": ["administrator"],
        "clearance": "DR",
        "password": "correct horse battery staple 2",
    },
    "/api/v1/users/{user_id}": {"full_name": "Renommé"},
    "/api/v1/organisations/{code}": {"allowed_networks": ["192.0.2.0/24"]},
    # A well-formed checksum (the world's real one would confirm): refused before it is read.
    "/api/v1/organisations/{code}/access-review": {"checksum": "0" * 64},
    "/api/v1/users/{user_id}/clearance": {"clearance": "NP"},
    "/api/v1/api-tokens": {"name": "vol", "username": "root", "scopes": ["read", "write"]},
    "/api/v1/audit/people/{person_id}/revoke": {},  # every session and token of the person
    "/api/v1/spaces/{space_id}/report-schedules": REPORT_SCHEDULE,
    "/api/v1/auth/password": {
        "current_password": "correct horse battery staple",
        "new_password": "another correct horse battery",
    },
}
API_FILES: dict[str, Any] = {
    "/api/v1/entries/{entry_id}/attachments": {"file": ("x.png", png(), "image/png")},
    "/api/v1/layers": {"file": ("eau.geojson", GEOJSON, "application/geo+json")},
    "/api/v1/hub/documents": {"file": ("plan.png", png(), "image/png")},
}
WEB_FORMS: dict[str, dict[str, Any]] = {
    "/main-courante/nouvelle": {"title": "Sans jeton", "category": "security"},
    "/entrees/{entry_id}/commentaires": {"body": "Sans jeton"},
    "/entrees/{entry_id}/triage": {"action": "validate"},
    "/suivis": {"kind": "category", "target": "health"},
    "/vues": {"name": "Vue", "query": "category=health"},
    "/carte/zones": {"name": "Zone", "geometry": json.dumps(POLYGON)},
    "/carte/couches": {"name": "Couche"},
    "/donnees/{product_id}/import": {"mode": "append"},
    "/donnees/publications": {"slug": "vol", "title": "Vol", "product_id": "{product_id}"},
    "/donnees/publications/{publication_id}/{action}": {"reason": "sans jeton"},
    "/donnees/{product_id}/statut": {"status": "active"},
    "/donnees/{product_id}/qualite": {"kind": "required", "field": "lits"},
    "/donnees/{product_id}/import/apercu": {"mode": "append"},
    "/donnees/{product_id}/import/confirmer": {"token": "0" * 32, "colonne_0": "lits"},
    "/donnees/{product_id}/ligne": {"nouvelle": "1", "f_lits": "3"},
    "/donnees/{product_id}/regles": {"rows_n": "0", "rows_default": "allow", "action": "save"},
    "/donnees/{product_id}/regles/{change_id}": {"decision": "approve"},
    "/donnees/{product_id}/coller": {"cells": "lits\n12\n", "action": "import"},
    "/donnees/{product_id}/source": {"action": "run"},
    "/donnees/{product_id}/publier": {},
    "/donnees/deriver": {"name": "Sans jeton", "measure_fn_0": "count", "measure_name_0": "n"},
    "/syntheses": {"title": "Sans jeton"},
    "/syntheses/{synthesis_id}/modifier": {"title": "Sans jeton"},
    "/syntheses/{synthesis_id}/etape": {"action": "submit"},
    "/langue": {"locale": "en"},
    "/securite/alertes/regles": {"kind": "label_lowered", "name": "Sans jeton"},
    "/securite/alertes/regles/{rule_id}": {"name": "Sans jeton", "action": "save"},
    "/securite/alertes/{alert_id}/etat": {"to": "acknowledged", "note": "Sans jeton"},
    "/double-authentification": {"otp": "123456"},
    "/administration/organisations/{code}/revue-des-acces": {"checksum": "0" * 64},
    "/securite/personnes/{person_id}/revoquer": {},  # every session and token of the person
    # The hub (docs/adr/0042)
    "/accueil/annuaire": {"person_name": "Sans jeton", "organisation": "PREF", "room": "X"},
    "/accueil/annuaire/{duty_id}": {"room": "Sans jeton"},
    "/accueil/annuaire/{duty_id}/fin": {},
    "/accueil/annonces": {"title": "Sans jeton", "audience": "all"},
    "/accueil/annonces/{announcement_id}/retirer": {},
    "/accueil/documents": {"title": "Sans jeton", "audience": "all"},
    "/accueil/documents/{document_id}/archiver": {},
    "/espaces": {"title": "Sans jeton"},
    "/espaces/importer": {},
    "/espaces/{space_id}/modules/{module_id}/ajouter": {"title": "Sans jeton"},
    "/espaces/{space_id}/apercu": {"module": "{}"},
    "/espaces/{space_id}/rapports": {"name": "Sans jeton", "times": "07:00", "users": "second"},
    "/espaces/{space_id}/rapports/{schedule_id}/arreter": {},
}
WEB_FILES: dict[str, Any] = {
    "/main-courante/nouvelle": {"files": ("x.png", png(), "image/png")},
    "/carte/couches": {"file": ("eau.geojson", GEOJSON, "application/geo+json")},
    "/donnees/{product_id}/import": {"file": ("lits.csv", b"lits\n12\n", "text/csv")},
    "/donnees/{product_id}/import/apercu": {"file": ("lits.csv", b"lits\n12\n", "text/csv")},
    "/accueil/documents": {"file": ("plan.png", png(), "image/png")},
    "/espaces/importer": {
        "fichier": ("espace.json", b'{"format": "hypervision.space/1"}', "application/json")
    },
}


@pytest.fixture
async def owner_engine(owner_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(owner_database_url)
    yield engine
    await engine.dispose()


def blob_files(app: FastAPI) -> set[Path]:
    root: Path = app.state.settings.blob_dir
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


async def test_every_state_changing_route_refuses_a_missing_or_forged_csrf_token(
    app: FastAPI, client: AsyncClient, world: World, owner_engine: AsyncEngine
) -> None:
    unsafe = routes(app, UNSAFE)
    assert len(unsafe) >= 50
    assert set(unsafe) >= SIGN_IN  # the exceptions exist (renamed ones must be looked at)
    before, blobs = await snapshot(owner_engine), blob_files(app)
    qid = await last_qid(owner_engine)
    checked: list[str] = []
    for method, path in unsafe:
        if (method, path) in SIGN_IN:
            continue
        url = fill(path, world.ids)
        for forged in ("", "forged-" + world.csrf[::-1]):
            what = f"{method} {url} (token: {'forged' if forged else 'none'})"
            if path.startswith("/api/"):
                headers = {"X-CSRF-Token": forged} if forged else {}
                if path in API_FILES:
                    response = await client.request(
                        method, url, files=API_FILES[path], data={"name": "x"}, headers=headers
                    )
                else:
                    response = await client.request(
                        method, url, json=API_BODIES.get(path, {}), headers=headers
                    )
                assert response.status_code == 403, (what, response.text[:300])
                assert response.json()["error"]["code"] == "csrf_failed", what
            else:
                form = {**WEB_FORMS.get(path, {}), **({"csrf_token": forged} if forged else {})}
                response = await client.request(method, url, data=form, files=WEB_FILES.get(path))
                assert response.status_code == 403, (what, response.text[:300])
                assert "text/html" in response.headers["content-type"], what
            assert_hardened(response.headers, what)
            assert await snapshot(owner_engine) == before, f"{what}: the database changed"
            assert blob_files(app) == blobs, f"{what}: a file was stored"
            checked.append(what)
    assert len(checked) == 2 * (len(unsafe) - len(SIGN_IN))
    # The audit trail only gained the refusals themselves.
    assert set(await audit_since(owner_engine, qid)) <= {("refused:csrf_failed", "denied")}
    # The session is still valid: the refusals were the CSRF check, not a lost session.
    assert (await client.get("/aide")).status_code == 200


async def test_sign_in_routes_are_protected_otherwise(
    app: FastAPI, client: AsyncClient, world: World, owner_engine: AsyncEngine
) -> None:
    """No session yet, so no CSRF token: a cross-site sign-in (login CSRF) is refused from the
    Origin / Sec-Fetch-Site headers, and the session cookie is HttpOnly, Secure and
    SameSite=Strict, so no other site can make the browser send it. ``/auth/token`` sets no
    cookie at all: its bearer token is in a body that another site cannot read."""
    before, qid = await snapshot(owner_engine), await last_qid(owner_engine)
    form = {"username": "root", "password": "correct horse battery staple"}
    for url in ("/connexion", "/connexion/code", "/api/v1/auth/login"):
        for headers in (
            {"Origin": "https://evil.example"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
        ):
            refused = await world.bare.post(url, data=form, headers=headers)
            assert refused.status_code == 403, (url, headers, refused.text[:200])
            assert "set-cookie" not in refused.headers
            assert_hardened(refused.headers, f"POST {url} {headers}")
    assert await snapshot(owner_engine) == before  # no session, no throttle count, nothing
    assert {decision for _, decision in await audit_since(owner_engine, qid)} <= {"denied"}
    ok = await world.bare.post("/api/v1/auth/login", data=form)
    assert ok.status_code == 200
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    assert_hardened(ok.headers, "sign-in answer (sets the cookie)")
    token = await world.bare.post("/api/v1/auth/token", data=form)
    assert token.status_code == 200 and "set-cookie" not in token.headers
    assert_hardened(token.headers, "token answer")


# --- templates ------------------------------------------------------------------------------

PACKAGE = Path(hypervision.__file__).parent
TEMPLATE_DIRS = [PACKAGE / "web" / "templates", PACKAGE / "synthesis" / "templates"]
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE)
TAG = re.compile(r"<[a-zA-Z][^>]*>", re.DOTALL)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"\sstyle\s*=", re.IGNORECASE)
HTMX_INLINE = re.compile(r"\shx-on[:\-]|\shx-vars\s*=|\shx-vals\s*=\s*['\"]\s*js:", re.IGNORECASE)
JS_URL = re.compile(r"javascript\s*:", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)


def templates() -> Iterator[Path]:
    for directory in TEMPLATE_DIRS:
        yield from sorted(directory.rglob("*.html"))


def test_templates_have_no_inline_script_handler_style_or_javascript_url() -> None:
    found = list(templates())
    assert len(found) >= 20
    problems: list[str] = []
    for path in found:
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(PACKAGE))
        problems += [f"{name}: inline script {m.group(0)}" for m in INLINE_SCRIPT.finditer(text)]
        problems += [f"{name}: javascript: URL" for _ in JS_URL.finditer(text)]
        for tag in TAG.finditer(text):
            for rule, label in (
                (HANDLER, "event handler"),
                (STYLE_ATTRIBUTE, "style attribute"),
                (HTMX_INLINE, "htmx inline script"),
            ):
                if rule.search(tag.group(0)):
                    problems.append(f"{name}: {label} in {tag.group(0)[:80]}")
        # The web pages are under style-src 'self': no <style> element either. (The synthesis
        # template is rendered to PDF by the server, never served as a page.)
        if "synthesis" not in path.parts[-3:-1] and STYLE_ELEMENT.search(text):
            problems.append(f"{name}: <style> element")
    assert not problems, "\n".join(problems)


def test_the_template_scan_does_catch_offences(tmp_path: Path) -> None:
    """The patterns above are not vacuous."""
    bad = (
        '<script>alert(1)</script><a href="javascript:x()">x</a>'
        '<button onclick="x()">b</button><div style="color:red"></div>'
        '<div hx-on:click="x()"></div>'
    )
    assert INLINE_SCRIPT.search(bad) and JS_URL.search(bad)
    tags = [t.group(0) for t in TAG.finditer(bad)]
    assert any(HANDLER.search(t) for t in tags)
    assert any(STYLE_ATTRIBUTE.search(t) for t in tags)
    assert any(HTMX_INLINE.search(t) for t in tags)
    assert not INLINE_SCRIPT.search('<script src="/static/app.js"></script>')
