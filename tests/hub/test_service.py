"""The hub's services, called directly: the board groups who is on duty by room with each
room's next shift; ending a shift not started cancels it; announcers are the CNCS's watch
officers and authorities, sub-organisations included; announcements are shown in their
window, urgent first; the trail of a directory change holds no contact data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.hub import announcements, duty
from hypervision.hub.models import Importance
from hypervision.hub.schemas import AnnouncementCreate, DutyCreate
from hypervision.identity.auth import Client, build_principal
from hypervision.identity.models import User
from hypervision.identity.principal import Principal
from hypervision.policy.roles import Role
from hypervision.records.schemas import LabelIn
from tests.factories import make_org, make_user, sequenced, tx
from tests.hub.world import cast

NOW = datetime(2024, 7, 26, 18, 0, tzinfo=UTC)
PUBLIC = LabelIn(level="NP", audience=[])


async def principal(app: FastAPI, username: str) -> Principal:
    async with tx(app) as session:
        user = await session.scalar(select(User).where(User.username == username))
        assert user is not None
        return await build_principal(
            session=session, user=user, scopes=None, client=Client("127.0.0.1", "test")
        )


def shift(room: str, start: float, hours: float, name: str) -> DutyCreate:
    return DutyCreate(
        person_name=name,
        organisation="PREF",
        room=room,
        phone="06 12 34 56 78",
        email="secret.contact@example.fr",
        starts_at=NOW + timedelta(hours=start),
        ends_at=NOW + timedelta(hours=start + hours),
    )


async def test_the_board(app: FastAPI, client: AsyncClient) -> None:
    await cast(app, client)
    marc = await principal(app, "marc")
    plan = [
        ("Salle CNCS", -2, 8, "A"),
        ("Salle CNCS", -1, 8, "B"),
        ("Salle CNCS", 6, 8, "C"),  # next
        ("Salle CNCS", 9, 8, "D"),  # after the next: not shown
        ("PC Stade", -9, 8, "E"),  # over
        ("PC Stade", 3, 8, "F"),  # nobody now, F next
        ("cogic", -1, 2, "G"),
    ]
    async with tx(app) as session:
        for room, start, hours, name in plan:
            await duty.create_duty(
                session=session, actor=marc, data=shift(room, start, hours, name)
            )
    async with tx(app) as session:
        rooms = await duty.board(session=session, actor=marc, at=NOW)
    seen = [
        (r.name, [d.person_name for d in r.now], r.next.person_name if r.next else None)
        for r in rooms
    ]
    assert seen == [
        ("cogic", ["G"], None),
        ("PC Stade", [], "F"),
        ("Salle CNCS", ["A", "B"], "C"),
    ]


async def test_ending_and_cancelling(app: FastAPI, client: AsyncClient) -> None:
    await cast(app, client)
    marc = await principal(app, "marc")
    async with tx(app) as session:
        later = await duty.create_duty(session=session, actor=marc, data=shift("X", 5, 4, "L"))
        now = await duty.create_duty(session=session, actor=marc, data=shift("X", -1, 4, "N"))
    async with tx(app) as session:
        cancelled = await duty.end_shift(session=session, actor=marc, duty_id=later.id, at=NOW)
        ended = await duty.end_shift(session=session, actor=marc, duty_id=now.id, at=NOW)
    assert cancelled.ends_at == cancelled.starts_at == NOW + timedelta(hours=5)
    assert ended.ends_at == NOW
    await sequenced(app)
    async with tx(app) as session:
        details = [
            str(d)
            for d in await session.scalars(
                select(AuditRecord.detail).where(AuditRecord.resource_type == "duty")
            )
        ]
    assert details and not any("secret.contact" in d or "06 12" in d for d in details)


async def test_who_announces(app: FastAPI, client: AsyncClient) -> None:
    await cast(app, client)
    await make_org(app, "CNCS-NORD", "MININT-CNCS")
    await make_user(app, "nord", "CNCS-NORD", roles=[Role.WATCH_OFFICER], clearance="DR")
    await make_user(app, "steward", "MININT-CNCS", roles=[Role.DATA_STEWARD], clearance="DR")
    settings = app.state.settings
    expected = {"chef": True, "helene": True, "nord": True, "marc": False, "steward": False}
    actors = {name: await principal(app, name) for name in expected}
    async with tx(app) as session:
        for name, may in expected.items():
            assert await announcements.may_publish(session, settings, actors[name]) is may, name


async def test_shown_in_their_window_urgent_first(app: FastAPI, client: AsyncClient) -> None:
    await cast(app, client)
    chef, olga = await principal(app, "chef"), await principal(app, "olga")
    settings = app.state.settings
    now = datetime.now(UTC)
    plan = [
        ("info", -2, None, Importance.INFO),
        ("urgent", -3, None, Importance.URGENT),
        ("important", -1, None, Importance.IMPORTANT),
        ("over", -5, -1, Importance.URGENT),
        ("later", 2, None, Importance.URGENT),
    ]
    async with tx(app) as session:
        for title, start, end, importance in plan:
            data = AnnouncementCreate(
                title=title,
                importance=importance,
                starts_at=now + timedelta(hours=start),
                ends_at=now + timedelta(hours=end) if end is not None else None,
                label=PUBLIC,
            )
            await announcements.create_announcement(
                session=session, settings=settings, actor=chef, data=data
            )
    async with tx(app) as session:
        shown, _ = await announcements.list_announcements(
            session=session, settings=settings, actor=olga
        )
        every, _ = await announcements.list_announcements(
            session=session, settings=settings, actor=olga, shown_only=False
        )
    assert [a.title for a in shown] == ["urgent", "important", "info"]
    assert [a.title for a in every] == ["later", "important", "info", "urgent", "over"]
