"""``GET /api/v1/stream``: Server-Sent Events of what the caller is cleared for."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Receive, Scope, Send

from hypervision.audit import service as audit
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid, Unavailable
from hypervision.core.i18n import LOCALE_COOKIE, pick_locale
from hypervision.core.openapi import CREDENTIALS, SIGNED_IN
from hypervision.core.params import parse_bbox
from hypervision.identity.deps import CurrentPrincipal
from hypervision.identity.principal import Principal
from hypervision.live.audit_feed import AUDIT_TOPIC, AuditFilter
from hypervision.live.direct import DirectWriter
from hypervision.live.gates import ALERT_TOPIC, SECURITY, passes, require
from hypervision.live.hub import Filters, Frame, Hub, Position, Subscriber, status_frame
from hypervision.live.opens import OpenAudit
from hypervision.policy.rules import Action, authorize


class Watched(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


class SpaceWatch(Protocol):
    """What pushes a space's modules through the streams watching it (``app.state.
    space_push``, ``web.space_push``, docs/adr/0052): above this package, known by shape."""

    async def admit(
        self, session: AsyncSession, actor: Principal, space_id: uuid.UUID
    ) -> Watched | None: ...

    def watch(self, sub: Subscriber, admitted: Any, request: Request, locale: str) -> Frame: ...


router = APIRouter(prefix="/api/v1", tags=["live"], dependencies=CREDENTIALS, responses=SIGNED_IN)


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def gate_of(request: Request) -> asyncio.Semaphore:
    gate: asyncio.Semaphore = request.app.state.stream_gate
    return gate


class Slot:
    """A place among the openings allowed to hold a database connection at once."""

    def __init__(self, gate: asyncio.Semaphore) -> None:
        self.gate = gate
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.gate.release()


async def opening_slot(request: Request, settings: SettingsDep) -> AsyncIterator[Slot]:
    """A burst of openings queues here, before taking a database connection, rather than
    exhausting the pool: at most ``live_open_concurrency`` authenticate at once; the others
    wait up to ``live_open_wait_seconds`` (then 503, try again)."""
    gate = gate_of(request)
    try:
        async with asyncio.timeout(settings.live_open_wait_seconds):
            await gate.acquire()
    except TimeoutError:
        raise Unavailable(
            "Trop d'ouvertures de flux simultanées, réessayez.",
            "Too many streams opening at once, try again.",
            code="busy",
            headers={"Retry-After": "5"},
        ) from None
    slot = Slot(gate)
    try:
        yield slot
    finally:
        slot.release()


# Kinds whose single records may be a topic (``product:<id>``): a space's page follows the
# products its modules show, not every product (ADR 0047).
RECORD_KINDS = frozenset({"product"})


def one_topic(raw: str, known: frozenset[str]) -> str | None:
    """A topic of the hub, or one record of a kind of ``RECORD_KINDS`` it carries
    (``product:<uuid>``, normalised); None: unknown."""
    if raw in known:
        return raw
    kind, colon, ident = raw.partition(":")
    if not colon or kind not in RECORD_KINDS or kind not in known:
        return None
    try:
        return f"{kind}:{uuid.UUID(ident)}"
    except ValueError:
        return None


@router.get(
    "/stream",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def stream(
    request: Request,
    slot: Annotated[Slot, Depends(opening_slot, scope="function")],
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    topic: Annotated[list[str] | None, Query(max_length=16)] = None,
    category: Annotated[list[str] | None, Query(max_length=20)] = None,
    bbox: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
    space: Annotated[
        uuid.UUID | None,
        Query(description="A space the caller reads: its modules come pushed (space.modules)."),
    ] = None,
    lang: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    """Live events (entries, comments, situations, attachments) checked against the caller's
    policy; a ``topic`` is a kind, or one data product (``product:<id>``: its events only).
    Resume with ``Last-Event-ID`` (or ``?since=``): exactly the authorised events
    missed, once, in order. ``: ping`` comments keep proxies open; ``event: status`` tells when
    the server falls back to polling; ``event: resync`` (then the end of the stream) means the
    client fell behind and should reload; ``event: revoked`` that its rights changed;
    ``event: shutdown`` that this server is stopping (reconnect: another replica resumes).
    With ``space`` (a space's page, docs/adr/0052), the stream first says ``event:
    space.watch`` (the modules that will come pushed), then sends ``event: space.modules``
    (their fragments, in ``lang``, each read audited) when events of their topics change
    them, and ``event: space.refresh`` when the page should ask for them itself; a space the
    caller may not read is not watched (no ``space.watch``), the stream opens all the same."""
    # The security alerts' topic alone is for security officers, who read no records: the
    # gate (``live.gates``) decides it; any other topic needs the right to read.
    if not (topic and set(topic) == {ALERT_TOPIC} and passes(actor, SECURITY)):
        authorize(actor, Action.READ)
    if hub_of(request).draining:
        raise Unavailable(
            "Ce serveur s'arrête : reconnectez-vous.",
            "This server is stopping: reconnect.",
            code="stopping",
            headers={"Retry-After": "1"},
        )
    known = hub_of(request).topics
    wanted = [one_topic(t, known) for t in topic or known]
    topics = frozenset(t for t in wanted if t is not None)
    if None in wanted:
        raise Invalid(
            f"Sujets possibles : {', '.join(sorted(known))}.",
            f"Topics are: {', '.join(sorted(known))}.",
            extra={"fields": [{"field": "topic", "message": "unknown topic"}]},
        )
    resume = since
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise Invalid(
                "Last-Event-ID invalide.",
                "Invalid Last-Event-ID.",
                extra={"fields": [{"field": "Last-Event-ID", "message": "integer"}]},
            )
        resume = int(last_event_id)
    filters = Filters(topics=topics, categories=frozenset(category or ()), bbox=parse_bbox(bbox))
    hub = hub_of(request)
    await hub.ensure_started(session)
    detail: dict[str, object] = {"topics": sorted(topics), "resume": resume}
    pusher: SpaceWatch | None = getattr(request.app.state, "space_push", None)
    watched = None
    if space is not None and pusher is not None:
        watched = await pusher.admit(session, actor, space)
        detail["space"] = {"id": str(space), "watched": watched is not None}
    if settings.effective_database_url.startswith("sqlite"):  # one writer: this transaction
        await audit.record(
            session=session, actor=actor, action="stream.open", surface="stream", detail=detail
        )
    else:  # a burst of openings shares one audit transaction (live.opens)
        await session.commit()  # authentication done: its connection goes back to the pool
        slot.release()  # and the next opening may take one
        opens: OpenAudit = request.app.state.stream_opens
        await opens.record(actor, detail)
    sub = hub.subscribe(actor, filters, settings.live_heartbeat_seconds)
    upto = hub.resume_point()
    if watched is not None and pusher is not None:
        locale = pick_locale(lang, request.cookies.get(LOCALE_COOKIE))
        sub.push(pusher.watch(sub, watched, request, locale))
    return EventStream(hub, sub, resume, upto, gate_of(request))


@router.get(
    "/stream/audit",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}, "description": "audit stream"}},
)
async def audit_stream(
    request: Request,
    slot: Annotated[Slot, Depends(opening_slot, scope="function")],
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    person: Annotated[uuid.UUID | None, Query(description="Records of this person.")] = None,
    organisation: Annotated[uuid.UUID | None, Query(description="Of this organisation.")] = None,
    surface: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    decision: Annotated[str | None, Query(pattern="^(allowed|denied|not_found)$")] = None,
    label: Annotated[str | None, Query(min_length=1, max_length=16)] = None,
    record: Annotated[uuid.UUID | None, Query(description="Records naming this id.")] = None,
    since: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> Response:
    """The audit trail live, for security officers only (docs/adr/0039): one ``audit``
    event per record as it is chained, its ``seq`` as the event id. Resume with
    ``Last-Event-ID`` (or ``?since=``): exactly the records missed, once, in order. Filters:
    person, organisation, surface, decision, label, record id (all must match)."""
    require(actor, SECURITY)  # the hub's gate, the same as the security alerts'
    hub = hub_of(request)
    if hub.draining:
        raise Unavailable(
            "Ce serveur s'arrête : reconnectez-vous.",
            "This server is stopping: reconnect.",
            code="stopping",
            headers={"Retry-After": "1"},
        )
    resume = since
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise Invalid(
                "Last-Event-ID invalide.",
                "Invalid Last-Event-ID.",
                extra={"fields": [{"field": "Last-Event-ID", "message": "integer"}]},
            )
        resume = int(last_event_id)
    wanted = AuditFilter(
        person=person,
        organisation=organisation,
        surface=surface,
        decision=decision,
        label=label,
        record=str(record) if record else None,
    )
    await hub.ensure_started(session)  # its revocations close this stream too
    await hub.audit.ensure_started(session)
    detail = {"topics": [AUDIT_TOPIC], "resume": resume}
    await audit.record(
        session=session, actor=actor, action="stream.open", surface="stream", detail=detail
    )
    await session.commit()  # before the stream: the opening is on record
    slot.release()
    sub = hub.subscribe(actor, Filters(topics=frozenset(), audit=wanted))
    upto = (hub.audit.resume_point(), 0)
    return AuditStream(hub, sub, resume, upto, gate_of(request))


class EventStream(Response):
    """The SSE answer, written straight to the ASGI ``send`` (no generator, no per-stream
    timer: the hub queues heartbeats). Woken by the hub, a stream writes everything queued in
    one chunk; a client that goes away unsubscribes at once (its ``http.disconnect``)."""

    media_type = "text/event-stream"

    def __init__(
        self, hub: Hub, sub: Subscriber, resume: int | None, upto: Position, gate: asyncio.Semaphore
    ) -> None:
        # No Content-Length: the body is chunked until the stream ends.
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),
        ]
        self.hub, self.sub, self.resume, self.upto, self.gate = hub, sub, resume, upto, gate

    async def replay(self, since: int) -> list[Frame]:
        return await self.hub.backlog(self.sub, since, self.upto)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub, sub = self.hub, self.sub

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            sub.close("gone")

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await _write(send, b"retry: 3000\n" + status_frame(hub.mode))
            sub.last = self.upto  # what comes live after this
            if self.resume is not None:
                async with self.gate:  # the backlog's reads and audit queue like openings
                    frames = await self.replay(self.resume)
                if frames:
                    await _write(send, b"".join(frame.data for frame in frames))
            wake, queued = sub.wake, sub.frames
            writer = DirectWriter.of(scope)
            while True:
                if sub.closed:
                    if sub.closed != "gone":
                        await _write(send, f"event: {sub.closed}\ndata: {{}}\n\n".encode())
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                if not queued:
                    wake.clear()
                    sub.direct = writer  # until woken, the hub writes (docs/adr/0053)
                    await wake.wait()
                    sub.direct = None
                    continue
                chunk = []  # everything queued goes out in one write
                while queued:
                    frame = queued.popleft()
                    if frame.at is None:  # a status frame or a ping
                        chunk.append(frame.data)
                    elif frame.at > sub.last:  # events once, in order
                        sub.last = frame.at
                        chunk.append(frame.data)
                if chunk:
                    await _write(send, b"".join(chunk) if len(chunk) > 1 else chunk[0])
                    sub.sent_at = time.monotonic()
        except OSError:  # the client went away mid-write
            pass
        finally:
            sub.direct = None
            hub.unsubscribe(sub)
            watcher.cancel()


class AuditStream(EventStream):
    """An audit stream: the same writer, replaying from the trail by ``seq``."""

    async def replay(self, since: int) -> list[Frame]:
        return await self.hub.audit.backlog(self.sub, since, self.upto[0])


async def _write(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})
