"""The addok tests' Redis (ADR 0030): the machine's server at ``HYPERVISION_TEST_REDIS_URL``
(default redis://127.0.0.1:6379, started by ``.ci/run``), in a database number of their own
per test process (8 + the xdist worker's number), emptied before and after each test.
Without Redis they are skipped and say why, unless ``HYPERVISION_TEST_REDIS=required`` or
``CI`` is set, which makes its absence an error."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

TEST_REDIS_URL = os.environ.get("HYPERVISION_TEST_REDIS_URL", "redis://127.0.0.1:6379")
FIRST_DB = 8  # databases 8 to 15 of the test server; 0 to 7 are left to others
LAST_DB = 15

_UNKNOWN = "?"
_redis_skip_reason: str | None = _UNKNOWN


def redis_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("HYPERVISION_TEST_REDIS") == "required"


def redis_unreachable_reason() -> str | None:
    """Why the addok tests cannot run here, or None."""
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis unreachable at {TEST_REDIS_URL} ({type(exc).__name__}: {exc})"
    return None


def skip_reason() -> str | None:
    """Why the Redis tests are skipped (asked once per test process), or None."""
    global _redis_skip_reason
    if _redis_skip_reason == _UNKNOWN:
        _redis_skip_reason = redis_unreachable_reason()
    return _redis_skip_reason


def own_database_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = FIRST_DB + int(worker.removeprefix("gw") or 0)
    if number > LAST_DB:
        pytest.skip(f"Redis tests SKIPPED: no test database left for xdist worker {worker}")
    return number


@pytest.fixture
def addok_url() -> Iterator[str]:
    """The URL of this test process's own, empty, Redis database (emptied again after)."""
    reason = skip_reason()
    if reason and redis_required():
        pytest.fail(f"Redis (addok) tests are required (CI) but {reason}")
    if reason:
        pytest.skip(f"Redis (addok) tests SKIPPED: {reason}")
    url = f"{TEST_REDIS_URL.rstrip('/')}/{own_database_number()}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()
