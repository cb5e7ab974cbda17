"""Log hygiene: one JSON record per event; no query string in the access log."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.core.logs import MAX_MESSAGE, JsonFormatter, log_config
from tests.factories import ENTRY, officer


def test_hostile_messages_stay_one_json_line() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, 'a\r\nb \x1b[31m"}{', None, None)
    line = JsonFormatter().format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert json.loads(line)["message"] == 'a\r\nb \x1b[31m"}{'


async def test_access_log_leaves_out_the_query(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hypervision.access"):
        await client.get("/api/v1/search?q=secret-words", headers={"Authorization": "Bearer x"})
    lines = [r.getMessage() for r in caplog.records if r.name == "hypervision.access"]
    assert lines and lines[0].startswith("GET /api/v1/search 401")
    assert all("secret-words" not in r.getMessage() for r in caplog.records)


# --- hostile input, end to end -----------------------------------------------------------

HOSTILE = [
    "crlf\r\nINFO forged line\r\n",
    "ansi \x1b[31mred\x1b[0m \x1b]0;title\x07",
    "nul \x00 byte",
    'json "}, {"level": "error", "message": "forged\\',
    "long " + "A" * 20_000,
]


def _json_lines(records: list[logging.LogRecord]) -> list[dict[str, object]]:
    """Each record formatted as the servers write it: one line, valid JSON, ASCII only."""
    parsed = []
    for record in records:
        line = JsonFormatter().format(record)
        assert "\n" not in line and "\r" not in line, line[:200]
        assert line.isascii() and line.isprintable(), line[:200]
        data = json.loads(line)
        assert isinstance(data, dict) and {"time", "level", "logger", "message"} <= data.keys()
        parsed.append(data)
    return parsed


@pytest.mark.parametrize("value", HOSTILE, ids=["crlf", "ansi", "nul", "json", "long"])
async def test_hostile_request_gives_one_json_access_record(
    app: FastAPI, client: AsyncClient, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    headers = await officer(app, client, "alice", "PP")
    wire = value.replace("\x00", "").encode("latin-1", "replace").decode("latin-1")
    header_safe = "".join(c for c in wire if c.isprintable())[:8000]
    path = "/api/v1/entries/" + quote(value, safe="")
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        await client.get(
            path,
            params={"q": value},
            headers={**headers, "User-Agent": header_safe, "X-Request-ID": header_safe},
        )
        response = await client.post(
            "/api/v1/entries", json={**ENTRY, "title": value[:200], "body": value}, headers=headers
        )
    assert response.status_code in (201, 422), response.text
    access = [r for r in caplog.records if r.name == "hypervision.access"]
    assert len(access) == 2  # one record per request, whatever it holds
    for data in _json_lines(caplog.records):
        message = str(data["message"])
        assert len(message) <= MAX_MESSAGE and message.isprintable(), message[:200]
        assert not message.startswith(("INFO forged", '", "level"')), message
    assert response.headers["x-request-id"] != header_safe or len(header_safe) <= 64


def test_formatter_survives_bad_arguments_and_huge_messages() -> None:
    broken = logging.LogRecord("t", logging.INFO, __file__, 1, "%s and %s", ("one",), None)
    data = json.loads(JsonFormatter().format(broken))
    assert "%s and %s" in data["message"]
    huge = logging.LogRecord("t", logging.INFO, __file__, 1, "x" * 100_000, None, None)
    line = JsonFormatter().format(huge)
    assert len(line) < 20_000 and json.loads(line)["truncated"] is True
    try:
        raise ValueError("line one\r\nline two \x1b[2J")
    except ValueError:
        exc = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(exc)
    assert "\n" not in line and "\x1b" not in line
    assert "line two" in json.loads(line)["exception"]


# --- no content in application logs ---------------------------------------------------------

MARKERS = {
    "title": "Zephyrin-quokka-titre-7731",
    "body": "Corps-ultra-secret-wombat-5519",
    "comment": "Commentaire-confidentiel-ocelot-2208",
    "filename": "rapport-pangolin-4410.txt",
    "file": "contenu-du-fichier-axolotl-9902",
}


async def test_entry_content_never_reaches_the_logs(
    app: FastAPI, client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    headers = await officer(app, client, "alice", "PP")
    with caplog.at_level(logging.DEBUG), quiet_libraries():
        created = await client.post(
            "/api/v1/entries",
            json={**ENTRY, "title": MARKERS["title"], "body": MARKERS["body"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        url = created.headers["location"]
        assert (await client.get(url, headers=headers)).status_code == 200
        assert (await client.get("/api/v1/entries", headers=headers)).status_code == 200
        found = await client.get("/api/v1/search", params={"q": MARKERS["title"]}, headers=headers)
        assert found.status_code == 200 and MARKERS["title"] in found.text
        comment = await client.post(
            f"{url}/comments", json={"body": MARKERS["comment"]}, headers=headers
        )
        assert comment.status_code == 201, comment.text
        assert (await client.get(f"{url}/comments", headers=headers)).status_code == 200
        upload = await client.post(
            f"{url}/attachments",
            files={"file": (MARKERS["filename"], MARKERS["file"].encode(), "text/plain")},
            headers=headers,
        )
        assert upload.status_code == 201, upload.text
        assert (await client.get(f"{url}/attachments", headers=headers)).status_code == 200
        download = await client.get(upload.headers["location"], headers=headers)
        assert download.status_code == 200
    assert any(r.name == "hypervision.access" for r in caplog.records)
    for record in caplog.records:
        text = JsonFormatter().format(record)
        for what, marker in MARKERS.items():
            assert marker not in text, f"{what} in a log record of {record.name}: {text[:300]}"


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """The library log levels that ``log_config`` sets in production, for the test's span."""
    loggers = log_config("DEBUG")["loggers"]
    saved = {name: logging.getLogger(name).level for name in loggers}
    try:
        for name, config in loggers.items():
            logging.getLogger(name).setLevel(config["level"])
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
