"""Importing an address file in the national address base's CSV format (Base Adresse
Nationale, "adresses-XX.csv": ``;``-separated, one header line, UTF-8) into ``places``.

The file is read as a stream, a line at a time, and written in batches: a department's file
(hundreds of thousands of lines) never sits in memory. Every row is an upsert by the base's
own ``id``, so importing the same file again (or a newer one) updates rows, never duplicates
them. A bad row (missing column, no street, coordinates that are not numbers or lie outside
the world) is reported with its line number and skipped; the caller decides whether the
import goes on or stops (``hypervision places import --strict``).

On SQLite the FTS5 trigram table ``places_fts`` (migration 0013) is kept in step here, in the
batch's transaction; on PostgreSQL the ``pg_trgm`` index follows the table by itself. With
addok as the engine (ADR 0030) the job (``geo.place_import``) sends them to addok instead.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, delete, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from hypervision.audit import service as audit
from hypervision.core.text import fold
from hypervision.db import utcnow
from hypervision.geo.place_models import Place
from hypervision.identity.principal import Principal

# The columns this import reads; the others of the format (id_fantoir, x, y, alias, …) are
# accepted and ignored. Columns are found by name, not position.
REQUIRED = (
    "id",
    "numero",
    "rep",
    "nom_voie",
    "code_postal",
    "code_insee",
    "nom_commune",
    "lon",
    "lat",
)
BAN_HEADER = [
    *("id", "id_fantoir", "numero", "rep", "nom_voie", "code_postal", "code_insee"),
    *("nom_commune", "code_insee_ancienne_commune", "nom_ancienne_commune", "x", "y"),
    *("lon", "lat", "type_position", "alias", "nom_ld", "libelle_acheminement", "nom_afnor"),
    *("source_position", "source_nom_voie", "certification_commune", "cad_parcelles"),
]
BATCH = 2000
MAX_FIELD = 200

_PUNCTUATION = re.compile(r"[^\w]+|_")
_ROWID_MASK = (1 << 63) - 1

# Created by the migration (SQLite only), not by ``Base.metadata``.
places_fts = Table(
    "places_fts",
    MetaData(),
    Column("rowid", Integer),
    Column("place_id", String),
    Column("search_text", Text),
)


class FileError(Exception):
    """The file as a whole cannot be read as an address file (no header, wrong columns)."""

    def __init__(self, fr: str) -> None:
        self.fr = fr
        super().__init__(fr)


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str  # French, for the operator

    def __str__(self) -> str:
        return f"ligne {self.line} : {self.reason}"


@dataclass(frozen=True)
class PlaceRow:
    line: int
    id: str
    housenumber: str
    street: str
    postcode: str
    citycode: str
    city: str
    lon: float
    lat: float

    @property
    def name(self) -> str:
        return address_name(self.housenumber, self.street, self.postcode, self.city)


def address_name(housenumber: str, street: str, postcode: str, city: str) -> str:
    """ "12 bis Rue Jules Rimet, 93200 Saint-Denis" (what officers read and pick)."""
    head = f"{housenumber} {street}" if housenumber else street
    tail = " ".join(p for p in (postcode, city) if p)
    return f"{head}, {tail}" if tail else head


def search_form(text: str) -> str:
    """What is indexed and asked: folded, punctuation and hyphens as single spaces
    ("Saint-Denis" and "saint denis" are the same)."""
    return " ".join(_PUNCTUATION.sub(" ", fold(text)).split())


def rowid_of(place_id: str) -> int:
    """A stable FTS5 rowid for a place id (a rewrite is a rowid lookup, not a scan)."""
    digest = hashlib.blake2b(place_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _ROWID_MASK


def open_text(path: Path) -> TextIO:
    """The file as text, decompressed when it ends in ``.gz`` (as the base distributes it);
    a UTF-8 byte order mark is skipped."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _coordinate(raw: str, name: str, bound: float) -> float | str:
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        return f"{name} « {raw[:40]} » n'est pas un nombre"
    if not math.isfinite(value) or abs(value) > bound:
        return f"{name} {raw[:40]} hors des bornes (±{bound:g})"
    return value


def _row(line: int, fields: dict[str, str]) -> PlaceRow | RowError:
    place_id = fields["id"].strip()
    street = fields["nom_voie"].strip()
    if not place_id:
        return RowError(line, "identifiant (colonne id) vide")
    if len(place_id) > 64:
        return RowError(line, "identifiant (colonne id) de plus de 64 caractères")
    if not street:
        return RowError(line, "nom de voie (colonne nom_voie) vide")
    too_long = [name for name in REQUIRED if len(fields[name]) > MAX_FIELD]
    if too_long:
        return RowError(line, f"colonne {too_long[0]} de plus de {MAX_FIELD} caractères")
    lon = _coordinate(fields["lon"].strip(), "longitude", 180)
    lat = _coordinate(fields["lat"].strip(), "latitude", 90)
    for value in (lon, lat):
        if isinstance(value, str):
            return RowError(line, value)
    assert isinstance(lon, float) and isinstance(lat, float)
    number = " ".join(p for p in (fields["numero"].strip(), fields["rep"].strip()) if p)
    return PlaceRow(
        line=line,
        id=place_id,
        housenumber=number[:24],
        street=street,
        postcode=fields["code_postal"].strip()[:10],
        citycode=fields["code_insee"].strip()[:10],
        city=fields["nom_commune"].strip()[:120],
        lon=lon,
        lat=lat,
    )


def parse(lines: Iterable[str]) -> Iterator[PlaceRow | RowError]:
    """The rows of an address file, one at a time, each a place or the reason it is not one.
    Line numbers count the header as line 1. Raises ``FileError`` when the header lacks a
    column this import needs."""
    reader = csv.reader(lines, delimiter=";", quotechar='"', strict=True)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise FileError("fichier vide : la ligne d'en-tête manque") from None
    except csv.Error as exc:
        raise FileError(f"ligne 1 : en-tête illisible ({exc})") from None
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise FileError(
            "ce n'est pas un fichier de la Base Adresse Nationale (séparateur « ; ») : "
            f"colonne(s) {', '.join(missing)} absente(s) de l'en-tête"
        )
    position = {name: header.index(name) for name in REQUIRED}
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(line, f"ligne mal formée ({exc})")
            continue
        line = reader.line_num
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            yield RowError(line, f"{len(values)} colonnes au lieu de {len(header)}")
            continue
        yield _row(line, {name: values[i] for name, i in position.items()})


async def upsert_places(
    *, session: AsyncSession, actor: Principal, rows: Sequence[PlaceRow], source: str
) -> None:
    """Insert or update a batch of places by id, in the caller's transaction, with the audit
    record of the batch (ids only). Rows repeated in the batch: the last one wins."""
    latest = {row.id: row for row in rows}
    if not latest:
        return
    now = utcnow()
    values = [
        {
            "id": row.id,
            "name": row.name[:300],
            "housenumber": row.housenumber,
            "street": row.street,
            "postcode": row.postcode,
            "citycode": row.citycode,
            "city": row.city,
            "lon": row.lon,
            "lat": row.lat,
            "search_text": search_form(row.name),
            "source": source[:120],
            "updated_at": now,
        }
        for row in latest.values()
    ]
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = (postgresql.insert(Place) if postgres else sqlite.insert(Place)).values(values)
    updated = {name: statement.excluded[name] for name in values[0] if name != "id"}
    await session.execute(statement.on_conflict_do_update(index_elements=["id"], set_=updated))
    if not postgres:
        rowids = [rowid_of(place_id) for place_id in latest]
        await session.execute(delete(places_fts).where(places_fts.c.rowid.in_(rowids)))
        await session.execute(
            insert(places_fts),
            [
                {"rowid": rowid_of(row.id), "place_id": row.id, "search_text": v["search_text"]}
                for row, v in zip(latest.values(), values, strict=True)
            ],
        )
    await record_import(session=session, actor=actor, source=source, rows=len(values))


async def record_import(
    *, session: AsyncSession, actor: Principal, source: str, rows: int, engine: str = "embedded"
) -> None:
    """The audit record of a batch imported: the file's name and the number of rows."""
    detail: dict[str, str | int] = {"source": source[:120], "rows": rows}
    if engine != "embedded":
        detail["engine"] = engine
    await audit.record(
        session=session,
        actor=actor,
        action="places.import",
        surface=actor.surface,
        resource_type="place",
        detail=detail,
    )
