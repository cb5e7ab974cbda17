"""The live tests' buses: where the bus matters, a test runs on PostgreSQL's LISTEN/NOTIFY and
on NATS (``live_bus``). The NATS runs need ``nats-server`` and the shared server at
``HYPERVISION_TEST_NATS_URL``; without them they are skipped and say why, unless
``HYPERVISION_TEST_NATS=required`` (CI), which makes their absence an error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.live.natsserver import (
    TEST_NATS_URL,
    NatsServer,
    delete_stream,
    nats_required,
    nats_unavailable_reason,
    unique_subject,
)

BUSES = ("postgres", "nats")

_nats_skip_reason: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _nats_skip_reason
    _nats_skip_reason = nats_unavailable_reason()
    if _nats_skip_reason and nats_required():
        raise pytest.UsageError(f"NATS tests are required (CI) but {_nats_skip_reason}")


@pytest.fixture(params=BUSES)
def live_bus(request: pytest.FixtureRequest) -> str:
    """The bus under test: "postgres" (LISTEN/NOTIFY) or "nats"."""
    bus = str(request.param)
    if bus == "nats" and _nats_skip_reason:
        pytest.skip(f"NATS tests SKIPPED: {_nats_skip_reason}")
    return bus


@pytest.fixture
async def bus_settings(live_bus: str) -> AsyncIterator[dict[str, str]]:
    """The settings that select ``live_bus``; for NATS, the shared server and a subject of
    this test's own (its stream is deleted afterwards)."""
    if live_bus == "postgres":
        yield {"live_bus": "postgres"}
        return
    subject = unique_subject()
    yield {"live_bus": "nats", "nats_url": TEST_NATS_URL, "nats_subject": subject}
    await delete_stream(TEST_NATS_URL, subject)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A NATS server of the test's own, on a free port, not started yet; stopped after."""
    if _nats_skip_reason:
        pytest.skip(f"NATS tests SKIPPED: {_nats_skip_reason}")
    server = NatsServer(tmp_path / "nats")
    try:
        yield server
    finally:
        server.close()
