"""``GET /api/v1/stream``: Server-Sent Events of what the caller is cleared for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from hypervision.audit import service as audit
from hypervision.core.deps import CurrentPrincipal, DbSession, SettingsDep
from hypervision.core.errors import Invalid
from hypervision.core.openapi import CREDENTIALS, SIGNED_IN
from hypervision.live.hub import TOPICS, Filters, Hub, Subscriber, status_frame
from hypervision.policy.rules import Action, authorize
from hypervision.records.params import parse_bbox

router = APIRouter(prefix="/api/v1", tags=["live"], dependencies=CREDENTIALS, responses=SIGNED_IN)


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def stream(
    request: Request,
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
    topics = frozenset(topic or TOPICS)
    if not topics <= TOPICS:
        raise Invalid(
            f"Sujets possibles : {', '.join(sorted(TOPICS))}.",
            f"Topics are: {', '.join(sorted(TOPICS))}.",
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
    await audit.record(
        session=session,
        actor=actor,
        action="stream.open",
        surface="stream",
        detail={"topics": sorted(topics), "resume": resume},
    )
    sub = hub.subscribe(actor, filters)
    upto = hub.resume_point()
    return StreamingResponse(
        _events(hub, sub, resume, upto, settings.live_heartbeat_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    hub: Hub, sub: Subscriber, resume: int | None, upto: int, heartbeat: float
) -> AsyncIterator[str]:
    try:
        yield "retry: 3000\n" + status_frame(hub.mode)
        last = upto if resume is None else resume
        if resume is not None and resume < upto:
            for frame in await hub.backlog(sub, resume, upto):
                yield frame.text
            last = upto  # a batch re-planned after a failed audit may come live too
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
                if frame.id == 0 or frame.id > last:  # 0: status frames; ids: once, in order
                    last = max(last, frame.id)
                    chunk.append(frame.text)
            if chunk:
                yield "".join(chunk)
    finally:
        hub.unsubscribe(sub)
