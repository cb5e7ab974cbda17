"""The geo tests' fixtures: the addok tests' Redis (``tests/addok_redis.py``), whose absence
is an error when CI or ``HYPERVISION_TEST_REDIS=required`` is set."""

from __future__ import annotations

import pytest

from tests.addok_redis import addok_url, redis_required, skip_reason

__all__ = ["addok_url"]


def pytest_configure(config: pytest.Config) -> None:
    reason = skip_reason()
    if reason and redis_required():
        raise pytest.UsageError(f"Redis (addok) tests are required (CI) but {reason}")
