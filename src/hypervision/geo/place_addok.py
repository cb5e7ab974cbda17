"""addok, the national address base's own search engine, as the place search engine for a
whole-country file (``HYPERVISION_PLACES_ENGINE=addok``, ADR 0030).

addok runs as a library in this process, against the Redis database of
``HYPERVISION_ADDOK_REDIS``: the import indexes through it and the search asks it, so both
use one addok configuration by construction (an index built with other text processors than
the search's answers nothing, silently). addok is synchronous (redis-py, blocking sockets):
every call runs in a worker thread, with socket time-outs, and a Redis that does not answer
becomes ``PlacesUnavailable`` (503) instead of a hung request.

One addok document per street (its id: the address base's ``commune_street``), its house
numbers inside (addok's own model for the base): "rue du landy" finds the street, "12 rue du
landy" the address. A street met again (in a later batch or a later file) is merged with
what Redis holds: numbers are added or updated, never removed, like the embedded table.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import anyio
import redis

from hypervision.core.errors import AppError
from hypervision.geo.addresses import PlaceRow, address_name, search_form

logger = logging.getLogger(__name__)

# A Redis that accepts no connection fails fast; one that stops answering mid-query fails
# within the socket time-out, not the client's patience.
CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 5.0


class PlacesUnavailable(AppError):
    status, code = 503, "places_unavailable"
    fr = (
        "Recherche d'adresses momentanément indisponible (moteur addok injoignable). "
        "Placez le point sur la carte ou réessayez dans un instant."
    )
    en = (
        "Address search temporarily unavailable (the addok engine is unreachable). "
        "Place the point on the map or try again in a moment."
    )

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "30"})


class Found(NamedTuple):
    id: str
    name: str
    kind: Literal["street", "address"]
    lon: float
    lat: float


_lock = threading.Lock()
_connected: str | None = None


def _connect(url: str) -> None:
    """Load addok's configuration (once per process: it is global to addok) and point its two
    Redis clients, the index and the document store, at ``url``'s database. addok's own
    settings still apply (``ADDOK_CONFIG_MODULE``, ``ADDOK_*`` variables, installed addok
    plugins), except the Redis server, which is ours."""
    global _connected
    with _lock:
        if _connected == url:
            return
        from addok import db, ds
        from addok.config import config
        from addok.helpers import scripts

        if not config.loaded:
            chatter = io.StringIO()  # addok prints what it loaded; keep it out of our output
            with contextlib.redirect_stdout(chatter):
                config.load()
            logger.info("addok configuration loaded: %s", " ".join(chatter.getvalue().split()))
        options: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        }
        db.DB.instance = redis.Redis.from_url(url, **options)
        ds._DB.instance = redis.Redis.from_url(url, **options)  # documents: same database
        scripts.load_scripts()  # addok's Lua scripts are bound to the client they were made on
        _connected = url


def street_key(row: PlaceRow) -> str:
    """The street's id: the address base's ``commune_street`` (its ids are
    ``commune_street_number[_suffix]``), else the town code and the folded street name."""
    parts = row.id.split("_")
    if len(parts) >= 3:
        return "_".join(parts[:2])
    return f"{row.citycode}_{search_form(row.street).replace(' ', '-')}"


def _stored_numbers(stored: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The house numbers of a stored document, keyed by their text again (addok keys them by
    their tokens and keeps the text as ``raw``)."""
    numbers: dict[str, dict[str, Any]] = {}
    for data in ((stored or {}).get("housenumbers") or {}).values():
        raw = str(data.get("raw", ""))
        if raw:
            numbers[raw] = {k: v for k, v in data.items() if k != "raw"}
    return numbers


def _documents(rows: Sequence[PlaceRow]) -> list[dict[str, Any]]:
    from addok.ds import get_document
    from addok.helpers.keys import document_key

    streets: dict[str, list[PlaceRow]] = {}
    for row in rows:
        streets.setdefault(street_key(row), []).append(row)
    documents = []
    for key, members in streets.items():
        numbers = _stored_numbers(get_document(document_key(key)))
        for row in members:
            if row.housenumber:
                numbers[row.housenumber] = {"lat": row.lat, "lon": row.lon, "id": row.id}
        points = sorted((n["lat"], n["lon"], n["id"]) for n in numbers.values())
        last = members[-1]
        lat, lon = (points[len(points) // 2][:2]) if points else (last.lat, last.lon)
        documents.append(
            {
                "_id": key,
                "_action": "update",  # addok removes the stored document's tokens first
                "type": "street",
                "name": last.street,
                "postcode": last.postcode,
                "citycode": last.citycode,
                "city": last.city,
                "lat": lat,
                "lon": lon,
                "housenumbers": numbers,
            }
        )
    return documents


def _index(url: str, rows: Sequence[PlaceRow]) -> int:
    _connect(url)
    from addok.batch import process_documents

    documents = _documents(rows)
    process_documents(*(json.dumps(d) for d in documents))
    return len(documents)


def _found(result: Any) -> Found:
    number = str(result.housenumber or "")
    street = str(result.name or "")
    postcode, city = str(result.postcode or ""), str(result.city or "")
    name = address_name(number, street, postcode, city) if street else str(result)
    lon, lat = float(result.lon), float(result.lat)
    if number:  # addok matched a house number: its id, its position
        return Found(str(result.id or result._id), name, "address", lon, lat)
    return Found(f"street:{result._id}", name, "street", lon, lat)


def _search(url: str, query: str, limit: int) -> list[Found]:
    _connect(url)
    from addok.core import search

    return [_found(r) for r in search(query, limit=limit, autocomplete=True)]


async def index_places(*, url: str, rows: Sequence[PlaceRow]) -> int:
    """Index a batch of rows into addok; the number of street documents written."""
    try:
        return await anyio.to_thread.run_sync(_index, url, rows)
    except redis.RedisError as exc:
        raise PlacesUnavailable from exc
    except ValueError as exc:  # addok wraps a failed index write in a ValueError
        if isinstance(exc.__cause__ or exc.__context__, redis.RedisError):
            raise PlacesUnavailable from exc
        raise


async def search(*, url: str, query: str, limit: int) -> list[Found]:
    """addok's best ``limit`` results for ``query``, in its order."""
    try:
        return await anyio.to_thread.run_sync(_search, url, query, limit)
    except redis.RedisError as exc:
        logger.warning("addok search failed: %s", type(exc).__name__)
        raise PlacesUnavailable from exc
