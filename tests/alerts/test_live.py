"""Alerts reach security officers' streams, live and on resume, and nobody else's."""

from __future__ import annotations

import json
import uuid

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.identity.principal import Principal
from hypervision.live.hub import Filters, Subscriber
from hypervision.policy.roles import Role, Scope
from tests.alerts.helpers import evaluate, security_officer, set_rule
from tests.factories import officer
from tests.live.server import open_stream, serve


def person(roles: set[str], scopes: frozenset[str] | None = None) -> Principal:
    return Principal(
        user_id=uuid.uuid4(),
        username="someone",
        organisation_id=None,
        organisation_ancestry=(),
        clearance="DR",
        roles=frozenset(roles),
        groups=frozenset(),
        scopes=scopes,
    )


def alert_frames(sub: Subscriber) -> list[dict[str, object]]:
    found = []
    for frame in sub.frames:
        text = frame.data.decode()
        if "event: security_alert." in text:
            found.append(json.loads(text.split("data: ", 1)[1]))
    return found


async def test_alerts_reach_security_officers_only(app: FastAPI, client: AsyncClient) -> None:
    hub = app.state.hub
    secu = await security_officer(app, client)
    await set_rule(client, secu, "id_probing", threshold=1)
    await set_rule(client, secu, "sign_in_off_hours", enabled=False)  # late at night
    await hub.dispatch()  # up to now
    streams = {
        "security officer": hub.subscribe(person({Role.SECURITY_OFFICER.value}), Filters()),
        "security officer, alerts topic": hub.subscribe(
            person({Role.SECURITY_OFFICER.value}), Filters(topics=frozenset({"security_alert"}))
        ),
        "security officer, entries only": hub.subscribe(
            person({Role.SECURITY_OFFICER.value}), Filters(topics=frozenset({"entry"}))
        ),
        "security officer's read-only token": hub.subscribe(
            person({Role.SECURITY_OFFICER.value}, frozenset({Scope.READ})), Filters()
        ),
        "officer": hub.subscribe(person({Role.OFFICER.value}), Filters()),
        "administrator": hub.subscribe(person({Role.ADMINISTRATOR.value}), Filters()),
        "watch officer, alerts topic": hub.subscribe(
            person({Role.WATCH_OFFICER.value}), Filters(topics=frozenset({"security_alert"}))
        ),
    }
    mallory = await officer(app, client, "mallory", "PP")
    for _ in range(2):
        await client.get(f"/api/v1/entries/{uuid.uuid4()}", headers=mallory)
    await evaluate(app)
    while await hub.dispatch():
        pass
    got = {name: alert_frames(sub) for name, sub in streams.items()}
    assert [f["kind"] for f in got["security officer"]] == ["id_probing"]
    assert got["security officer, alerts topic"] == got["security officer"]
    for name in (
        "security officer, entries only",
        "security officer's read-only token",
        "officer",
        "administrator",
        "watch officer, alerts topic",
    ):
        assert got[name] == [], name
    frame = got["security officer"][0]
    assert frame["subject_name"] == "mallory" and frame["state"] == "new"

    # A stream resuming from the start replays the alert to an officer, never to others.
    upto = hub.cursor
    replay_secu = await hub.backlog(streams["security officer"], 0, upto)
    replay_officer = await hub.backlog(streams["officer"], 0, upto)
    assert any(b"security_alert.raise" in f.data for f in replay_secu)
    assert not any(b"security_alert" in f.data for f in replay_officer)


async def test_a_security_officer_opens_the_alerts_topic_alone(
    app: FastAPI, client: AsyncClient
) -> None:
    """A security officer reads no records: the live stream lets them open the alerts' topic
    alone (the page's notices, ADR 0046), and nothing else; others need the right to read."""
    secu = await security_officer(app, client)
    async with (
        serve(app) as base,
        open_stream(base, secu, "?topic=security_alert") as stream,
    ):
        assert stream.of("status")
    for query in ("", "?topic=entry", "?topic=security_alert&topic=entry"):
        refused = await client.get(f"/api/v1/stream{query}", headers=secu)
        assert refused.status_code == 403, query
    admin = await officer(app, client, "ada", "PP", roles=(Role.ADMINISTRATOR,))
    alone = await client.get("/api/v1/stream?topic=security_alert", headers=admin)
    assert alone.status_code == 403
