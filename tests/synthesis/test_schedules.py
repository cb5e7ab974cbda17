"""Recurring points de situation: at 07:00 and 19:00 (Paris time) a draft covering the time since
the previous one, made once whatever the number of runs (claimed by a conditional update)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update

from hypervision.core.timezone import PARIS
from hypervision.db import utcnow
from hypervision.synthesis import schedules
from hypervision.synthesis.models import Synthesis, SynthesisSchedule
from tests.factories import tx
from tests.synthesis.helpers import Room


def paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS)


async def test_schedule_drafts_once_per_due_time(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    day = utcnow().astimezone(PARIS).date() - timedelta(days=2)  # well in the past: real entries
    created = await client.post(
        "/api/v1/synthesis-schedules",
        json={"name": "Point de situation", "times": ["19:00", "07:00"], "scope": {}},
        headers=await room("claire"),
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["times"] == ["07:00", "19:00"] and schedule["active"] is True
    # Created now, its first draft would come at the next 07:00 or 19:00: make it as if it had
    # been created the day before ``day``, so that the runs below are due.
    async with tx(app) as session:
        await session.execute(
            update(SynthesisSchedule)
            .where(SynthesisSchedule.id == uuid.UUID(schedule["id"]))
            .values(last_run_at=paris(day - timedelta(days=1), 12))
        )
    morning = await room.entry(
        "antoine", "Filtrage renforcé", occurred_at=paris(day, 10).isoformat()
    )
    await room.entry("antoine", "Avant 7 h", occurred_at=paris(day, 6, 30).isoformat())
    evening = await room.entry(
        "antoine", "Rassemblement après 19 h", occurred_at=paris(day, 20, 30).isoformat()
    )

    made = await schedules.run_due(
        app.state.system_sessions, app.state.settings, now=paris(day, 21)
    )
    assert len(made) == 1
    first = await read(room, made[0])
    assert first["title"] == f"Point de situation — {day:%d/%m/%Y} 19:00"
    assert first["status"] == "draft" and first["author"] == "claire"
    assert datetime.fromisoformat(first["scope"]["since"]) == paris(day, 7)
    assert datetime.fromisoformat(first["scope"]["until"]) == paris(day, 19)
    assert first["entry_ids"] == [morning["id"]]  # 07:00 ≤ occurred < 19:00

    # Same time again (another replica, or the next poll): already claimed, nothing made.
    assert (
        await schedules.run_due(app.state.system_sessions, app.state.settings, now=paris(day, 21))
        == []
    )
    later = paris(day, 23, 59)
    assert await schedules.run_due(app.state.system_sessions, app.state.settings, now=later) == []

    next_day = day + timedelta(days=1)
    made = await schedules.run_due(
        app.state.system_sessions, app.state.settings, now=paris(next_day, 7, 5)
    )
    assert len(made) == 1
    second = await read(room, made[0])
    assert second["title"] == f"Point de situation — {next_day:%d/%m/%Y} 07:00"
    assert datetime.fromisoformat(second["scope"]["since"]) == paris(day, 19)
    assert datetime.fromisoformat(second["scope"]["until"]) == paris(next_day, 7)
    assert second["entry_ids"] == [evening["id"]]
    async with tx(app) as session:
        row = await session.get(Synthesis, made[0])
        assert row is not None and str(row.schedule_id) == schedule["id"]


async def read(room: Room, synthesis_id: uuid.UUID) -> dict[str, Any]:
    response = await room.client.get(
        f"/api/v1/syntheses/{synthesis_id}", headers=await room("claire")
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_last_due_crosses_midnight() -> None:
    day = date(2024, 7, 26)
    due, previous = schedules.last_due(["07:00", "19:00"], paris(day, 6).astimezone(PARIS))
    assert (due, previous) == (
        paris(day - timedelta(days=1), 19),
        paris(day - timedelta(days=1), 7),
    )
    due, previous = schedules.last_due(["07:00", "19:00"], paris(day, 7))
    assert (due, previous) == (paris(day, 7), paris(day - timedelta(days=1), 19))
