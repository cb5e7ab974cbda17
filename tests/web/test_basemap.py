"""The PMTiles base map over HTTP: byte ranges (206) with their headers, 416 beyond the end,
the whole file without a range, signed-in users only, 404 when none is configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.config import Settings
from hypervision.geo import basemap
from hypervision.web.map_pages import BASEMAP_URL
from tests.basemap_file import write_base_map
from tests.conftest import make_settings
from tests.factories import make_org, make_user
from tests.web.pages import browse_as


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, database_url, map_pmtiles=write_base_map(tmp_path / "france.pmtiles")
    )


@pytest.fixture
async def signed_in(app: FastAPI, client: AsyncClient) -> None:
    await make_org(app, "PREF")
    await make_user(app, "agent", "PREF")
    await browse_as(client, "agent")


async def test_ranges_of_the_base_map(
    settings: Settings, client: AsyncClient, signed_in: None
) -> None:
    assert settings.map_pmtiles is not None
    whole = settings.map_pmtiles.read_bytes()
    size = len(whole)

    header = await client.get(BASEMAP_URL, headers={"Range": "bytes=0-126"})
    assert header.status_code == 206
    assert header.content == whole[:127] and header.content.startswith(b"PMTiles")
    assert header.headers["content-range"] == f"bytes 0-126/{size}"
    assert header.headers["content-length"] == "127"
    assert header.headers["accept-ranges"] == "bytes"
    etag = header.headers["etag"]
    assert etag.startswith('"') and len(etag) > 10

    middle = await client.get(BASEMAP_URL, headers={"Range": "bytes=200-"})
    assert middle.status_code == 206 and middle.content == whole[200:]
    assert middle.headers["content-range"] == f"bytes 200-{size - 1}/{size}"
    past_end = await client.get(BASEMAP_URL, headers={"Range": f"bytes=100-{size + 500}"})
    assert past_end.status_code == 206 and past_end.content == whole[100:]
    suffix = await client.get(BASEMAP_URL, headers={"Range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.content == whole[-10:]

    beyond = await client.get(BASEMAP_URL, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.content == b""
    assert (await client.get(BASEMAP_URL, headers={"Range": "bytes=-0"})).status_code == 416

    plain = await client.get(BASEMAP_URL)
    assert plain.status_code == 200 and plain.content == whole
    assert plain.headers["accept-ranges"] == "bytes" and plain.headers["etag"] == etag
    # Malformed or several ranges are ignored (RFC 9110): the whole file.
    for ignored in ("bytes=9-3", "items=0-3", "bytes=0-3,10-12"):
        answer = await client.get(BASEMAP_URL, headers={"Range": ignored})
        assert answer.status_code == 200 and answer.content == whole, ignored
    # A client holding an older file gets the new one whole; a current one gets its range.
    stale = await client.get(BASEMAP_URL, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == whole
    fresh = await client.get(BASEMAP_URL, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.content == whole[:10]
    assert (await client.get(BASEMAP_URL, headers={"If-None-Match": etag})).status_code == 304
    head = await client.head(BASEMAP_URL, headers={"Range": "bytes=0-9"})
    assert head.status_code == 206 and head.headers["content-length"] == "10"


async def test_a_range_is_read_in_chunks(
    settings: Settings, client: AsyncClient, signed_in: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.map_pmtiles is not None
    reads: list[int] = []
    real = basemap._chunks

    async def counted(path: Path, start: int, length: int):  # type: ignore[no-untyped-def]
        async for data in real(path, start, length):
            reads.append(len(data))
            yield data

    monkeypatch.setattr(basemap, "CHUNK", 16)
    monkeypatch.setattr(basemap, "_chunks", counted)
    answer = await client.get(BASEMAP_URL, headers={"Range": "bytes=10-59"})
    assert answer.content == settings.map_pmtiles.read_bytes()[10:60]
    assert reads == [16, 16, 16, 2]


async def test_the_base_map_is_for_signed_in_users(app: FastAPI, client: AsyncClient) -> None:
    answer = await client.get(BASEMAP_URL, headers={"Range": "bytes=0-126"})
    assert answer.status_code in (302, 303, 401)
    assert not answer.content.startswith(b"PMTiles")


async def test_a_missing_base_map_file_is_404(
    app: FastAPI, client: AsyncClient, database_url: str, tmp_path: Path
) -> None:
    await make_org(app, "PREF")
    await make_user(app, "agent", "PREF")
    await browse_as(client, "agent")
    missing = write_base_map(tmp_path / "gone.pmtiles")
    missing.unlink()
    request_settings = make_settings(tmp_path, database_url, map_pmtiles=missing)
    app.state.settings = request_settings
    answer = await client.get(BASEMAP_URL, headers={"Range": "bytes=0-126"})
    assert answer.status_code == 404
