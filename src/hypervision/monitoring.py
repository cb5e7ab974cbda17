"""``GET /metrics``: the Prometheus text format, for the monitoring network only (ADR 0032).

Answers only to clients whose address lies in ``metrics_allow``: the address the application
already uses for everything else (the socket's peer, or ``X-Forwarded-For`` when the peer is a
proxy listed in ``forwarded_allow_ips``, as decided by the server; no header is read here).
Anyone else gets the very 404 of a path that does not exist. Not in the OpenAPI schema, no
session needed, not audited: no label or value carries user data (core.metrics).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException

from hypervision.audit.sequencer import Sequencer, queue_depth
from hypervision.config import Settings
from hypervision.live.hub import Hub

router = APIRouter(include_in_schema=False)
# The classic text format (what every Prometheus reads; our names need no UTF-8 escaping).
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


class Figures(Collector):
    """What the live hub and the audit sequencer know, read at each scrape (no query but the
    audit queue's indexed count, made by the route before the figures are written)."""

    def __init__(self, hub: Hub, sequencer: Sequencer) -> None:
        self.hub = hub
        self.sequencer = sequencer
        self.audit_depth: int | None = None  # None: the database did not answer in time

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        hub = self.hub
        yield GaugeMetricFamily(
            "hypervision_live_streams_open", "Live streams (SSE) open on this process.",
            value=len(hub.subscribers),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "hypervision_live_hub_running", "1 when this process's live hub runs.",
            value=1 if hub.started else 0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "hypervision_live_hub_lag_seconds",
            "How long committed events the hub was told of have waited undelivered (0: caught up).",
            value=hub.lag_seconds(),
        )
        deliveries = CounterMetricFamily(
            "hypervision_live_deliveries",
            "Events queued to live streams: live (as committed) or replay (to a resuming stream).",
            labels=["path"],
        )
        deliveries.add_metric(["live"], hub.delivered)
        deliveries.add_metric(["replay"], hub.replayed)
        yield deliveries
        reads = CounterMetricFamily(
            "hypervision_live_outbox_reads",
            "The hub's reads of the outbox: settled, or held (committed events waited behind "
            "an older transaction still running, ADR 0018).",
            labels=["result"],
        )
        for result, count in hub.reads.items():
            reads.add_metric([result], count)
        yield reads
        yield CounterMetricFamily(
            "hypervision_audit_sequenced", "Audit records chained by this process.",
            value=self.sequencer.sequenced,
        )  # fmt: skip
        if self.audit_depth is not None:
            yield GaugeMetricFamily(
                "hypervision_audit_queue_depth",
                "Audit records appended but not yet chained (every replica's).",
                value=self.audit_depth,
            )


def allowed(address: str | None, settings: Settings) -> bool:
    """Whether the client's address lies in one of the monitoring networks."""
    if not address or not settings.metrics_allow:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # not an address (a Unix socket, a test client's name)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in settings.metrics_networks)


_counts: set[asyncio.Task[int]] = set()  # abandoned counts still finishing


async def _depth(request: Request) -> int:
    async with request.app.state.system_sessions() as session:
        return await queue_depth(session)


async def _audit_depth(request: Request) -> int | None:
    """The audit queue's depth, or None when the database does not answer within the
    readiness time-out (the count is abandoned then, not awaited, like ``/readyz``'s probe)."""
    count = asyncio.ensure_future(_depth(request))
    _counts.add(count)
    count.add_done_callback(_forget)
    await asyncio.wait({count}, timeout=request.app.state.settings.readiness_timeout_seconds)
    if not count.done() or count.cancelled() or count.exception() is not None:
        return None
    return count.result()


def _forget(task: asyncio.Task[int]) -> None:
    _counts.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned count's failure is not "never retrieved"


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """The metrics of this process, for the monitoring network."""
    client = request.client.host if request.client else None
    if not allowed(client, request.app.state.settings):
        raise HTTPException(status_code=404)  # as for any unknown path
    figures: Figures = request.app.state.figures
    figures.audit_depth = await _audit_depth(request)
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=TEXT_FORMAT)
