"""The application's own metrics, in a registry of its own (docs/adr/0032).

Each application holds one :class:`Metrics` (several apps in one process do not share a
counter). The request middleware counts requests by method, route *template* and status class
and binds the app's metrics to the request's context (:func:`bind`), so that code far from the
app (a sign-in, a data product import) can count without being handed them; outside an app
(the command line, the demo loader) nothing is counted.

No label value ever comes from user data: methods outside a fixed list are ``other``, paths
appear only as the route's template (never the raw path), the other labels are fixed words.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from starlette.routing import Mount
from starlette.types import Scope

from hypervision.core.errors import AppError

P = ParamSpec("P")
T = TypeVar("T")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no route: one label for every unknown path
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
SIGN_IN_REASONS = ("credentials", "otp", "throttled", "network")
IMPORT_OUTCOMES = ("done", "refused", "failed")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
IMPORT_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


class Metrics:
    """The instruments of one application and the registry they live in."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hypervision_http_requests",
            "HTTP requests answered, by method, route template and status class.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hypervision_http_request_duration_seconds",
            "Time from a request's arrival to its response's start, by route template "
            "(a live stream: the time to open it).",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sign_in_failures = Counter(
            "hypervision_sign_in_failures",
            "Sign-ins refused, by reason: credentials (wrong name, password or account "
            "state), otp (wrong second factor), throttled, network (outside the organisation's "
            "networks or without its client certificate).",
            ["reason"],
            registry=self.registry,
        )
        self.imports = Counter(
            "hypervision_product_imports",
            "Data product imports, by outcome: done, refused (answered with an error), "
            "failed (unexpected error).",
            ["outcome"],
            registry=self.registry,
        )
        self.import_seconds = Histogram(
            "hypervision_product_import_duration_seconds",
            "Duration of data product imports (read, checks, write, quality rules).",
            buckets=IMPORT_BUCKETS,
            registry=self.registry,
        )
        for reason in SIGN_IN_REASONS:  # present at 0 from the start: rate() sees the first
            self.sign_in_failures.labels(reason)
        for outcome in IMPORT_OUTCOMES:
            self.imports.labels(outcome)
        ProcessCollector(registry=self.registry)  # CPU, memory, open files (Linux /proc)

    def observe_request(self, scope: Scope, status: int, seconds: float) -> None:
        """One answered request. Called once per request, at its response's start (or at
        its end when no response started): a live stream is counted when it opens."""
        route = route_label(scope)
        method = scope.get("method", "")
        self.requests.labels(
            method if method in METHODS else "other",
            route,
            STATUS_CLASSES[min(max(status // 100, 1), 5) - 1],
        ).inc()
        self.latency.labels(route).observe(seconds)


def route_label(scope: Scope) -> str:
    """The template of the route that answered (``/api/v1/entries/{entry_id}``), never the
    raw path: ids would make a series each."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    if isinstance(route, Mount):  # the static files
        return f"{path}/{{path}}"
    return path


_current: ContextVar[Metrics | None] = ContextVar("hypervision_metrics", default=None)


def bind(metrics: Metrics) -> Token[Metrics | None]:
    """Make ``metrics`` the current app's for this context (reset with the token)."""
    return _current.set(metrics)


def unbind(token: Token[Metrics | None]) -> None:
    _current.reset(token)


def current() -> Metrics | None:
    return _current.get()


def sign_in_failed(reason: str) -> None:
    """A refused sign-in, by reason class (one of ``SIGN_IN_REASONS``; never a name)."""
    metrics = _current.get()
    if metrics is not None:
        metrics.sign_in_failures.labels(reason if reason in SIGN_IN_REASONS else "other").inc()


@contextmanager
def timed_import(metrics: Metrics | None) -> Iterator[None]:
    begun = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "done"
    except AppError:
        outcome = "refused"
        raise
    finally:
        if metrics is not None:
            metrics.imports.labels(outcome).inc()
            metrics.import_seconds.observe(time.perf_counter() - begun)


def metered_import(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Count an import function's calls by outcome and time them (the current app's
    metrics; nothing outside an app)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with timed_import(_current.get()):
            return await fn(*args, **kwargs)

    return wrapper
