"""The public API's rate limit (ADR 0035): a token bucket per client address, in memory, per
replica — public reads must not write to the database at every request, and N replicas allow
at most N times the rate. The address is the one the server resolved (Uvicorn's trusted
proxies, ``forwarded_allow_ips``), as everywhere else."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

MAX_ADDRESSES = 100_000


class TokenBuckets:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, address: str, now: float | None = None) -> int | None:
        """Take one token for ``address``: None when allowed, else the seconds to wait."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.pop(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[address] = (tokens - 1, now)
        while len(self._buckets) > MAX_ADDRESSES:  # the least recently seen go first
            self._buckets.popitem(last=False)
        return None
