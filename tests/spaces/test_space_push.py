"""A space's modules pushed through its readers' streams (docs/adr/0052), on both engines, over
a real server: each reader is sent what the page's own refresh would show them (readers the
policy tells apart get other rows, readers it cannot share one computation), only for events
they may see and only what changed, each push on record for each reader before it is sent; a
space the reader may not read is not watched (the probe on record); an event of the space
itself ends the watches, and the space's list of people is obeyed at every push."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.audit.models import AuditRecord
from hypervision.identity.models import User
from hypervision.policy.roles import Role
from hypervision.spaces.models import Space
from hypervision.web.space_push import SpacePush
from tests.factories import ENTRY, make_org, make_user, sequenced, tx
from tests.live.server import Stream, open_stream, serve
from tests.products.test_products_api import CSV, upload
from tests.spaces.test_shared_modules import world
from tests.spaces.test_spaces_api import SANTE_ONLY
from tests.web.pages import browse_as

MORE = CSV + "Beaujon;92;Urgences;25;22;0,88\n".encode("cp1252")


def watching(pid: str, sid: str) -> str:
    return f"?topic=entry&topic=space&topic=product:{pid}&space={sid}&lang=fr"


@contextlib.asynccontextmanager
async def watched_by(app: FastAPI, w: dict[str, Any], *names: str) -> AsyncIterator[list[Stream]]:
    """A real server, and the named readers' streams watching the world's space (told
    ``space.watch``)."""
    query = watching(w["pid"], w["sid"])
    async with serve(app) as base, contextlib.AsyncExitStack() as stack:
        streams = [
            await stack.enter_async_context(open_stream(base, w["headers"][name], query))
            for name in names
        ]
        for stream in streams:
            await stream.wait_for(lambda s: bool(s.of("space.watch")))
        yield streams


def pushes(stream: Stream) -> list[dict[str, str]]:
    return [e.data["modules"] for e in stream.of("space.modules")]


async def trail(app: FastAPI, **where: str) -> list[AuditRecord]:
    async with tx(app) as session:
        query = select(AuditRecord).order_by(AuditRecord.qid)
        for column, value in where.items():
            query = query.where(getattr(AuditRecord, column) == value)
        return list(await session.scalars(query))


async def test_each_reader_is_pushed_what_the_policy_lets_them_see_each_read_audited(
    app: FastAPI, client: AsyncClient
) -> None:
    w = await world(app, client)
    h, pid, sid = w["headers"], w["pid"], w["sid"]
    push: SpacePush = app.state.space_push
    async with watched_by(app, w, "prefet", "adjoint", "medecin") as streams:
        prefect, deputy, doctor = streams
        for stream in streams:
            # the text module has no live topic: never pushed
            assert stream.of("space.watch")[0].data == {
                "space": sid,
                "modules": ["fil", "lits", "total"],
            }

        imported = await upload(client, h["steward"], pid, MORE)
        assert imported.status_code == 201, imported.text
        for stream in (prefect, deputy, doctor):
            await stream.wait_for(lambda s: any("lits" in p for p in pushes(s)))
        mine, theirs = pushes(prefect)[-1], pushes(doctor)[-1]
        assert set(mine) == {"lits", "total"}  # an import: the product's modules only
        assert "Beaujon" in mine["lits"] and "Beaujon" in theirs["lits"]
        # the column rule: patient counts for the MEDICAL group alone
        assert "patients" in theirs["lits"] and "patients" not in mine["lits"]
        assert pushes(deputy)[-1] == mine  # the prefect's rights exactly: the same fragments

        # an entry only the health organisations may see: the doctor's feed is pushed, the
        # prefecture's pages are told nothing
        before = len(pushes(prefect))
        entry = {**ENTRY, "title": "Afflux aux urgences de Beaujon", "label": SANTE_ONLY}
        made = await client.post("/api/v1/entries", json=entry, headers=h["medecin"])
        assert made.status_code == 201, made.text
        await doctor.wait_for(lambda s: any("fil" in p for p in pushes(s)))
        assert "Afflux aux urgences" in pushes(doctor)[-1]["fil"]
        await asyncio.sleep(0.6)  # two gathering windows
        assert len(pushes(prefect)) == before and len(pushes(deputy)) == before
        assert not any("Afflux" in html for p in pushes(prefect) for html in p.values())
        assert push.failures == 0

    # every reader's push is on record as theirs, naming the modules and the push's reads
    reads = {str(r.id): r for r in await trail(app, actor_name="live-stream")}
    for name in ("prefet", "adjoint", "medecin"):
        records = await trail(app, actor_name=name, action="space.push")
        assert records and all(r.resource_ids[0] == sid for r in records), name
        assert all(r.resource_ids[1:] == r.detail["reads"] for r in records)
        assert all(r.surface == "stream" for r in records)
        modules = [{m["module"] for m in r.detail["modules"]} for r in records]
        assert {"lits", "total"} in modules, name
        imported = records[modules.index({"lits", "total"})]
        shown = [reads[i] for i in imported.detail["reads"]]  # each read, written once
        assert any(r.action == "product.rows" and r.resource_ids == [pid] for r in shown)

    def modules_of(records: list[AuditRecord]) -> set[str]:
        return {m["module"] for r in records for m in r.detail["modules"]}

    assert "fil" in modules_of(await trail(app, actor_name="medecin", action="space.push"))
    assert "fil" not in modules_of(await trail(app, actor_name="prefet", action="space.push"))
    assert not push.rooms and not push.watching  # the streams ended: nothing left behind


async def test_a_space_the_reader_may_not_read_is_not_watched_and_the_stream_opens(
    app: FastAPI, client: AsyncClient
) -> None:
    w = await world(app, client)
    h, pid = w["headers"], w["pid"]
    hidden = await client.post(
        "/api/v1/spaces",
        json={"title": "Cellule santé", "modules": [], "label": SANTE_ONLY},
        headers=h["medecin"],
    )
    assert hidden.status_code == 201, hidden.text
    async with serve(app) as base:
        probed = [str(hidden.json()["id"]), str(uuid.uuid4())]  # hidden, then missing
        for sid in probed:
            async with open_stream(base, h["prefet"], watching(pid, sid)) as stream:
                made = await client.post("/api/v1/entries", json=ENTRY, headers=h["prefet"])
                assert made.status_code == 201, made.text
                await stream.wait_for(lambda s: bool(s.of("entry.create")))
                assert not stream.of("space.watch") and not stream.of("space.modules")
        bad = await client.get("/api/v1/stream?space=pas-un-espace", headers=h["prefet"])
        assert bad.status_code == 422
    opened = [r.detail.get("space") for r in await trail(app, action="stream.open")]
    assert all({"id": sid, "watched": False} in opened for sid in probed)  # probes on record


async def test_an_event_of_the_space_itself_ends_its_watches(
    app: FastAPI, client: AsyncClient
) -> None:
    w = await world(app, client)
    h, pid, sid = w["headers"], w["pid"], w["sid"]
    push: SpacePush = app.state.space_push
    async with watched_by(app, w, "adjoint") as (stream,):
        assert set(push.rooms) == {uuid.UUID(sid)}
        read = await client.get(f"/api/v1/spaces/{sid}", headers=h["prefet"])
        renamed = await client.patch(
            f"/api/v1/spaces/{sid}",
            json={"title": "PC renommé"},
            headers={**h["prefet"], "If-Match": read.headers["etag"]},
        )
        assert renamed.status_code == 200, renamed.text
        await stream.wait_for(lambda s: bool(s.of("space.update")))
        await stream.wait_for(lambda s: bool(s.of("space.unwatch")))  # asks by request now
        assert not push.rooms  # the page reloads on it, and watches again
        assert (await upload(client, h["steward"], pid, MORE)).status_code == 201
        await stream.wait_for(lambda s: bool(s.of("product.import")))
        await asyncio.sleep(0.6)
        assert not stream.of("space.modules")


async def test_unchanged_modules_are_not_sent_again_and_the_people_list_is_obeyed(
    app: FastAPI, client: AsyncClient
) -> None:
    """A push sends only what changed for the group; a reader the space's list of people no
    longer names (the one rule the signature lacks) is dropped at the next push, and told."""
    w = await world(app, client)
    h, pid, sid = w["headers"], w["pid"], w["sid"]
    async with watched_by(app, w, "prefet", "adjoint") as (prefect, deputy):
        assert (await upload(client, h["steward"], pid, MORE)).status_code == 201
        await prefect.wait_for(lambda s: len(pushes(s)) == 1)
        # the same rows again: an event, the same content: nothing sent
        assert (await upload(client, h["steward"], pid, MORE)).status_code == 201
        await prefect.wait_for(lambda s: len(s.of("product.import")) == 2)
        await asyncio.sleep(0.5)
        assert len(pushes(prefect)) == 1 and len(pushes(deputy)) == 1

        async with tx(app) as session:  # the list changed under the watch, with no event
            space = await session.get(Space, uuid.UUID(sid))
            assert space is not None
            prefet = await session.scalar(select(User.id).where(User.username == "prefet"))
            space.people = [str(prefet)]
        assert (await upload(client, h["steward"], pid, CSV)).status_code == 201
        await prefect.wait_for(lambda s: len(pushes(s)) == 2)
        await deputy.wait_for(lambda s: bool(s.of("space.unwatch")))
        assert len(pushes(deputy)) == 1  # nothing more for the deputy
    # on record: the deputy's one push; the prefect's two
    assert len(await trail(app, actor_name="adjoint", action="space.push")) == 1
    assert len(await trail(app, actor_name="prefet", action="space.push")) == 2


async def test_a_security_officer_follows_a_pushed_read_to_its_readers(
    app: FastAPI, client: AsyncClient
) -> None:
    """ "Who saw this" lists the push's read (``live-stream``, as a live delivery) with a link
    to the readers it was pushed to: their ``space.push`` records name it."""
    w = await world(app, client)
    h, pid = w["headers"], w["pid"]
    await make_org(app, "SECU")
    await make_user(app, "sophie", "SECU", roles=[Role.SECURITY_OFFICER], clearance="NP")
    async with watched_by(app, w, "prefet", "adjoint") as streams:
        assert (await upload(client, h["steward"], pid, MORE)).status_code == 201
        for stream in streams:
            await stream.wait_for(lambda s: len(pushes(s)) == 1)
    await sequenced(app)
    read = next(r for r in await trail(app, actor_name="live-stream", action="product.rows"))
    assert read.resource_ids == [pid] and read.detail["readers"] == 2

    await browse_as(client, "sophie")
    product = await client.get(f"/securite/qui-a-vu?type=product&id={pid}")
    assert product.status_code == 200, product.text
    link = f"/securite/qui-a-vu?type=push&amp;id={read.id}"
    assert link in product.text and "poussée à 2 lecteurs" in product.text
    readers = await client.get(link.replace("&amp;", "&"))
    assert readers.status_code == 200, readers.text
    assert readers.text.count("space.push") == 2
    assert ">prefet<" in readers.text and ">adjoint<" in readers.text
