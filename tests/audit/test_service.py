"""The audit trail: chained records, verification, tamper detection, no audit no data."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import delete, func, select, update

from hypervision.audit import service as audit
from hypervision.audit.models import AuditRecord
from hypervision.events.models import OutboxEvent
from hypervision.identity.models import Organisation
from hypervision.logbook.models import Entry
from hypervision.records.models import RecordVersion
from tests.audit.tamper import owner
from tests.factories import (
    ADMIN,
    ENTRY,
    admin_headers,
    make_org,
    officer,
    refuse_audit,
    sequenced,
    tx,
)


async def _trail(app: FastAPI, n: int) -> None:
    async with tx(app) as session:
        for i in range(n):
            await audit.record(
                session=session,
                actor=ADMIN,
                action="test.event",
                resource_ids=[f"r{i}"],
                labels=["NP"],
            )
    await sequenced(app)


async def _verify(app: FastAPI) -> audit.VerifyResult:
    async with tx(app) as session:
        return await audit.verify(session=session, batch=3)


async def test_intact_trail_verifies(app: FastAPI) -> None:
    await _trail(app, 10)
    result = await _verify(app)
    assert result.ok and result.checked == 10


async def test_altered_record_is_named(app: FastAPI, owner_database_url: str) -> None:
    await _trail(app, 10)
    async with owner(owner_database_url) as session:
        await session.execute(
            update(AuditRecord).where(AuditRecord.seq == 6).values(resource_ids=["other"])
        )
    result = await _verify(app)
    assert not result.ok and result.seq == 6 and "altered" in (result.problem or "")


async def test_deleted_record_is_named(app: FastAPI, owner_database_url: str) -> None:
    await _trail(app, 10)
    async with owner(owner_database_url) as session:
        await session.execute(delete(AuditRecord).where(AuditRecord.seq == 4))
    result = await _verify(app)
    assert not result.ok and result.seq == 4 and "missing" in (result.problem or "")


async def test_reordered_records_are_detected(app: FastAPI, owner_database_url: str) -> None:
    await _trail(app, 10)
    async with owner(owner_database_url) as session:
        await session.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(seq=-3))
        await session.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(seq=3))
        await session.execute(update(AuditRecord).where(AuditRecord.seq == -3).values(seq=4))
    result = await _verify(app)
    assert not result.ok and result.seq == 3


async def test_truncated_tail_is_detected(app: FastAPI, owner_database_url: str) -> None:
    await _trail(app, 10)
    async with owner(owner_database_url) as session:
        await session.execute(delete(AuditRecord).where(AuditRecord.seq >= 9))
    result = await _verify(app)
    assert not result.ok and result.checked == 8


async def test_export_lines_are_one_record_each(app: FastAPI) -> None:
    async with tx(app) as session:
        await audit.record(
            session=session,
            actor=ADMIN,
            action="test.event",
            detail={"note": 'line\r\nbreak \x1b[31mred\x1b[0m "quoted" }'},
        )
        lines = [line async for line in audit.export(session=session)]
    assert len(lines) == 1
    assert "\n" not in lines[0] and "\r" not in lines[0] and "\x1b" not in lines[0]


async def test_no_audit_no_data(app: FastAPI, client: AsyncClient, owner_database_url: str) -> None:
    headers = await admin_headers(app, client)
    async with owner(owner_database_url) as session:
        await refuse_audit(session)
    response = await client.post(
        "/api/v1/organisations", json={"code": "LOST", "name": "Never stored"}, headers=headers
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "audit_unavailable"
    async with tx(app) as session:
        count = await session.scalar(
            select(func.count()).select_from(Organisation).where(Organisation.code == "LOST")
        )
    assert count == 0


async def test_no_audit_no_entry(
    app: FastAPI, client: AsyncClient, owner_database_url: str
) -> None:
    """A versioned change writes its version, audit record and outbox event in one statement
    on PostgreSQL (records.versions): an append that fails still refuses the whole change."""
    alice = await officer(app, client, "alice", "PP")
    async with owner(owner_database_url) as session:
        await refuse_audit(session)
    response = await client.post("/api/v1/entries", json=ENTRY, headers=alice)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "audit_unavailable"
    async with tx(app) as session:
        for model in (Entry, RecordVersion, OutboxEvent):
            assert await session.scalar(select(func.count()).select_from(model)) == 0, model


async def test_admin_changes_are_audited_with_actor(app: FastAPI, client: AsyncClient) -> None:
    headers = await admin_headers(app, client)
    await make_org(app, "MININT")
    response = await client.post(
        "/api/v1/organisations",
        json={"code": "PP", "name": "PP", "parent_code": "MININT"},
        headers=headers,
    )
    assert response.status_code == 201
    await sequenced(app)
    async with tx(app) as session:
        row = await session.scalar(
            select(AuditRecord)
            .where(AuditRecord.action == "organisation.create")
            .order_by(AuditRecord.seq.desc())
            .limit(1)
        )
    assert row is not None
    assert row.actor_name == "root.admin"
    assert row.actor_clearance == "DR"
    assert row.resource_ids == [response.json()["id"]]
    assert row.client_address == "203.0.113.7"
    assert (await _verify(app)).ok
