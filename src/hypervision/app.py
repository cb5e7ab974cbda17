"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from hypervision import __version__, health, monitoring
from hypervision.alerts import api as alerts_api
from hypervision.alerts import mail as alert_mail
from hypervision.alerts import service as alerts_service
from hypervision.alerts.countries import CountryTable
from hypervision.alerts.evaluator import Evaluator
from hypervision.audit.refusals import audit_refusal
from hypervision.audit.sequencer import Sequencer
from hypervision.config import Settings, get_settings
from hypervision.core import metrics
from hypervision.core.compression import CompressionMiddleware
from hypervision.core.errors import install_handlers
from hypervision.core.middleware import RequestContextMiddleware
from hypervision.core.proxies import TrustedProxies
from hypervision.db import create_engine, session_factory
from hypervision.geo import api as geo_api
from hypervision.geo import places_api, zones
from hypervision.hub import api as hub_api
from hypervision.hub import documents_api as hub_documents_api
from hypervision.identity import api as identity_api
from hypervision.identity import review, review_api
from hypervision.identity.passwords import Passwords
from hypervision.kinds import KINDS
from hypervision.live import api as live_api
from hypervision.live.direct import RAW_SEND
from hypervision.live.hub import Hub
from hypervision.live.opens import OpenAudit
from hypervision.logbook import api as logbook_api
from hypervision.logbook import attachments_api, comments_api, situations_api
from hypervision.opendata import api as opendata_api
from hypervision.opendata import public_api as opendata_public
from hypervision.opendata import schedule as opendata_schedule
from hypervision.opendata.cache import PublicCache
from hypervision.opendata.ratelimit import TokenBuckets
from hypervision.policy import rls
from hypervision.products import api as products_api
from hypervision.products import derived_api, quality_api, quality_schedule, sources, sources_api
from hypervision.reports import api as reports_api
from hypervision.reports import schedules as report_schedules
from hypervision.search import api as search_api
from hypervision.security import api as audit_api
from hypervision.security import console_api
from hypervision.soc.exporter import exporters_from
from hypervision.soc.figures import SocFigures
from hypervision.spaces import api as spaces_api
from hypervision.spaces.cache import ModuleCache
from hypervision.synthesis import api as synthesis_api
from hypervision.synthesis import schedules
from hypervision.web import router as web
from hypervision.web.session import MAX_FILES
from hypervision.web.space_push import SpacePush


class Hypervision(FastAPI):
    """The application: FastAPI, keeping the server's own ``send`` in each HTTP request's
    scope, before any middleware wraps it, for the live streams' frames (live.direct)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[RAW_SEND] = send
        await super().__call__(scope, receive, send)


def drain_on_sigterm(app: FastAPI) -> Callable[[], None]:
    """On SIGTERM (a rolling release, a scale-down), end the live streams at once, then let
    the server stop as it would: it waits for the connections in flight, and the SSE streams
    would otherwise hold it until the orchestrator kills it. Wraps the server's own handler
    (uvicorn's), which stops accepting and finishes the requests in flight; does nothing
    where the server set none (tests, another thread). Returns what undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return lambda: None
    loop = asyncio.get_running_loop()

    def stopping(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(app.state.hub.drain)
        previous(signum, frame)

    signal.signal(signal.SIGTERM, stopping)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is stopping:
            signal.signal(signal.SIGTERM, previous)

    return restore


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_engine(settings, serving=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The background tasks keep the app's metrics (a task copies the context it is
        # created in): the product sources' imports count too.
        bound = metrics.bind(app.state.metrics)
        app.state.hub.start_in_background()  # the database may be down: start anyway
        app.state.sequencer.start()
        app.state.sources.start()
        for exporter in app.state.soc_exporters:  # the trail to the SOC (ADR 0037)
            exporter.start()
        scheduler = reports = None
        if settings.schedule_poll_seconds > 0:
            scheduler = asyncio.create_task(schedules.loop(app.state.system_sessions, settings))
            reports = asyncio.create_task(
                report_schedules.loop(app.state.system_sessions, settings)
            )  # the spaces' scheduled reports (ADR 0045)
        checks = None  # data products' quality rules on schedule (ADR 0027)
        if settings.quality_check_seconds > 0:
            checks = asyncio.create_task(quality_schedule.loop(app.state.system_sessions, settings))
        dormant = None  # dormant accounts disabled (docs/adr/0038)
        if settings.dormant_check_seconds > 0 and settings.dormant_after_days > 0:
            dormant = asyncio.create_task(review.loop(app.state.system_sessions, settings))
        mails = None  # alert e-mails, sent and retried after the passes that queued them
        if settings.alert_mail_poll_seconds > 0 and settings.smtp_host:
            mails = asyncio.create_task(alert_mail.loop(app.state.system_sessions, settings))
        releases = None  # open data's scheduled releases (ADR 0035)
        if settings.opendata_refresh_seconds > 0:
            releases = asyncio.create_task(
                opendata_schedule.loop(app.state.system_sessions, settings)
            )
        metrics.unbind(bound)
        restore = drain_on_sigterm(app)
        yield
        restore()
        if mails is not None:
            mails.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mails
        if dormant is not None:
            dormant.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dormant
        if releases is not None:
            releases.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await releases
        if checks is not None:
            checks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checks
        for task in (scheduler, reports):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await app.state.sources.stop()
        for exporter in app.state.soc_exporters:
            await exporter.stop()
        await app.state.hub.stop()
        await app.state.sequencer.stop()
        await engine.dispose()

    app = Hypervision(
        title="Hypervision",
        version=__version__,
        description="Main courante, carte et synthèses partagées — API.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    # Requests: the identity is bound when the principal is resolved (policy.rls). The
    # server's own work (live hub, schedules, e-mail) runs in the system context.
    app.state.sessions = session_factory(engine)
    app.state.system_sessions = rls.system_sessions(engine, settings)
    app.state.passwords = Passwords(settings)
    # The security_alert topic reaches security officers' streams only (live.hub gates it).
    topics = KINDS.topics() | {alerts_service.TOPIC}
    app.state.hub = Hub(settings, app.state.system_sessions, topics=topics, labels=KINDS)
    app.state.stream_opens = OpenAudit(app.state.system_sessions)
    # Spaces' module results, shared between readers the policy cannot tell apart (ADR 0047).
    app.state.module_cache = ModuleCache()
    # A space's modules pushed through its readers' streams (docs/adr/0052).
    app.state.space_push = SpacePush(settings, app.state.sessions, app.state.module_cache)
    app.state.hub.followers.append(app.state.space_push)
    # Alert rules are evaluated on each batch the sequencer chains (docs/adr/0040).
    app.state.alerts = Evaluator(
        settings.label_levels,
        CountryTable(settings.ip_country_file),
        mail=bool(settings.smtp_host),
    )
    app.state.sequencer = Sequencer(
        app.state.system_sessions, settings.audit_sequence_seconds, after=app.state.alerts.run
    )
    app.state.sources = sources.Poller(app.state.system_sessions, settings)
    app.state.metrics = metrics.Metrics()  # a registry of this app's own (docs/adr/0032)
    app.state.figures = monitoring.Figures(app.state.hub, app.state.sequencer)
    app.state.metrics.registry.register(app.state.figures)
    # Raises SocConfigError (naming the setting) when the SOC export is misconfigured.
    app.state.soc_exporters = exporters_from(settings, app.state.system_sessions)
    app.state.metrics.registry.register(SocFigures(app.state.soc_exporters))
    app.state.stream_gate = asyncio.Semaphore(settings.live_open_concurrency)
    install_handlers(app)
    app.state.audit_refusal = audit_refusal  # refusals are audited (SECURITY.md item 29)
    app.state.zone_area = zones.zone_area  # the entries' ``zone`` filter (geo builds on logbook)
    overhead = 1024 * 1024  # multipart boundaries and the form's other fields
    uploads = settings.attachment_max_bytes * MAX_FILES + overhead
    # Inside the request context (its headers and logs cover compressed answers too); never
    # compresses the live stream (text/event-stream).
    app.add_middleware(CompressionMiddleware)
    # Open data's public answers, cached outside compression and rate limited (ADR 0049).
    app.state.opendata_buckets = TokenBuckets(
        settings.opendata_rate_per_second, settings.opendata_burst
    )
    app.add_middleware(
        PublicCache,
        sessions=app.state.system_sessions,
        settings=settings,
        state=app.state,
        max_bytes=settings.opendata_cache_bytes,
        seconds=settings.opendata_cache_seconds,
        check_seconds=settings.opendata_cache_check_seconds,
    )
    app.add_middleware(
        RequestContextMiddleware,
        img_sources=settings.map_tile_origins,
        metrics=app.state.metrics,
        body_limits=(
            ("/main-courante/nouvelle", uploads),
            ("/attachments", settings.attachment_max_bytes + overhead),
            ("/api/v1/layers", settings.layer_max_bytes + overhead),
            ("/carte/couches", settings.layer_max_bytes + overhead),
            ("/api/v1/hub/documents", settings.attachment_max_bytes + overhead),
            ("/accueil/documents", settings.attachment_max_bytes + overhead),
        ),
    )
    # Outermost: every layer below (the request's logs, /metrics, sign-in) sees the client
    # behind a trusted proxy (docs/adr/0038).
    app.add_middleware(TrustedProxies, trusted=settings.forwarded_allow_ips)
    app.include_router(health.router)
    if settings.metrics_allow:  # else /metrics is off: 404 like any unknown path
        app.include_router(monitoring.router)
    app.include_router(identity_api.router)
    app.include_router(review_api.router)
    app.include_router(logbook_api.router)
    app.include_router(attachments_api.router)
    app.include_router(comments_api.router)
    app.include_router(situations_api.router)
    app.include_router(search_api.router)
    app.include_router(live_api.router)
    app.include_router(geo_api.router)
    app.include_router(places_api.router)
    app.include_router(synthesis_api.router)
    app.include_router(products_api.router)
    app.include_router(sources_api.router)
    if settings.demo_feeds:
        from hypervision.demo import feeds

        app.include_router(feeds.router)
    app.include_router(derived_api.router)
    app.include_router(quality_api.router)
    app.include_router(audit_api.router)
    app.include_router(console_api.router)
    app.include_router(opendata_api.router)
    app.include_router(opendata_public.router)
    app.include_router(alerts_api.router)
    app.include_router(hub_api.router)
    app.include_router(hub_documents_api.router)
    app.include_router(spaces_api.router)
    app.include_router(reports_api.router)
    web.install(app)
    return app
