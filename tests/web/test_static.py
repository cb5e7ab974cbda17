"""Page weight: fingerprinted static files cached for a year, compressed answers (never the
live stream), Leaflet only on the pages with a map, the reduced DSFR stylesheet."""

from __future__ import annotations

import asyncio
import re

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.core.assets import STATIC
from hypervision.core.compression import pick_encoding
from hypervision.core.middleware import SECURITY_HEADERS
from hypervision.identity import csrf
from hypervision.identity.models import AuthSession
from hypervision.policy.roles import Role
from hypervision.web import statics
from tests.factories import ENTRY, make_org, make_user, officer, tx
from tests.live.server import open_stream, serve
from tests.web.pages import browse_as, csrf_of

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

STATIC_REF = re.compile(r'(?:href|src|content|data-css|data-boundaries)="(/static/[^"]*)"')
FINGERPRINTED = re.compile(r"^/static/[0-9a-f]{12}/")
CSS_URL = re.compile(r"url\(([^)]*)\)")
BROTLI = {"Accept-Encoding": "br"}
GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture
async def agent(app: FastAPI, client: AsyncClient) -> str:
    await make_org(app, "PREF")
    await make_user(app, "agent", "PREF", roles=[Role.OFFICER], clearance="DR")
    return await browse_as(client, "agent")


def static_refs(html: str) -> list[str]:
    return STATIC_REF.findall(html)


@SQLITE_ONLY
async def test_pages_link_fingerprinted_files_cached_for_a_year(
    client: AsyncClient, agent: str
) -> None:
    page = await client.get("/main-courante")
    refs = static_refs(page.text)
    assert refs, "no static file linked"
    assert all(FINGERPRINTED.match(ref) for ref in refs), refs
    for ref in refs:
        response = await client.get(ref, headers=IDENTITY)
        assert response.status_code == 200, ref
        assert response.headers["cache-control"] == statics.IMMUTABLE, ref
    # The same file without its fingerprint, or with a stale one, is revalidated instead.
    plain = re.sub(r"^/static/[0-9a-f]{12}/", "/static/", refs[-1])
    stale = re.sub(r"^/static/[0-9a-f]{12}/", "/static/000000000000/", refs[-1])
    for url in (plain, stale):
        response = await client.get(url)
        assert response.status_code == 200
        assert response.headers["cache-control"] == statics.REVALIDATE


@SQLITE_ONLY
async def test_stylesheets_point_at_fingerprinted_fonts_and_icons(
    client: AsyncClient, agent: str
) -> None:
    page = await client.get("/main-courante")
    sheets = [r for r in static_refs(page.text) if r.endswith(".css")]
    assert any(s.endswith("vendor/dsfr/dsfr.purged.css") for s in sheets), sheets
    dsfr = (await client.get(next(s for s in sheets if "dsfr" in s))).text
    targets = {
        u.strip("'\"") for u in CSS_URL.findall(dsfr) if not u.strip("'\"").startswith("data:")
    }
    assert any("fonts-latin/Marianne-Regular.woff2" in t for t in targets)
    assert all(FINGERPRINTED.match(t) for t in targets), [
        t for t in targets if not FINGERPRINTED.match(t)
    ]
    font = next(t for t in targets if t.endswith("Marianne-Regular.woff2"))
    response = await client.get(font)
    assert response.status_code == 200
    assert response.headers["cache-control"] == statics.IMMUTABLE
    assert response.headers["content-type"] == "font/woff2"
    assert "content-encoding" not in response.headers  # already compressed


@SQLITE_ONLY
async def test_the_dsfr_stylesheet_is_reduced_to_what_the_pages_use(
    client: AsyncClient, agent: str
) -> None:
    page = await client.get("/main-courante")
    sheet = next(r for r in static_refs(page.text) if r.endswith("dsfr.purged.css"))
    css = (await client.get(sheet, headers=IDENTITY)).text
    full = (STATIC / "vendor/dsfr/dsfr.min.css").stat().st_size
    assert len(css.encode()) < full / 2
    for used in (".fr-header", ".fr-btn", ".fr-icon-logout-box-r-line", ".fr-nav__link"):
        assert used in css, used
    # Classes the DSFR's script adds (open menu, expanded collapse) are kept.
    assert ".fr-collapse--expanded" in css and ".fr-modal--opened" in css
    assert ".fr-icon-bike-line" not in css  # an icon no page uses
    # The pages' fonts are the Latin subsets, a fraction of the whole fonts (kept for PDFs).
    fonts = STATIC / "vendor/dsfr"
    for name in ("Marianne-Regular.woff2", "Marianne-Bold.woff2"):
        assert f"fonts-latin/{name}" in css
        subset = (fonts / "fonts-latin" / name).stat().st_size
        assert subset < (fonts / "fonts" / name).stat().st_size / 2


@SQLITE_ONLY
async def test_static_text_files_are_compressed(client: AsyncClient, agent: str) -> None:
    page = await client.get("/main-courante")
    script = next(r for r in static_refs(page.text) if r.endswith("htmx.min.js"))
    plain = await client.get(script, headers=IDENTITY)
    assert "content-encoding" not in plain.headers
    both = {"Accept-Encoding": "gzip, br"}
    for wanted, headers in (("br", BROTLI), ("gzip", GZIP), ("br", both)):
        response = await client.get(script, headers=headers)
        assert response.headers["content-encoding"] == wanted
        assert response.headers["vary"] == "Accept-Encoding"
        assert response.content == plain.content  # decoded by the client
        assert response.num_bytes_downloaded < len(plain.content) / 2
        etag = response.headers["etag"]
        again = await client.get(script, headers={**headers, "If-None-Match": etag})
        assert again.status_code == 304 and not again.content
    refused = await client.get(script, headers={"Accept-Encoding": "br;q=0, gzip;q=0"})
    assert "content-encoding" not in refused.headers


@SQLITE_ONLY
async def test_boundaries_are_cached_under_their_folder_fingerprint(
    client: AsyncClient, agent: str
) -> None:
    page = await client.get("/carte")
    found = re.search(r'data-boundaries="([^"]*)"', page.text)
    assert found and FINGERPRINTED.match(found.group(1)) and found.group(1).endswith("/")
    for name in ("regions", "departements", "paris"):
        response = await client.get(f"{found.group(1)}{name}.geojson", headers=BROTLI)
        assert response.status_code == 200
        assert response.headers["cache-control"] == statics.IMMUTABLE
        assert response.headers["content-type"] == "application/geo+json"
        assert response.headers["content-encoding"] == "br"
        assert response.json()["type"] == "FeatureCollection"


@SQLITE_ONLY
async def test_pages_are_compressed_and_never_stored(client: AsyncClient, agent: str) -> None:
    for headers, encoding in ((BROTLI, "br"), (GZIP, "gzip"), (IDENTITY, None)):
        page = await client.get("/main-courante", headers=headers)
        assert page.status_code == 200
        assert page.headers.get("content-encoding") == encoding
        assert page.headers["cache-control"] == "no-store"
        for name, value in SECURITY_HEADERS.items():
            assert page.headers[name] == value, name
        assert "Main courante" in page.text
    api = await client.get("/api/v1/entries", headers=BROTLI)
    assert api.status_code == 200 and api.headers["cache-control"] == "no-store"


@SQLITE_ONLY
async def test_leaflet_only_on_pages_with_a_map(client: AsyncClient, agent: str) -> None:
    leaflet = re.compile(r'<(?:script|link)[^>]*vendor/leaflet/leaflet\.(?:js|css)"')
    for path in ("/main-courante", "/recherche", "/boite", "/aide"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert not leaflet.search(page.text), path
        # Only a pointer for app.js, which loads it when a map arrives (an entry in the feed).
        assert 'name="hv-leaflet"' in page.text
    for path in ("/carte", "/main-courante/nouvelle"):
        page = await client.get(path)
        assert len(leaflet.findall(page.text)) == 2, path


@SQLITE_ONLY
async def test_hidden_and_outside_files_are_not_served(client: AsyncClient) -> None:
    for url in (
        "/static/vendor/.installed",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/vendor/..%2f..%2fapp.py",
        "/static/vendor/nothing.js",
        "/static/vendor",
    ):
        response = await client.get(url)
        assert response.status_code == 404, url


@SQLITE_ONLY
async def test_the_live_stream_is_never_compressed(app: FastAPI, client: AsyncClient) -> None:
    author = await officer(app, client, "author", "PP", roles=(Role.WATCH_OFFICER,))
    reader = await officer(app, client, "reader", "SAMU")
    async with (
        serve(app) as base,
        open_stream(base, reader, extra={"Accept-Encoding": "br, gzip"}) as stream,
    ):
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in stream.response.headers
        public = {**ENTRY, "label": {"level": "NP", "audience": []}}
        created = await client.post("/api/v1/entries", json=public, headers=author)
        assert created.status_code == 201
        # Delivered at once, not held in a compressor's buffer.
        await stream.wait_for(lambda s: len(s.of("entry.create")) == 1, timeout=5)
        await asyncio.sleep(0)


def test_encoding_negotiation() -> None:
    assert pick_encoding("gzip, deflate, br") == "br"
    assert pick_encoding("gzip") == "gzip"
    assert pick_encoding("br;q=0, gzip") == "gzip"
    assert pick_encoding("*") == "br"
    assert pick_encoding("identity") is None
    assert pick_encoding("") is None
    assert pick_encoding("br;q=bad") is None


@SQLITE_ONLY
async def test_the_csrf_token_is_masked_afresh_in_every_page(
    app: FastAPI, client: AsyncClient, agent: str
) -> None:
    """Compressed pages must not carry the same secret bytes each time (BREACH)."""
    first = csrf_of(await client.get("/main-courante"))
    second = csrf_of(await client.get("/main-courante"))
    assert first != second and first.startswith(csrf.PREFIX)
    assert csrf.unmask(first) == csrf.unmask(second)
    async with tx(app) as session:
        stored = set(await session.scalars(select(AuthSession.csrf_token)))
    assert csrf.unmask(first) in stored and first not in stored
    # Both masked values are accepted; a tampered one is refused.
    for token in (first, second):
        done = await client.post("/visite", data={"csrf_token": token})
        assert done.status_code == 204, done.text
    tampered = first[:-2] + ("AA" if not first.endswith("AA") else "BB")
    refused = await client.post("/visite", data={"csrf_token": tampered})
    assert refused.status_code == 403


def test_masking_round_trip() -> None:
    token = "abcDEF-123_xyz"
    masked = {csrf.mask(token) for _ in range(20)}
    assert len(masked) == 20 and all(csrf.unmask(m) == token for m in masked)
    assert csrf.unmask(token) == token  # a bare token (API clients) stays as it is
    assert csrf.matches(csrf.mask(token), token) and csrf.matches(token, token)
    assert not csrf.matches(csrf.mask(token), "other") and not csrf.matches("", token)
    assert not csrf.matches(token, None) and csrf.mask("") == ""
    assert csrf.unmask("m.!!!") == "" and csrf.unmask("m.QUJD") == ""
