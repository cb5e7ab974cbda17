"""The four-eyes workflow of a synthesis on both engines: draft → submitted → validated by
another watch officer → sent; what each step refuses; versions and audit records; a
correction by a superseding synthesis that leaves the first one as it was sent."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.records.models import RecordVersion
from hypervision.synthesis.models import Synthesis
from tests.factories import tx
from tests.synthesis.helpers import RESTRICTED, Room


async def versions(app: FastAPI, synthesis_id: str) -> list[tuple[int, str]]:
    async with tx(app) as session:
        rows = await session.scalars(
            select(RecordVersion)
            .where(
                RecordVersion.resource_type == "synthesis",
                RecordVersion.resource_id == uuid.UUID(synthesis_id),
            )
            .order_by(RecordVersion.version)
        )
        return [(v.version, v.action) for v in rows]


async def audited(app: FastAPI, synthesis_id: str) -> list[str]:
    async with tx(app) as session:
        rows = await session.scalars(
            select(AuditRecord)
            .where(AuditRecord.action.like("synthesis.%"))
            .order_by(AuditRecord.qid)
        )
        return [
            r.action
            for r in rows
            if synthesis_id in r.resource_ids or r.detail.get("synthesis_id") == synthesis_id
        ]


async def test_draft_submit_validate_send(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    await room.entry("antoine", "Colis suspect Concorde")
    await room.entry("antoine", "Bouchon porte Maillot", category="traffic", severity="minor")
    draft = await room.draft("claire", "Point de situation de 19 h")
    sid = draft["id"]
    assert draft["status"] == "draft" and draft["version"] == 1
    assert draft["author"] == "claire" and draft["organisation"] == "CNCS"
    assert len(draft["entry_ids"]) == 2
    assert draft["figures"]["total"] == 2
    assert draft["figures"]["by_category"] == {"security": 1, "traffic": 1}
    assert draft["label"]["level"] == "NP" and draft["marking"] is None

    edited = await room.patch("claire", sid, {"narrative": "## Situation générale\n\nCalme."})
    assert edited["version"] == 2 and "<h2>" in edited["narrative_html"]

    submitted = await room.step("claire", sid, "submit")
    assert submitted["status"] == "submitted" and submitted["submitted_by"] == "claire"
    # A submitted synthesis is no longer edited (409) …
    refused = await room.patch("claire", sid, {"title": "Autre titre"}, status=409)
    assert refused["error"]["code"] == "workflow"
    # … and its author cannot validate it (four eyes).
    own = await room.step("claire", sid, "validate", status=403)
    assert own["error"]["code"] == "four_eyes"

    validated = await room.step("marc", sid, "validate")
    assert validated["status"] == "validated" and validated["validated_by"] == "marc"
    await room("prefet")
    sent = await room.step("marc", sid, "send", json={"users": ["prefet"]})
    assert sent["status"] == "sent" and sent["sent_by"] == "marc" and sent["sent_at"]

    # A sent synthesis never changes: no edit, no step back, no second sending.
    frozen = await room.patch("claire", sid, {"narrative": "x"}, status=409)
    assert frozen["error"]["code"] == "workflow"
    for action in ("submit", "validate", "return"):
        await room.step("marc", sid, action, status=409)
    await room.step("marc", sid, "send", json={"users": ["prefet"]}, status=409)

    assert await versions(app, sid) == [
        (1, "create"),
        (2, "update"),
        (3, "submit"),
        (4, "validate"),
        (5, "send"),
    ]
    actions = await audited(app, sid)
    for action in (
        "synthesis.create",
        "synthesis.update",
        "synthesis.submit",
        "synthesis.validate",
        "synthesis.send",
        "synthesis.deliver",
    ):
        assert action in actions, action
    # the refused self-validation is not a step: nothing recorded for it
    assert actions.count("synthesis.validate") == 1


async def test_four_eyes_covers_the_submitter_too(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    await room.entry("antoine", "Colis suspect Concorde")
    sid = (await room.draft("claire", "Point de 7 h"))["id"]
    await room.step("marc", sid, "submit")  # Marc submits Claire's draft
    for username in ("claire", "marc"):  # neither the author nor the submitter validates
        refused = await room.step(username, sid, "validate", status=403)
        assert refused["error"]["code"] == "four_eyes"
    validated = await room.step("sophie", sid, "validate")
    assert validated["validated_by"] == "sophie"

    # Taken back to draft for a correction: editable again, validation cleared.
    back = await room.step("claire", sid, "return")
    assert back["status"] == "draft" and back["validated_by"] is None
    await room.patch("claire", sid, {"title": "Point de 7 h (corrigé)"})
    assert [a for _, a in await versions(app, sid)] == [
        "create",
        "submit",
        "validate",
        "return",
        "update",
    ]
    # Only a validated synthesis is sent.
    await room("prefet")
    await room.step("claire", sid, "send", json={"users": ["prefet"]}, status=409)


async def test_supersede_replaces_only_once_sent(app: FastAPI, client: AsyncClient) -> None:
    room = Room(app, client)
    await room.entry("antoine", "Colis suspect Concorde", label=RESTRICTED)
    draft = await room.draft("claire", "Point de 19 h")
    sid = draft["id"]
    await room.step("claire", sid, "supersede", status=409)  # only a sent one is corrected
    await room.sent("claire", "marc", sid, users=["prefet"])
    async with tx(app) as session:
        original = await session.get(Synthesis, uuid.UUID(sid))
        assert original is not None
        before = (
            original.title,
            original.narrative,
            list(original.entry_ids),
            dict(original.figures),
            original.label,
            original.version,
        )

    copy = await room.step("marc", sid, "supersede", status=201)
    cid = copy["id"]
    assert copy["supersedes_id"] == sid and copy["status"] == "draft"
    assert copy["title"] == "Rectificatif — Point de 19 h"
    assert copy["entry_ids"] == draft["entry_ids"]
    assert copy["label"]["level"] == "DR"  # never below the corrected one
    assert (await client.get(f"/api/v1/syntheses/{sid}", headers=await room("marc"))).json()[
        "status"
    ] == "sent"

    await room.patch("marc", cid, {"narrative": "## Rectificatif\n\nHoraire corrigé."})
    await room.validated("marc", "sophie", cid)
    # Validated but not sent yet: the first one is still the one in force.
    assert (await client.get(f"/api/v1/syntheses/{sid}", headers=await room("marc"))).json()[
        "status"
    ] == "sent"
    await room.step("sophie", cid, "send", json={"users": ["prefet"]})

    first = (await client.get(f"/api/v1/syntheses/{sid}", headers=await room("prefet"))).json()
    assert first["status"] == "superseded"
    async with tx(app) as session:
        original = await session.get(Synthesis, uuid.UUID(sid))
        assert original is not None
        after = (
            original.title,
            original.narrative,
            list(original.entry_ids),
            dict(original.figures),
            original.label,
            original.version - 1,  # the "supersede" step is its one new version
        )
    assert after == before
    assert [a for _, a in await versions(app, sid)][-1] == "supersede"
    # The recipient has both, newest first.
    inbox = (await client.get("/api/v1/inbox", headers=await room("prefet"))).json()
    assert [i["synthesis"]["id"] for i in inbox] == [cid, sid]
