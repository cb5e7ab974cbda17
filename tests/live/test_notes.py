"""Notes (an import's progress, docs/adr/0029): handed to the open streams of one person's one
session and to no other, on every replica through either bus, once, never stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hypervision.identity.principal import Principal
from hypervision.kinds import KINDS
from hypervision.live.bus import start_bus
from hypervision.live.hub import Filters, Hub, Subscriber
from tests.conftest import engine_name, make_settings

NOTE = {"import": "0" * 32, "step": "write"}
FRAME = b'event: import.progress\ndata: {"import":"' + b"0" * 32 + b'","step":"write"}\n\n'


def person(user: uuid.UUID, session: uuid.UUID | None, token: uuid.UUID | None = None) -> Principal:
    return Principal(
        user_id=user,
        username="agent",
        organisation_id=None,
        organisation_ancestry=(),
        clearance="DR",
        roles=frozenset(),
        groups=frozenset(),
        session_id=session,
        token_id=token,
    )


def bare_hub(tmp_path: Path, database_url: str = "sqlite+aiosqlite://", **extra: object) -> Hub:
    settings = make_settings(tmp_path, database_url, **extra)
    return Hub(settings, None, topics=KINDS.topics(), labels=KINDS)  # type: ignore[arg-type]


def notes(sub: Subscriber) -> list[bytes]:
    return [frame.data for frame in sub.frames]


def test_a_note_reaches_the_streams_of_its_session_only(tmp_path: Path) -> None:
    hub = bare_hub(tmp_path)
    me, session = uuid.uuid4(), uuid.uuid4()
    tab_1 = hub.subscribe(person(me, session), Filters())
    tab_2 = hub.subscribe(person(me, session), Filters(topics=frozenset({"entry"})))
    my_other_session = hub.subscribe(person(me, uuid.uuid4()), Filters())
    my_token = hub.subscribe(person(me, None, uuid.uuid4()), Filters())
    someone_else = hub.subscribe(person(uuid.uuid4(), session), Filters())

    hub.note(person(me, session), "import.progress", NOTE)

    assert notes(tab_1) == notes(tab_2) == [FRAME]  # whatever the stream's topics
    assert notes(my_other_session) == notes(my_token) == notes(someone_else) == []
    assert tab_1.frames[0].at is None  # no id: never resumed, never counted as an event


def test_a_token_sends_no_note_and_a_bad_note_is_dropped(tmp_path: Path) -> None:
    hub = bare_hub(tmp_path)
    me = uuid.uuid4()
    sub = hub.subscribe(person(me, uuid.uuid4()), Filters())
    hub.note(person(me, None, uuid.uuid4()), "import.progress", NOTE)
    note = {"user": str(me), "session": str(sub.principal.session_id), "data": NOTE}
    for event in ("import.progress\ndata: forged", "", "message"):
        hub.hand_note({**note, "event": event})  # from the bus: checked all the same
    hub.hand_note({**note, "event": "import.progress", "data": "not an object"})
    assert notes(sub) == []


@pytest.fixture
async def two_replicas(
    tmp_path: Path, database_url: str, bus_settings: dict[str, str]
) -> AsyncIterator[tuple[Hub, Hub]]:
    if engine_name(database_url) != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one process, hence no bus")
    hubs = [bare_hub(tmp_path / str(n), database_url, **bus_settings) for n in range(2)]
    for hub in hubs:
        hub.bus = await start_bus(hub)
    try:
        yield hubs[0], hubs[1]
    finally:
        for hub in hubs:
            await hub.bus.stop()


async def test_a_note_crosses_to_the_other_replicas_once(two_replicas: tuple[Hub, Hub]) -> None:
    here, there = two_replicas
    me, session = uuid.uuid4(), uuid.uuid4()
    mine_here = here.subscribe(person(me, session), Filters())
    mine_there = there.subscribe(person(me, session), Filters())
    not_mine_there = there.subscribe(person(me, uuid.uuid4()), Filters())

    here.note(person(me, session), "import.progress", NOTE)
    async with asyncio.timeout(5):
        await mine_there.wake.wait()  # set by the note's arrival
    await asyncio.sleep(0.3)  # time for an echo to come back, if one were to

    assert notes(mine_here) == notes(mine_there) == [FRAME]
    assert notes(not_mine_there) == []
