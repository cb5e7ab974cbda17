"""``GET /api/v1/stream``: Server-Sent Events of what the caller is cleared for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from hypervision.audit import service as audit
from hypervision.core.deps import DbSession, SettingsDep
from hypervision.core.errors import Invalid, Unavailable
from hypervision.core.openapi import CREDENTIALS, SIGNED_IN
from hypervision.core.params import parse_bbox
from hypervision.identity.deps import CurrentPrincipal
from hypervision.live.hub import Filters, Hub, Position, Subscriber, status_frame
from hypervision.live.opens import OpenAudit
from hypervision.policy.rules import Action, authorize

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


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def stream(
    request: Request,
    slot: Annotated[Slot, Depends(opening_slot, scope="function")],
    session: DbSession,
    settings: SettingsDep,
    actor: CurrentPrincipal,
    topic: Annotated[list[str] | None, Query(max_length=4)] = None,
    category: Annotated[list[str] | None, Query(max_length=20)] = None,
    bbox: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    """Live events (entries, comments, situations, attachments) checked against the caller's
    policy. Resume with ``Last-Event-ID`` (or ``?since=``): exactly the authorised events
    missed, once, in order. ``: ping`` comments keep proxies open; ``event: status`` tells when
    the server falls back to polling; ``event: resync`` (then the end of the stream) means the
    client fell behind and should reload; ``event: revoked`` that its rights changed."""
    authorize(actor, Action.READ)
    known = hub_of(request).topics
    topics = frozenset(topic or known)
    if not topics <= known:
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
    detail = {"topics": sorted(topics), "resume": resume}
    if settings.effective_database_url.startswith("sqlite"):  # one writer: this transaction
        await audit.record(
            session=session, actor=actor, action="stream.open", surface="stream", detail=detail
        )
    else:  # a burst of openings shares one audit transaction (live.opens)
        await session.commit()  # authentication done: its connection goes back to the pool
        slot.release()  # and the next opening may take one
        opens: OpenAudit = request.app.state.stream_opens
        await opens.record(actor, detail)
    sub = hub.subscribe(actor, filters)
    upto = hub.resume_point()
    return StreamingResponse(
        _events(hub, sub, resume, upto, settings.live_heartbeat_seconds, gate_of(request)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    hub: Hub,
    sub: Subscriber,
    resume: int | None,
    upto: Position,
    heartbeat: float,
    gate: asyncio.Semaphore,
) -> AsyncIterator[str]:
    try:
        yield "retry: 3000\n" + status_frame(hub.mode)
        last = upto  # what comes live after this; a batch re-planned after a failed audit too
        if resume is not None:
            async with gate:  # the backlog's reads and audit queue like openings
                frames = await hub.backlog(sub, resume, upto)
            for frame in frames:
                yield frame.text
        while True:
            if sub.closed:
                yield f"event: {sub.closed}\ndata: {{}}\n\n"
                return
            if not sub.frames:
                sub.wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(heartbeat):
                        await sub.wake.wait()
                if not sub.frames and not sub.closed:
                    yield ": ping\n\n"
                continue
            chunk = []  # everything queued goes out in one write
            while sub.frames:
                frame = sub.frames.popleft()
                if frame.at is None:  # a status frame
                    chunk.append(frame.text)
                elif frame.at > last:  # events once, in order
                    last = frame.at
                    chunk.append(frame.text)
            if chunk:
                yield "".join(chunk)
    finally:
        hub.unsubscribe(sub)
