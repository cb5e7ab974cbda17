"""addok as the place search engine (ADR 0030), against the real Redis: the import feeds it
(not the places table), the API answers from it in the same shape, a street met again is
merged, and a Redis that does not answer gives a 503 with a French message."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.config import Settings
from hypervision.geo import place_import
from hypervision.geo.place_addok import PlacesUnavailable
from tests.conftest import make_settings, once_across_engines
from tests.factories import ADMIN, make_org, make_user, sign_in, tx
from tests.geo.test_places import GOOD, ban_line, count_places, write
from tests.test_cli import _cli

# Nothing listens on port 1: the connection is refused at once.
DOWN_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, addok_url: str) -> Settings:
    return make_settings(tmp_path, database_url, places_engine="addok", addok_redis=addok_url)


async def import_(app: FastAPI, path: Path, **options: object) -> place_import.ImportReport:
    return await place_import.import_file(
        sessions=app.state.system_sessions,
        actor=ADMIN,
        path=path,
        addok_url=app.state.settings.addok_url,
        **options,  # type: ignore[arg-type]
    )


async def agent(app: FastAPI, client: AsyncClient) -> dict[str, str]:
    await make_org(app, "PREF")
    await make_user(app, "agent", "PREF", clearance="NP")
    return await sign_in(client, "agent")


async def places(client: AsyncClient, headers: dict[str, str], q: str) -> list[dict[str, object]]:
    response = await client.get("/api/v1/places", params={"q": q, "limit": 5}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def import_records(app: FastAPI) -> list[dict[str, object]]:
    async with tx(app) as session:
        rows = await session.scalars(
            select(AuditRecord.detail).where(AuditRecord.action == "places.import")
        )
        return sorted((dict(d) for d in rows), key=lambda d: -int(d["rows"]))


async def test_import_feeds_addok_and_the_api_answers_from_it(
    app: FastAPI, client: AsyncClient, tmp_path: Path, addok_url: str
) -> None:
    report = await import_(app, write(tmp_path / "adresses-93.csv", GOOD), batch=3)
    assert (report.imported, report.error_count) == (4, 0)
    assert await count_places(app) == 0  # addok holds them, not the database
    assert await import_records(app) == [
        {"source": "adresses-93.csv", "rows": 3, "engine": "addok"},
        {"source": "adresses-93.csv", "rows": 1, "engine": "addok"},
    ]
    # One addok document per street (three streets), its numbers inside.
    documents: list[bytes] = list(redis.Redis.from_url(addok_url).scan_iter("d|*"))
    assert sorted(documents) == [b"d|75107_0003", b"d|93066_0001", b"d|93066_0002"]

    headers = await agent(app, client)
    # A street, with a typo: the street itself, at its address found.
    street = (await places(client, headers, "rue du lndy"))[0]
    assert street == {
        "id": "street:93066_0002",
        "name": "Rue du Landy, 93200 Saint-Denis",
        "kind": "street",
        "lon": 2.36,
        "lat": 48.915,
        "score": street["score"],
    }
    # A number: the address, its id and its own position (not the street's middle).
    address = (await places(client, headers, "12 rue jules rimet"))[0]
    assert (address["id"], address["name"], address["kind"]) == (
        "93066_0001_00012",
        "12 Rue Jules Rimet, 93200 Saint-Denis",
        "address",
    )
    assert (address["lon"], address["lat"], address["score"]) == (2.36, 48.924, 1.0)
    # Typing on: addok completes the last word.
    assert (await places(client, headers, "quai bran"))[0]["name"] == "Quai Branly, 75007 Paris"
    # The venues are still searched, and rank among addok's results.
    assert (await places(client, headers, "stade de frnce"))[0]["name"] == "Stade de France"
    assert await places(client, headers, "zzqx wvkj") == []


async def test_a_street_met_again_is_merged_and_renamed(
    app: FastAPI, client: AsyncClient, tmp_path: Path
) -> None:
    await import_(app, write(tmp_path / "a.csv", GOOD))
    later = [
        ban_line("93066_0002_00007", "7", "Rue du Landy", "2.3610", "48.9160"),
        ban_line("75107_0003_00005", "5", "Quai Jacques Chirac", "2.2951", "48.8591", city="Paris"),
    ]
    await import_(app, write(tmp_path / "b.csv", later))
    headers = await agent(app, client)
    # Both numbers of the street are found: the second file added one, removed none.
    three = (await places(client, headers, "3 rue du landy"))[0]
    seven = (await places(client, headers, "7 rue du landy"))[0]
    assert (three["id"], seven["id"]) == ("93066_0002_00003", "93066_0002_00007")
    assert (seven["lon"], seven["lat"]) == (2.361, 48.916)
    # The renamed street: the new name is found, the old one no longer.
    chirac = (await places(client, headers, "5 quai jacques chirac"))[0]
    assert chirac["name"] == "5 Quai Jacques Chirac, 75007 Paris"
    assert not any("Branly" in str(p["name"]) for p in await places(client, headers, "branly"))


@pytest.mark.parametrize("addok_url", [DOWN_URL])
async def test_redis_down_gives_503_and_imports_nothing(
    app: FastAPI, client: AsyncClient, tmp_path: Path
) -> None:
    headers = await agent(app, client)
    response = await client.get("/api/v1/places", params={"q": "rue du landy"}, headers=headers)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json()["error"] == {
        "code": "places_unavailable",
        "message": "Recherche d'adresses momentanément indisponible (moteur addok "
        "injoignable). Placez le point sur la carte ou réessayez dans un instant.",
    }
    english = await client.get(
        "/api/v1/places",
        params={"q": "rue du landy"},
        headers={**headers, "Accept-Language": "en"},
    )
    assert english.json()["error"]["message"].startswith("Address search temporarily")
    # Too short to ask anyone: no engine is asked, nothing fails.
    short = await client.get("/api/v1/places", params={"q": "r"}, headers=headers)
    assert short.status_code == 200 and short.json() == {"items": []}
    with pytest.raises(PlacesUnavailable):
        await import_(app, write(tmp_path / "a.csv", GOOD))
    assert await import_records(app) == []  # the batch's audit record rolled back with it


async def test_command_line_import_into_addok(
    app: FastAPI, database_url: str, tmp_path: Path, addok_url: str
) -> None:
    once_across_engines(database_url)
    path = str(write(tmp_path / "a.csv", GOOD))
    env = {"HYPERVISION_PLACES_ENGINE": "addok", "HYPERVISION_ADDOK_REDIS": addok_url}
    done = _cli(database_url, tmp_path, "places", "import", path, env_extra=env)
    assert done.returncode == 0, done.stderr
    assert "4 adresse(s) importée(s) dans addok, 0 ligne(s) en erreur" in done.stdout
    assert redis.Redis.from_url(addok_url).exists("d|93066_0001") == 1
    env["HYPERVISION_ADDOK_REDIS"] = DOWN_URL
    down = _cli(database_url, tmp_path, "places", "import", path, env_extra=env)
    assert down.returncode == 1
    assert f"erreur : addok injoignable (Redis {DOWN_URL}" in down.stderr
    assert await count_places(app) == 0


def test_the_redis_url_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="redis://, rediss:// or unix://"):
        make_settings(tmp_path, "sqlite+aiosqlite://", addok_redis="http://127.0.0.1:6379")
    embedded = make_settings(tmp_path, "sqlite+aiosqlite://")
    assert (embedded.places_engine, embedded.addok_url) == ("embedded", None)
