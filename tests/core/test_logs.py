"""Log hygiene: one JSON record per event; no query string in the access log."""

from __future__ import annotations

import json
import logging

import pytest
from httpx import AsyncClient

from hypervision.core.logs import JsonFormatter


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
