"""The address gazetteer: importing national address base files (streamed, re-importable, bad
rows reported by line) and the typo-tolerant search, on both engines."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.audit.models import AuditRecord
from hypervision.demo import addresses as demo
from hypervision.geo import place_import
from hypervision.geo.addresses import BAN_HEADER, FileError, PlaceRow, RowError, parse
from hypervision.geo.place_models import Place
from hypervision.geo.place_search import search_places
from tests.conftest import once_across_engines
from tests.factories import ADMIN, make_org, make_user, sign_in, tx
from tests.queries import count_queries
from tests.test_cli import _cli

HEADER = ";".join(BAN_HEADER)


def ban_line(
    place_id: str, number: str, street: str, lon: str, lat: str, *, city: str = "Saint-Denis"
) -> str:
    values = dict.fromkeys(BAN_HEADER, "")
    values.update(
        id=place_id,
        numero=number,
        nom_voie=street,
        code_postal="93200" if city == "Saint-Denis" else "75007",
        code_insee="93066" if city == "Saint-Denis" else "75107",
        nom_commune=city,
        lon=lon,
        lat=lat,
    )
    return ";".join(values[name] for name in BAN_HEADER)


GOOD = [
    ban_line("93066_0001_00001", "1", "Rue Jules Rimet", "2.3588", "48.9231"),
    ban_line("93066_0001_00012", "12", "Rue Jules Rimet", "2.3600", "48.9240"),
    ban_line("93066_0002_00003", "3", "Rue du Landy", "2.3600", "48.9150"),
    ban_line("75107_0003_00005", "5", "Quai Branly", "2.2950", "48.8590", city="Paris"),
]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


async def import_(app: FastAPI, path: Path, **options: object) -> place_import.ImportReport:
    return await place_import.import_file(
        sessions=app.state.system_sessions,
        actor=ADMIN,
        path=path,
        **options,  # type: ignore[arg-type]
    )


async def count_places(app: FastAPI) -> int:
    async with tx(app) as session:
        return int(await session.scalar(select(func.count()).select_from(Place)) or 0)


async def labels_for(app: FastAPI, query: str, limit: int = 5) -> list[str]:
    async with tx(app) as session:
        return [h.name for h in await search_places(session=session, query=query, limit=limit)]


async def test_import_then_search_tolerates_typos(app: FastAPI, tmp_path: Path) -> None:
    report = await import_(app, write(tmp_path / "adresses-93.csv", GOOD))
    assert (report.imported, report.error_count) == (4, 0)
    assert await count_places(app) == 4
    # A missing letter, a hyphen: "sait-denis" finds the addresses of Saint-Denis.
    found = await labels_for(app, "sait-denis")
    assert found and all(label.endswith("93200 Saint-Denis") for label in found)
    assert "5 Quai Branly, 75007 Paris" not in found
    # The number counts: the exact address comes first, despite the typo in the street.
    assert (await labels_for(app, "12 rue jules rimt"))[
        0
    ] == "12 Rue Jules Rimet, 93200 Saint-Denis"
    # Without a number: one hit per street, not a list of its house numbers.
    assert await labels_for(app, "rue jules rimet") == ["Rue Jules Rimet, 93200 Saint-Denis"]
    assert (await labels_for(app, "quai branli"))[0] == "Quai Branly, 75007 Paris"
    # The venues are searched too, without any import.
    assert (await labels_for(app, "stade de frnce"))[0] == "Stade de France"
    assert await labels_for(app, "zzqx wvkj") == []


async def test_reimport_updates_rows_by_id(app: FastAPI, tmp_path: Path) -> None:
    await import_(app, write(tmp_path / "a.csv", GOOD))
    renamed = [
        *GOOD[:3],
        ban_line("75107_0003_00005", "5", "Quai Jacques Chirac", "2.2951", "48.8591", city="Paris"),
    ]
    again = await import_(app, write(tmp_path / "b.csv", renamed))
    assert again.imported == 4
    assert await count_places(app) == 4  # updated, not duplicated
    async with tx(app) as session:
        place = await session.get(Place, "75107_0003_00005")
        assert place is not None
        assert (place.street, place.lon, place.source) == ("Quai Jacques Chirac", 2.2951, "b.csv")
    # The index follows the row: the new name is found, the old one no longer.
    assert (await labels_for(app, "5 quai jacques chirac"))[
        0
    ] == "5 Quai Jacques Chirac, 75007 Paris"
    assert not any("Branly" in label for label in await labels_for(app, "quai branly"))


BAD = [
    GOOD[0],
    ban_line("93066_0009_00001", "1", "", "2.36", "48.92"),  # line 3: no street
    ban_line("93066_0009_00002", "2", "Rue X", "abc", "48.92"),  # line 4: longitude
    ban_line("93066_0009_00003", "3", "Rue X", "2.36", "95"),  # line 5: latitude out of range
    "93066_0009_00004;;4;;Rue X",  # line 6: too few columns
    GOOD[1],
]


async def test_bad_rows_are_reported_by_line_and_skipped(app: FastAPI, tmp_path: Path) -> None:
    report = await import_(app, write(tmp_path / "bad.csv", BAD))
    assert report.imported == 2 and report.error_count == 4 and report.stopped is None
    assert [(e.line, e.reason) for e in report.errors] == [
        (3, "nom de voie (colonne nom_voie) vide"),
        (4, "longitude « abc » n'est pas un nombre"),
        (5, "latitude 95 hors des bornes (±90)"),
        (6, f"5 colonnes au lieu de {len(BAN_HEADER)}"),
    ]
    assert await count_places(app) == 2


async def test_strict_import_stops_at_the_first_bad_row(app: FastAPI, tmp_path: Path) -> None:
    report = await import_(app, write(tmp_path / "bad.csv", BAD), strict=True, batch=1)
    assert report.stopped is not None and report.stopped.line == 3
    assert report.error_count == 1
    # Batches committed before the bad row stay (a re-import after the fix updates them).
    assert report.imported == 1 and await count_places(app) == 1


async def test_import_is_streamed_in_audited_batches(app: FastAPI, tmp_path: Path) -> None:
    path = tmp_path / "adresses-93.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:  # the base ships gzipped files
        handle.write("\n".join([HEADER, *GOOD, GOOD[0]]) + "\n")
    report = await import_(app, path, batch=2)
    assert report.imported == 5 and await count_places(app) == 4
    async with tx(app) as session:
        batches = await session.scalars(
            select(AuditRecord.detail).where(AuditRecord.action == "places.import")
        )
        assert [d["rows"] for d in batches] == [2, 2, 1]


def test_parse_reads_one_line_at_a_time() -> None:
    def lines() -> Iterator[str]:
        yield HEADER + "\n"
        yield GOOD[0] + "\n"
        raise AssertionError("read past the first row before it was asked for")

    first = next(parse(lines()))
    assert isinstance(first, PlaceRow) and first.id == "93066_0001_00001"
    assert first.name == "1 Rue Jules Rimet, 93200 Saint-Denis"


def test_a_file_of_another_format_is_refused() -> None:
    with pytest.raises(FileError, match="colonne\\(s\\) id, numero"):
        next(parse(["id,numero,nom_voie\n", "1,2,Rue X\n"]))
    with pytest.raises(FileError, match="fichier vide"):
        next(parse([]))
    quoted = list(parse([HEADER + "\n", '"93066_1;x\n']))
    assert isinstance(quoted[0], RowError) and quoted[0].line == 2


def test_the_demo_file_is_the_generator_output() -> None:
    assert demo.DEMO_FILE.read_text(encoding="utf-8") == demo.render()
    with demo.DEMO_FILE.open(encoding="utf-8") as handle:
        rows = list(parse(handle))
    assert len(rows) > 300 and all(isinstance(r, PlaceRow) for r in rows)


async def test_places_api_needs_sign_in_and_finds_addresses(
    app: FastAPI, client: AsyncClient, tmp_path: Path
) -> None:
    await import_(app, write(tmp_path / "a.csv", GOOD))
    assert (await client.get("/api/v1/places", params={"q": "landy"})).status_code == 401
    await make_org(app, "PREF")
    await make_user(app, "agent", "PREF", clearance="NP")
    headers = await sign_in(client, "agent")
    response = await client.get(
        "/api/v1/places", params={"q": "rue du lndy", "limit": 3}, headers=headers
    )
    assert response.status_code == 200, response.text
    first = response.json()["items"][0]
    assert first["name"] == "Rue du Landy, 93200 Saint-Denis" and first["kind"] == "street"
    assert (first["lon"], first["lat"]) == (2.36, 48.915)
    too_long = await client.get("/api/v1/places", params={"q": "x" * 121}, headers=headers)
    assert too_long.status_code == 422


async def test_command_line_import_exit_codes(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    once_across_engines(database_url)
    good = _cli(database_url, tmp_path, "places", "import", str(write(tmp_path / "a.csv", GOOD)))
    assert good.returncode == 0, good.stderr
    assert "4 adresse(s) importée(s), 0 ligne(s) en erreur" in good.stdout
    bad_file = write(tmp_path / "bad.csv", BAD)
    skipped = _cli(database_url, tmp_path, "places", "import", str(bad_file))
    assert skipped.returncode == 2
    assert "bad.csv: ligne 4 : longitude « abc » n'est pas un nombre" in skipped.stderr
    stopped = _cli(database_url, tmp_path, "places", "import", "--strict", str(bad_file))
    assert stopped.returncode == 1 and "import arrêté à la ligne 3" in stopped.stderr
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    refused = _cli(database_url, tmp_path, "places", "import", str(other))
    assert refused.returncode == 1 and "Base Adresse Nationale" in refused.stderr
    assert await count_places(app) == 4


async def test_place_search_runs_a_bounded_number_of_queries(
    app: FastAPI, client: AsyncClient, tmp_path: Path
) -> None:
    await import_(app, write(tmp_path / "a.csv", GOOD))
    await make_org(app, "PREF")
    await make_user(app, "agent", "PREF", clearance="NP")
    headers = await sign_in(client, "agent")
    await client.get("/api/v1/places", params={"q": "landy"}, headers=headers)  # warm caches

    async def statements_for(query: str) -> int:
        with count_queries(app) as statements:
            response = await client.get("/api/v1/places", params={"q": query}, headers=headers)
        assert response.status_code == 200 and response.json()["items"]
        return len(statements)

    exact = await statements_for("rue jules rimet")
    typo = await statements_for("sait-denis")
    # authentication (2) + one search (SQLite: two, the substrings then the trigrams, when
    # the first finds few); nothing per hit, and no audit record
    assert exact == typo <= 4, (exact, typo)
