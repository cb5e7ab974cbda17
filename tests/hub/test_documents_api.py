"""Shared documents: the attachments' upload checks, a label, every read through the policy and
audited, hidden answered like missing, downloads audited, versions kept."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.hub.models import HubDocument
from hypervision.identity.principal import system_principal
from hypervision.logbook import attachments
from hypervision.records.models import RecordVersion
from hypervision.storage.blobs import BlobStore
from tests.factories import sequenced, tx
from tests.hub.world import cast

NOTE = b"Plan de circulation du 26 juillet\n"


def form(title: str = "Plan de circulation", **label: str) -> dict[str, str]:
    return {"title": title, "description": "Version du matin", **label}


async def upload(client: AsyncClient, headers: dict[str, str], **label: str) -> dict[str, object]:
    made = await client.post(
        "/api/v1/hub/documents",
        params=form(**label),
        files={"file": ("plan.txt", NOTE, "text/plain")},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    body: dict[str, object] = made.json()
    return body


async def test_share_list_read_and_download(app: FastAPI, client: AsyncClient) -> None:
    h = await cast(app, client)
    public = await upload(client, h["olga"], level="NP")
    assert public["filename"] == "plan.txt" and public["content_type"] == "text/plain"
    assert public["sha256"] == hashlib.sha256(NOTE).hexdigest()
    assert public["label"] == {"level": "NP", "need_to_know": [], "audience": []}
    secret = await upload(client, h["dr"], level="DR", need_to_know="VIP")
    own = await upload(client, h["olga"])  # no label: the author's organisation only
    assert own["label"]["audience"] == ["PREF"]  # type: ignore[index]
    listed = (await client.get("/api/v1/hub/documents", headers=h["olga"])).json()
    assert {d["id"] for d in listed["items"]} == {public["id"], own["id"]}
    seen = (await client.get("/api/v1/hub/documents", headers=h["chef"])).json()
    assert {d["id"] for d in seen["items"]} == {public["id"], secret["id"]}
    got = await client.get(f"/api/v1/hub/documents/{public['id']}/file", headers=h["chef"])
    assert got.status_code == 200 and got.content == NOTE
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in got.headers["content-security-policy"]
    # hidden looks like missing, on every surface
    for path in ("", "/file"):
        hidden = await client.get(f"/api/v1/hub/documents/{secret['id']}{path}", headers=h["olga"])
        missing = await client.get(f"/api/v1/hub/documents/{uuid.uuid4()}{path}", headers=h["olga"])
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["error"] == missing.json()["error"]
    patched = await client.patch(
        f"/api/v1/hub/documents/{secret['id']}", json={"title": "x"}, headers=h["olga"]
    )
    assert patched.status_code == 404
    await sequenced(app)
    async with tx(app) as session:
        records = list(
            await session.scalars(
                select(AuditRecord).where(AuditRecord.resource_type == "hub_document")
            )
        )
    actions = [r.action for r in records]
    assert actions.count("hub_document.create") == 3
    assert "hub_document.list" in actions and "hub_document.download" in actions
    probes = [r for r in records if r.decision == "denied"]
    assert len(probes) == 3 and all(r.resource_ids == [secret["id"]] for r in probes)


async def test_archive_and_versions(app: FastAPI, client: AsyncClient) -> None:
    h = await cast(app, client)
    doc = await upload(client, h["olga"], level="NP")
    refused = await client.patch(
        f"/api/v1/hub/documents/{doc['id']}", json={"status": "archived"}, headers=h["chef"]
    )
    assert refused.status_code == 200  # a watch officer may archive any document they see
    restored = await client.patch(
        f"/api/v1/hub/documents/{doc['id']}",
        json={"status": "active", "title": "Plan v2"},
        headers=h["olga"],
    )
    assert restored.status_code == 200 and restored.json()["version"] == 3
    other = await client.patch(
        f"/api/v1/hub/documents/{doc['id']}", json={"title": "Pris"}, headers=h["dr"]
    )
    assert other.status_code == 200  # same organisation
    assert (
        await client.patch(
            f"/api/v1/hub/documents/{doc['id']}", json={"title": "Non"}, headers=h["helene"]
        )
    ).status_code == 403  # an authority writes nothing
    archived = await client.patch(
        f"/api/v1/hub/documents/{doc['id']}", json={"status": "archived"}, headers=h["olga"]
    )
    assert archived.json()["status"] == "archived"
    listed = (await client.get("/api/v1/hub/documents", headers=h["olga"])).json()
    assert listed["items"] == []
    everything = (await client.get("/api/v1/hub/documents?archived=true", headers=h["olga"])).json()
    assert [d["id"] for d in everything["items"]] == [doc["id"]]
    async with tx(app) as session:
        kept = list(
            await session.scalars(
                select(RecordVersion.action)
                .where(RecordVersion.resource_id == uuid.UUID(str(doc["id"])))
                .order_by(RecordVersion.version)
            )
        )
    assert kept == ["create", "archive", "update", "update", "archive"]


async def test_bad_uploads_are_refused_clearly(app: FastAPI, client: AsyncClient) -> None:
    h = await cast(app, client)
    url = "/api/v1/hub/documents"
    no_file = await client.post(url, params=form(), files={"x": ("a", b"a")}, headers=h["olga"])
    assert no_file.status_code == 422 and "file" in no_file.text
    no_title = await client.post(
        url, params={"title": ""}, files={"file": ("p.txt", NOTE)}, headers=h["olga"]
    )
    assert no_title.status_code == 422 and "title" in no_title.text
    exe = await client.post(
        url, params=form(), files={"file": ("a.exe", b"MZ\x90\x00" + bytes(200))}, headers=h["olga"]
    )
    assert exe.status_code == 415
    above = await client.post(
        url, params=form(level="DR"), files={"file": ("p.txt", NOTE)}, headers=h["olga"]
    )
    assert above.status_code == 422 and above.json()["error"]["code"] == "label_refused"
    for fields in ({"need_to_know": "false"}, {"audience": "NOPE"}, {"level": "TS"}):
        odd = await client.post(
            url, params=form(**fields), files={"file": ("p.txt", NOTE)}, headers=h["olga"]
        )
        assert odd.status_code == 422, (fields, odd.text)
    json_body = await client.post(url, json={"title": "x"}, headers=h["olga"])
    assert json_body.status_code == 415
    authority = await client.post(
        url, params=form(), files={"file": ("p.txt", NOTE)}, headers=h["helene"]
    )
    assert authority.status_code == 403
    limit = app.state.settings.attachment_max_bytes
    big = await client.post(
        url, params=form(), files={"file": ("b.txt", b"a" * (limit + 1))}, headers=h["olga"]
    )
    assert big.status_code == 413
    async with tx(app) as session:
        assert list(await session.scalars(select(HubDocument))) == []


async def test_the_sweep_keeps_the_documents_files(app: FastAPI, client: AsyncClient) -> None:
    """Documents share the attachments' blob store: the orphan sweep (``hypervision files
    sweep``) must not take their files for orphans."""
    h = await cast(app, client)
    doc = await upload(client, h["olga"], level="NP")
    orphan = await blob_store_of(app).put(b"left by a crash")
    async with tx(app) as session:
        removed = await attachments.sweep_orphan_blobs(
            session=session,
            actor=system_principal("sweeper"),
            blobs=blob_store_of(app),
            older_than=timedelta(0),
            also_used=[HubDocument.storage_key],
        )
    assert removed == [orphan]
    got = await client.get(f"/api/v1/hub/documents/{doc['id']}/file", headers=h["olga"])
    assert got.status_code == 200 and got.content == NOTE


def blob_store_of(app: FastAPI) -> BlobStore:
    store: BlobStore = app.state.blobs
    return store
