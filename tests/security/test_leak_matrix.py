"""The leak matrix (SECURITY.md item 1): records at every label combination, users across
clearance × organisation × need-to-know, every read surface — what each user receives equals
what the reference model (``tests.security.leak_world``) allows: zero extra, zero missing.

The count of user × record × surface cases and of mismatches is written to
``test-artifacts/leak-matrix-<engine>.json``. ``test_rls_alone_holds_on_postgresql`` runs the
same matrix with the application's SQL filter switched off, so that PostgreSQL row-level
security alone must hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from httpx import AsyncClient, Response
from sqlalchemy import select

from hypervision.alerts import service as alerts_service
from hypervision.alerts.models import AlertRule
from hypervision.audit.models import AuditRecord
from hypervision.identity.models import User
from hypervision.policy import rules
from hypervision.policy.roles import Role
from hypervision.synthesis import pdf
from tests.factories import sequenced, tx
from tests.live.server import Stream, open_stream, serve
from tests.security.leak_world import (
    COMMENT_WORD,
    COMMON_WORD,
    DERIVED_ROWS,
    FIRST_PRODUCT_FAILING,
    LOCATION_VIEW,
    ORGS,
    PRODUCT_FAILING,
    PRODUCT_ROWS,
    Builder,
    Event,
    Mark,
    Person,
    World,
    live_key,
    ok,
    product_columns,
    product_rows,
    raised,
    sees,
    sees_all,
)
from tests.synthesis.derived import synthesis_traces

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SHOWN = 40  # mismatches listed in a failure
PAGE = 8  # feed page size: several pages per reader
FULL = os.environ.get("LEAK_MATRIX_FULL") == "1"  # every pair on every per-entry surface


@dataclass
class Tally:
    """Cases checked per surface, and every mismatch in words."""

    cases: Counter[str] = field(default_factory=Counter)
    leaks: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # unexpected status, duplicates, bodies

    def ids(
        self,
        surface: str,
        person: Person | str,
        universe: Mapping[str, object],
        expected: Iterable[str],
        got: Iterable[str],
    ) -> None:
        """A list surface: one case per record of ``universe``."""
        wanted, delivered = set(expected), list(got)
        self.cases[surface] += len(universe)
        for rid, n in Counter(delivered).items():
            if n > 1:
                self.wrong.append(f"{person} | {surface} | delivered {n} times: {rid}")
        for rid in sorted(set(delivered) - wanted):
            self.leaks.append(f"{person} | {surface} | extra {universe.get(rid, '?')} [{rid}]")
        for rid in sorted(wanted - set(delivered)):
            self.missing.append(f"{person} | {surface} | missing {universe[rid]} [{rid}]")

    def one(
        self, surface: str, person: Person, record: object, visible: bool, response: Response
    ) -> bool:
        """A single-record surface: 200 when visible, else 404 (403 for a role that reads
        nothing). True when the record was delivered."""
        self.cases[surface] += 1
        want = 200 if visible else (404 if person.reads else 403)
        got = response.status_code
        if got != want:
            line = f"{person} | {surface} | {record} | expected {want}, got {got}"
            if got == 200:
                self.leaks.append(line)
            elif visible:
                self.missing.append(line)
            else:
                self.wrong.append(line)
        return got == 200

    def refused(self, surface: str, person: Person, response: Response) -> bool:
        """A whole list refused to a role without the action: True when it was (not) served
        as expected; a 200 to such a role counts as a leak of the surface."""
        if person.reads:
            if response.status_code != 200:
                self.wrong.append(f"{person} | {surface} | status {response.status_code}")
                return True
            return False
        self.cases[surface] += 1
        if response.status_code != 403:
            self.leaks.append(f"{person} | {surface} | not refused: {response.status_code}")
        return True

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def report(self) -> str:
        lines = [*self.leaks, *self.missing, *self.wrong]
        head = (
            f"{len(self.leaks)} leaks, {len(self.missing)} missing, {len(self.wrong)} other "
            f"over {self.total} cases; first mismatches:"
        )
        return "\n".join([head, *lines[:SHOWN]])


def without_request_id(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: without_request_id(v) for k, v in body.items() if k != "request_id"}
    return body


# --- surfaces ----------------------------------------------------------------------------------


def checked(person: Person, index: int, surface: int, visible: bool) -> bool:
    """Whether a per-entry surface is asked for this pair. Every visible pair is asked on
    every surface (its content is compared); an invisible pair is asked by id and on one of
    the other four surfaces in turn, so that each surface meets a quarter of the invisible
    pairs (the time budget; ``LEAK_MATRIX_FULL=1`` asks every pair everywhere). A role that
    reads nothing is asked about the first entries only: everything is refused to it."""
    if FULL:
        return True
    if not person.reads:
        return index < 3
    return visible or surface == 0 or surface == 1 + (index + len(person.name)) % 4


async def entry_surfaces(client: AsyncClient, world: World, tally: Tally, person: Person) -> None:
    """Each entry by id, its versions, comments, attachments and their download."""
    headers = world.headers[person.name]
    absent = await client.get(f"/api/v1/entries/{uuid.uuid4()}", headers=headers)
    for rec in world.entries.values():
        visible = sees(person, rec.mark)
        record = f"entry#{rec.index} {rec.mark}"
        if checked(person, rec.index, 0, visible):
            got = await client.get(f"/api/v1/entries/{rec.id}", headers=headers)
            if tally.one("entry.get", person, record, visible, got):
                if got.json()["id"] != rec.id:
                    tally.wrong.append(f"{person} | entry.get | {record} | another entry")
                references(world, tally, person, record, got.json())
            elif person.reads:
                same = without_request_id(got.json()) == without_request_id(absent.json())
                if not same or got.status_code != absent.status_code:
                    tally.wrong.append(f"{person} | entry.get | {record} | 404 unlike a random id")
        if checked(person, rec.index, 1, visible):
            versions = await client.get(f"/api/v1/entries/{rec.id}/versions", headers=headers)
            if tally.one("entry.versions", person, record, visible, versions):
                tally.ids(
                    "entry.versions",
                    person,
                    {str(v): f"{record} v{v} {m}" for v, m in rec.versions},
                    [str(v) for v, m in rec.versions if sees(person, m)],
                    [str(v["version"]) for v in versions.json()],
                )
        if checked(person, rec.index, 2, visible):
            comments = await client.get(f"/api/v1/entries/{rec.id}/comments", headers=headers)
            if tally.one("comment.list", person, record, visible, comments):
                tally.ids(
                    "comment.list",
                    person,
                    {c: f"comment {m} on {record}" for c, m in rec.comments.items()},
                    [c for c, m in rec.comments.items() if sees_all(person, [m, rec.mark])],
                    [c["id"] for c in comments.json()],
                )
        if checked(person, rec.index, 3, visible):
            listed = await client.get(f"/api/v1/entries/{rec.id}/attachments", headers=headers)
            if tally.one("attachment.list", person, record, visible, listed):
                tally.ids(
                    "attachment.list",
                    person,
                    {rec.attachment: f"attachment of {record}"},
                    [rec.attachment],
                    [a["id"] for a in listed.json()],
                )
        if checked(person, rec.index, 4, visible):
            download = await client.get(f"/api/v1/attachments/{rec.attachment}", headers=headers)
            tally.one("attachment.download", person, f"attachment of {record}", visible, download)


def references(
    world: World, tally: Tally, person: Person, record: str, read: Mapping[str, Any]
) -> None:
    """The links of a visible entry: shown when the reader may see their target, else null."""
    rec = world.entries[read["id"]]
    targets = (
        ("situation_id", rec.situation, world.situations),
        ("duplicate_of_id", rec.duplicate_of, {e.id: e.mark for e in world.entries.values()}),
    )
    for name, target, marks in targets:
        if target is None:
            continue
        tally.cases["entry.references"] += 1
        expected = target if sees(person, marks[target]) else None
        if read[name] != expected:
            kind = tally.leaks if expected is None else tally.missing
            kind.append(f"{person} | entry.references | {record} | {name} {marks[target]}")


async def situation_surfaces(
    client: AsyncClient, world: World, tally: Tally, person: Person
) -> None:
    """Situations by id and listed, and the feed filtered on each situation: a filter on a
    situation the reader may not see answers exactly like a filter on an unknown id."""
    headers = world.headers[person.name]
    universe = {sid: f"situation {m}" for sid, m in world.situations.items()}
    listed = await client.get("/api/v1/situations", headers=headers)
    if not tally.refused("situation.list", person, listed):
        tally.ids(
            "situation.list",
            person,
            universe,
            [sid for sid, m in world.situations.items() if sees(person, m)],
            [s["id"] for s in listed.json()],
        )
    unknown = await client.get(
        f"/api/v1/entries?situation_id={uuid.uuid4()}&limit=100", headers=headers
    )
    for sid, mark in world.situations.items():
        visible = sees(person, mark)
        got = await client.get(f"/api/v1/situations/{sid}", headers=headers)
        tally.one("situation.get", person, f"situation {mark}", visible, got)
        filtered = await client.get(
            f"/api/v1/entries?situation_id={sid}&limit=100", headers=headers
        )
        if tally.refused("entry.filter.situation", person, filtered):
            continue
        linked = {
            r.id: f"entry#{r.index} {r.mark} in situation {mark}"
            for r in world.entries.values()
            if r.situation == sid
        }
        tally.ids(
            "entry.filter.situation",
            person,
            linked,
            [r for r in linked if visible and sees(person, world.entries[r].mark)],
            [e["id"] for e in filtered.json()["items"]],
        )
        if not visible and filtered.json() != unknown.json():
            tally.wrong.append(f"{person} | entry.filter.situation | {mark} unlike an unknown id")


async def entry_lists(client: AsyncClient, world: World, tally: Tally, person: Person) -> None:
    """The feed (every page), search, map data and the GeoJSON export."""
    headers = world.headers[person.name]
    universe = {r.id: f"entry#{r.index} {r.mark}" for r in world.entries.values()}
    expected = [r.id for r in world.entries.values() if sees(person, r.mark)]
    feed: list[str] = []
    url = f"/api/v1/entries?limit={PAGE}"
    while True:
        page = await client.get(url, headers=headers)
        if tally.refused("entry.list", person, page):
            break
        body = page.json()
        feed += [e["id"] for e in body["items"]]
        if not body["next_cursor"]:
            tally.ids("entry.list", person, universe, expected, feed)
            break
        url = f"/api/v1/entries?limit={PAGE}&cursor={body['next_cursor']}"
    counted = await client.get(
        "/api/v1/entries/aggregate?group_by=severity&bucket=day", headers=headers
    )  # counts for charts: exactly the entries the feed shows
    if not tally.refused("entry.aggregate", person, counted):
        tally.cases["entry.aggregate"] += 1
        total = sum(g["count"] for g in counted.json()["groups"])
        if total != len(expected):
            bad = tally.leaks if total > len(expected) else tally.missing
            bad.append(f"{person} | entry.aggregate | counts {total}, sees {len(expected)}")
    found = await client.get(f"/api/v1/search?q={COMMON_WORD}&limit=100", headers=headers)
    if not tally.refused("search", person, found):
        tally.ids(
            "search", person, universe, expected, [h["entry"]["id"] for h in found.json()["items"]]
        )
    await comment_search(client, world, tally, person)
    view = await client.get(f"/api/v1/map/entries?view={LOCATION_VIEW}&zoom=15", headers=headers)
    if not tally.refused("map.entries", person, view):
        data = view.json()
        if data["clustered"]:
            tally.wrong.append(f"{person} | map.entries | clustered at street zoom")
        tally.ids("map.entries", person, universe, expected, [p["id"] for p in data["points"]])
    export = await client.get("/api/v1/map/export", headers=headers)
    if not tally.refused("map.export", person, export):
        features = export.json()["features"]
        kinds = [(f["properties"]["kind"], f["properties"]["id"]) for f in features]
        tally.ids(
            "map.export",
            person,
            universe,
            expected,
            [i for k, i in kinds if k == "entry"],
        )
        tally.ids(
            "map.export.zones",
            person,
            {z: f"zone {m}" for z, m in world.zones.items()},
            [z for z, m in world.zones.items() if sees(person, m)],
            [i for k, i in kinds if k == "zone"],
        )


async def comment_search(client: AsyncClient, world: World, tally: Tally, person: Person) -> None:
    """A word found only in comments: an entry is a hit when one of its comments is visible
    (the comment's label and its entry's), and the comment named must be a visible one."""
    headers = world.headers[person.name]
    found = await client.get(f"/api/v1/search?q={COMMENT_WORD}&limit=100", headers=headers)
    if tally.refused("search.comments", person, found):
        return
    hits = found.json()["items"]
    labels = {c: (m, r) for r in world.entries.values() for c, m in r.comments.items()}
    tally.ids(
        "search.comments",
        person,
        {r.id: f"entry#{r.index} {r.mark}" for r in world.entries.values()},
        [
            r.id
            for r in world.entries.values()
            if any(sees_all(person, [m, r.mark]) for m in r.comments.values())
        ],
        [h["entry"]["id"] for h in hits],
    )
    for hit in hits:
        comment = str(hit["comment_id"])
        tally.cases["search.comments.excerpt"] += 1
        mark, rec = labels.get(comment, (None, None))
        if mark is None or rec is None or not sees_all(person, [mark, rec.mark]):
            tally.leaks.append(f"{person} | search.comments | excerpt of comment {comment}")


async def geo_surfaces(client: AsyncClient, world: World, tally: Tally, person: Person) -> None:
    headers = world.headers[person.name]
    zones = await client.get("/api/v1/zones", headers=headers)
    universe = {z: f"zone {m}" for z, m in world.zones.items()}
    if not tally.refused("zone.list", person, zones):
        tally.ids(
            "zone.list",
            person,
            universe,
            [z for z, m in world.zones.items() if sees(person, m)],
            [z["id"] for z in zones.json()],
        )
    for zone_id, mark in world.zones.items():
        got = await client.get(f"/api/v1/zones/{zone_id}", headers=headers)
        tally.one("zone.get", person, f"zone {mark}", sees(person, mark), got)
    layers = await client.get("/api/v1/layers", headers=headers)
    if not tally.refused("layer.list", person, layers):
        tally.ids(
            "layer.list",
            person,
            {lid: f"layer {m}" for lid, m in world.layers.items()},
            [lid for lid, m in world.layers.items() if sees(person, m)],
            [layer["id"] for layer in layers.json()],
        )
    for layer_id, mark in world.layers.items():
        got = await client.get(f"/api/v1/layers/{layer_id}/features", headers=headers)
        tally.one("layer.features", person, f"layer {mark}", sees(person, mark), got)


async def hub_surfaces(client: AsyncClient, world: World, tally: Tally, person: Person) -> None:
    """The hub's documents and announcements (docs/adr/0042): lists, by id, the file."""
    headers = world.headers[person.name]
    kinds = (
        ("hub.documents", "/api/v1/hub/documents?limit=200", world.documents),
        ("hub.announcements", "/api/v1/hub/announcements?all=true&limit=200", world.announcements),
    )
    for surface, url, records in kinds:
        listed = await client.get(url, headers=headers)
        if not tally.refused(surface, person, listed):
            tally.ids(
                surface,
                person,
                {r: f"{surface} {m}" for r, m in records.items()},
                [r for r, m in records.items() if sees(person, m)],
                [item["id"] for item in listed.json()["items"]],
            )
    for doc_id, mark in world.documents.items():
        got = await client.get(f"/api/v1/hub/documents/{doc_id}", headers=headers)
        tally.one("hub.document", person, f"document {mark}", sees(person, mark), got)
        got = await client.get(f"/api/v1/hub/documents/{doc_id}/file", headers=headers)
        tally.one("hub.document.file", person, f"document {mark}", sees(person, mark), got)
    for notice_id, mark in world.announcements.items():
        got = await client.get(f"/api/v1/hub/announcements/{notice_id}", headers=headers)
        tally.one("hub.announcement", person, f"announcement {mark}", sees(person, mark), got)


async def product_surfaces(client: AsyncClient, world: World, tally: Tally, person: Person) -> None:
    """The catalogue, a product, its rows (rows and columns under the stewards' rules) and an
    aggregate over them."""
    headers = world.headers[person.name]
    every = {**world.products, **world.derived}
    listed = await client.get("/api/v1/products", headers=headers)
    if not tally.refused("product.list", person, listed):
        tally.ids(
            "product.list",
            person,
            {pid: f"product {m}" for pid, m in every.items()},
            [pid for pid, m in every.items() if sees(person, m)],
            [p["id"] for p in listed.json()],
        )
    rows_universe = {name: f"row {name}" for name in PRODUCT_ROWS}
    for product_id, mark in world.products.items():
        visible = sees(person, mark)
        got = await client.get(f"/api/v1/products/{product_id}", headers=headers)
        tally.one("product.get", person, f"product {mark}", visible, got)
        got = await client.get(f"/api/v1/products/{product_id}/rows", headers=headers)
        if tally.one("product.rows", person, f"product {mark}", visible, got):
            body = got.json()
            tally.ids(
                "product.rows",
                person,
                rows_universe,
                product_rows(person),
                [r["nom"] for r in body["rows"]],
            )
            if body["columns"] != product_columns(person) or any(
                set(r) - {"_row", *product_columns(person)} for r in body["rows"]
            ):
                tally.leaks.append(f"{person} | product.rows | columns {body['columns']}")
        got = await client.get(f"/api/v1/products/{product_id}/export?format=json", headers=headers)
        if tally.one("product.export", person, f"product {mark}", visible, got):
            exported = got.json()
            tally.ids(
                "product.export",
                person,
                rows_universe,
                product_rows(person),
                [r["nom"] for r in exported],
            )
            if any(set(r) - set(product_columns(person)) for r in exported):
                tally.leaks.append(f"{person} | product.export | columns {sorted(exported[0])}")
        got = await client.get(f"/api/v1/products/{product_id}/versions", headers=headers)
        tally.one("product.versions", person, f"product {mark}", visible, got)
        # Pending rule changes: the data stewards of the owning domain only (403 to the others
        # who see the product, 404 to those who do not).
        got = await client.get(f"/api/v1/products/{product_id}/rule-changes", headers=headers)
        tally.cases["product.rule_changes"] += 1
        steward = Role.DATA_STEWARD in person.roles and person.org == mark.owner
        want = (200 if steward else 403) if visible else (404 if person.reads else 403)
        if got.status_code != want:
            line = f"{person} | product.rule_changes | expected {want}, got {got.status_code}"
            (tally.leaks if got.status_code == 200 else tally.wrong).append(line)
        # The HTTP source and its runs (docs/adr/0029): the same stewards only.
        got = await client.get(f"/api/v1/products/{product_id}/source", headers=headers)
        tally.cases["product.source"] += 1
        if got.status_code != want:
            line = f"{person} | product.source | expected {want}, got {got.status_code}"
            (tally.leaks if got.status_code == 200 else tally.wrong).append(line)
        got = await client.get(f"/api/v1/products/{product_id}/aggregate", headers=headers)
        if tally.one("product.aggregate", person, f"product {mark}", visible, got):
            count = got.json()["rows"][0]["count"]
            if count != len(product_rows(person)):
                tally.wrong.append(f"{person} | product.aggregate | count {count}")
        first = product_id == next(iter(world.products))  # it has a second data version
        failing = FIRST_PRODUCT_FAILING if first else PRODUCT_FAILING
        await product_quality(client, tally, person, headers, product_id, mark, failing)
    await product_lineage_and_diff(client, world, tally, person)


async def space_surfaces(client: AsyncClient, world: World, tally: Tally, person: Person) -> None:
    """Spaces (ADR 0041): the list, one space and its export under the space's label; its
    modules' data as the reader, checked on the first space the reader may open."""
    headers = world.headers[person.name]
    listed = await client.get("/api/v1/spaces?limit=200", headers=headers)
    if not tally.refused("space.list", person, listed):
        tally.ids(
            "space.list",
            person,
            {sid: f"space {m}" for sid, m in world.spaces.items()},
            [sid for sid, m in world.spaces.items() if sees(person, m)],
            [s["id"] for s in listed.json()["items"]],
        )
    checked = reported = False
    for space_id, mark in world.spaces.items():
        visible = sees(person, mark)
        got = await client.get(f"/api/v1/spaces/{space_id}", headers=headers)
        tally.one("space.get", person, f"space {mark}", visible, got)
        got = await client.get(f"/api/v1/spaces/{space_id}/export", headers=headers)
        tally.one("space.export", person, f"space {mark}", visible, got)
        got = await client.get(f"/api/v1/spaces/{space_id}/modules/fil/data", headers=headers)
        if tally.one("space.module", person, f"space {mark}", visible, got) and not checked:
            checked = True
            await space_modules(client, world, tally, person, space_id, got.json())
        got = await client.get(
            f"/api/v1/spaces/{space_id}/modules/data?modules=fil,compte", headers=headers
        )
        tally.one("space.modules", person, f"space {mark}", visible, got)
        got = await client.get(f"/api/v1/spaces/{space_id}/report.pdf", headers=headers)
        if tally.one("space.report", person, f"space {mark}", visible, got) and not reported:
            reported = True
            space_report(world, tally, person, mark, got.content.decode())
        got = await client.get(f"/api/v1/spaces/{space_id}/report-schedules", headers=headers)
        report_schedules(world, tally, person, space_id, visible, got)
    delivered = await client.get("/api/v1/report-deliveries", headers=headers)
    if not tally.refused("report.deliveries", person, delivered):
        tally.ids(
            "report.deliveries",
            person,
            {sid: f"report of space {m}" for sid, m in world.spaces.items()},
            [sid for sid, m in world.spaces.items() if sees(person, m)],
            [d["space_id"] for d in delivered.json()],
        )


def report_schedules(
    world: World, tally: Tally, person: Person, space_id: str, visible: bool, got: Response
) -> None:
    """A space's report schedules: 404 to whoever may not read the space (403 to a role that
    reads nothing); to a reader, the schedule when they may edit the space, else 403."""
    surface = "space.report_schedules"
    tally.cases[surface] += 1
    if not visible:
        want = 404 if person.reads else 403
        if got.status_code != want:
            line = f"{person} | {surface} | {space_id} | expected {want}, got {got.status_code}"
            (tally.leaks if got.status_code == 200 else tally.wrong).append(line)
    elif got.status_code == 200:
        if [s["id"] for s in got.json()] != [world.report_schedules[space_id]]:
            tally.wrong.append(f"{person} | {surface} | {space_id} | {got.json()}")
    elif got.status_code != 403:
        tally.wrong.append(f"{person} | {surface} | {space_id} | status {got.status_code}")


def space_report(world: World, tally: Tally, person: Person, mark: Mark, printed: str) -> None:
    """A space's report (ADR 0045) as one reader: the entries they see and no other, the
    product rows their rules let through, and the marking of the highest level it holds."""
    seen = [eid for eid, rec in world.entries.items() if sees(person, rec.mark)]
    tally.ids(
        "space.report",
        person,
        {eid: f"entry {rec.mark}" for eid, rec in world.entries.items()},
        seen,
        [eid for eid, rec in world.entries.items() if rec.word in printed],
    )
    products = [m for m in world.products.values() if sees(person, m)]
    tally.ids("space.report", person, {n: f"row {n}" for n in PRODUCT_ROWS},
              product_rows(person) if products else [],
              [n for n in PRODUCT_ROWS if f"<td>{n}</td>" in printed])  # fmt: skip
    levels = {mark.level, *(world.entries[e].mark.level for e in seen)}
    levels |= {m.level for m in products}
    tally.cases["space.report"] += 1
    if ("DR" in levels) != ("DIFFUSION RESTREINTE" in printed):
        tally.leaks.append(f"{person} | space.report | marking for {sorted(levels)}")


async def space_modules(
    client: AsyncClient,
    world: World,
    tally: Tally,
    person: Person,
    space_id: str,
    feed: dict[str, Any],
) -> None:
    """A space's modules as one reader: the feed and the count of the entries they see; a
    table per product with the rows and columns its rules let through, or — a product they
    may not see — a placeholder equal to that of a product that never existed."""
    headers = world.headers[person.name]
    seen = [eid for eid, rec in world.entries.items() if sees(person, rec.mark)]
    universe = {eid: f"entry {rec.mark}" for eid, rec in world.entries.items()}
    tally.ids("space.module", person, universe, seen, [e["id"] for e in feed["data"]["entries"]])

    async def module(mid: str) -> dict[str, Any]:
        got = await client.get(f"/api/v1/spaces/{space_id}/modules/{mid}/data", headers=headers)
        return dict(ok(got))

    count = (await module("compte"))["data"]["value"]
    tally.cases["space.module"] += 1
    if count != len(seen):
        tally.leaks.append(f"{person} | space.module | count {count}, sees {len(seen)}")
    placeholder = {k: v for k, v in (await module("absent")).items() if k != "module_id"}
    for mid, product_id in world.space_tables.items():
        body = await module(mid)
        tally.cases["space.module"] += 1
        if not sees(person, world.products[product_id]):
            if {k: v for k, v in body.items() if k != "module_id"} != placeholder:
                tally.leaks.append(f"{person} | space.module | placeholder {mid}: {body}")
            continue
        data = body["data"]
        if body["status"] != "ok" or data["columns"] != product_columns(person):
            tally.leaks.append(f"{person} | space.module | table {mid}: {body}")
            continue
        names = [row[data["columns"].index("nom")] for row in data["rows"]]
        tally.ids("space.module", person, {n: f"row {n}" for n in PRODUCT_ROWS},
                  product_rows(person), names)  # fmt: skip
    await space_modules_together(client, world, tally, person, space_id)


async def space_modules_together(
    client: AsyncClient, world: World, tally: Tally, person: Person, space_id: str
) -> None:
    """The same modules in one answer (``/modules/data?modules=…``, ADR 0051): the feed and
    the count of what the reader sees, each product's table as its rules let through, or the
    placeholder of a product that never existed — byte for byte."""
    surface = "space.modules"
    headers = world.headers[person.name]
    tables = list(world.space_tables)
    got = await client.get(
        f"/api/v1/spaces/{space_id}/modules/data?modules=" + ",".join(
            ["fil", "compte", "absent", *tables]),
        headers=headers,
    )  # fmt: skip
    items = {i["module_id"]: i for i in ok(got)["items"]}
    if list(items) != ["fil", "compte", "absent", *tables]:
        tally.wrong.append(f"{person} | {surface} | modules {list(items)}")
        return
    seen = [eid for eid, rec in world.entries.items() if sees(person, rec.mark)]
    universe = {eid: f"entry {rec.mark}" for eid, rec in world.entries.items()}
    tally.ids(surface, person, universe, seen, [e["id"] for e in items["fil"]["data"]["entries"]])
    tally.cases[surface] += 1
    if items["compte"]["data"]["value"] != len(seen):
        tally.leaks.append(f"{person} | {surface} | count {items['compte']['data']['value']}")
    placeholder = {k: v for k, v in items["absent"].items() if k != "module_id"}
    for mid in tables:
        body = items[mid]
        tally.cases[surface] += 1
        if not sees(person, world.products[world.space_tables[mid]]):
            if {k: v for k, v in body.items() if k != "module_id"} != placeholder:
                tally.leaks.append(f"{person} | {surface} | placeholder {mid}: {body}")
            continue
        data = body["data"]
        if body["status"] != "ok" or data["columns"] != product_columns(person):
            tally.leaks.append(f"{person} | {surface} | table {mid}: {body}")
            continue
        names = [row[data["columns"].index("nom")] for row in data["rows"]]
        tally.ids(surface, person, {n: f"row {n}" for n in PRODUCT_ROWS},
                  product_rows(person), names)  # fmt: skip


async def product_quality(
    client: AsyncClient,
    tally: Tally,
    person: Person,
    headers: dict[str, str],
    product_id: str,
    mark: Mark,
    expected: dict[str, set[str]],
) -> None:
    """A product's quality (ADR 0027): the figures of what the reader may see (the product's
    own for its stewards), and the failing rows under the rules: rows and columns."""
    visible = sees(person, mark)
    got = await client.get(f"/api/v1/products/{product_id}/quality", headers=headers)
    steward = Role.DATA_STEWARD in person.roles and person.org == mark.owner
    columns = product_columns(person)
    if tally.one("product.quality", person, f"product {mark}", visible, got):
        figures = {r["rule"]["id"]: r for r in got.json()["rules"]}
        for rule_id, failing in expected.items():
            if steward:
                want: int | None = len(failing)
            else:
                want = len(failing & product_rows(person)) if rule_id in columns else None
            if figures[rule_id]["failing"] != want:
                line = f"{person} | product.quality | {rule_id} failing {figures[rule_id]}"
                tally.leaks.append(line)
    rows_universe = {name: f"row {name}" for name in PRODUCT_ROWS}
    for rule_id, failing in expected.items():
        url = f"/api/v1/products/{product_id}/quality/failures?rule={rule_id}"
        got = await client.get(url, headers=headers)
        if visible and person.reads and rule_id not in columns:
            tally.cases["product.quality_failures"] += 1
            if got.status_code != 403:
                line = f"{person} | product.quality_failures | hidden {rule_id}: {got.status_code}"
                (tally.leaks if got.status_code == 200 else tally.wrong).append(line)
            continue
        if tally.one("product.quality_failures", person, f"product {mark}", visible, got):
            body = got.json()
            tally.ids(
                "product.quality_failures",
                person,
                rows_universe,
                failing & product_rows(person),
                [r["nom"] for r in body["rows"]],
            )
            if any(set(r) - {"_row", *columns} for r in body["rows"]):
                tally.leaks.append(f"{person} | product.quality_failures | columns")


async def product_lineage_and_diff(
    client: AsyncClient, world: World, tally: Tally, person: Person
) -> None:
    """Lineage names only the products the reader may know of; a derived product's rows
    follow its own label; a diff holds the rows the rules let through and never a hidden
    column (the first product's second version changed only counts: DR readers see them)."""
    headers = world.headers[person.name]
    every = {**world.products, **world.derived}
    universe = {pid: f"product {m}" for pid, m in every.items()}
    first = next(iter(world.products))
    derived_id, derived_mark = next(iter(world.derived.items()))
    for product_id, mark in every.items():
        got = await client.get(f"/api/v1/products/{product_id}/lineage", headers=headers)
        if tally.one("product.lineage", person, f"product {mark}", sees(person, mark), got):
            linked = {first, derived_id} if product_id in (first, derived_id) else {product_id}
            tally.ids(
                "product.lineage",
                person,
                universe,
                [pid for pid in linked if sees(person, every[pid])],
                [n["id"] for n in got.json()["nodes"]],
            )
    got = await client.get(f"/api/v1/products/{derived_id}/rows", headers=headers)
    visible = sees(person, derived_mark)
    if tally.one("product.derived_rows", person, f"derived {derived_mark}", visible, got):
        rows = got.json()["rows"]
        tally.ids(
            "product.derived_rows",
            person,
            {name: f"row {name}" for name in PRODUCT_ROWS},
            DERIVED_ROWS,
            [r["nom"] for r in rows],
        )
    got = await client.get(f"/api/v1/products/{first}/diff?from=1&to=2", headers=headers)
    mark = world.products[first]
    if tally.one("product.diff", person, f"product {mark}", sees(person, mark), got):
        changes = got.json()["changes"]
        shown = "nombre" in product_columns(person)
        tally.ids(
            "product.diff",
            person,
            {name: f"row {name}" for name in PRODUCT_ROWS},
            product_rows(person) if shown else set(),
            [c["key"]["nom"] for c in changes],
        )
        if not shown and "nombre" in json.dumps(got.json()["columns"]):
            tally.leaks.append(f"{person} | product.diff | hidden column nombre")


async def synthesis_surfaces(
    client: AsyncClient, world: World, tally: Tally, person: Person
) -> None:
    """Watch officers see the syntheses their label allows; others only those sent to them."""
    headers = world.headers[person.name]

    def allowed(s_mark: Mark, recipients: frozenset[str]) -> bool:
        return sees(person, s_mark) and (person.triages or person.name in recipients)

    universe = {s.id: f"synthesis {s.mark}" for s in world.syntheses.values()}
    listed = await client.get("/api/v1/syntheses", headers=headers)
    if not tally.refused("synthesis.list", person, listed):
        tally.ids(
            "synthesis.list",
            person,
            universe,
            [s.id for s in world.syntheses.values() if allowed(s.mark, s.recipients)],
            [s["id"] for s in listed.json()],
        )
    inbox = await client.get("/api/v1/inbox", headers=headers)
    if not tally.refused("synthesis.inbox", person, inbox):
        tally.ids(
            "synthesis.inbox",
            person,
            universe,
            [
                s.id
                for s in world.syntheses.values()
                if s.sent and person.name in s.recipients and sees(person, s.mark)
            ],
            [item["synthesis"]["id"] for item in inbox.json()],
        )
    for s in world.syntheses.values():
        visible = allowed(s.mark, s.recipients)
        record = f"synthesis {s.mark} sent to {len(s.recipients)}"
        got = await client.get(f"/api/v1/syntheses/{s.id}", headers=headers)
        if tally.one("synthesis.get", person, record, visible, got):
            inside = {e: f"entry#{world.entries[e].index} in {record}" for e in s.entry_ids}
            tally.ids(
                "synthesis.get.entries",
                person,
                inside,
                [e for e in s.entry_ids if sees(person, world.entries[e].mark)],
                [e["id"] for e in got.json()["entries"]],
            )
        pdf = await client.get(f"/api/v1/syntheses/{s.id}/pdf", headers=headers)
        if tally.one("synthesis.pdf", person, record, visible, pdf):
            printed = pdf.content.decode()
            tally.ids(
                "synthesis.pdf.entries",
                person,
                {e: f"entry#{world.entries[e].index} in {record}" for e in s.entry_ids},
                [e for e in s.entry_ids if sees(person, world.entries[e].mark)],
                [e for e in s.entry_ids if world.entries[e].word in printed],
            )
        # a derived object carries at least the label of what it contains
        if sees(person, s.mark) and not all(
            sees(person, world.entries[e].mark) for e in s.entry_ids
        ):
            tally.leaks.append(f"{person} | synthesis label | {record} below its content")


async def label_requests(client: AsyncClient, world: World, tally: Tally, person: Person) -> None:
    """Pending label changes, for approvers: only on entries they can see."""
    response = await client.get("/api/v1/label-requests", headers=world.headers[person.name])
    pending = {r.pending_request: r for r in world.entries.values() if r.pending_request}
    universe = {rid: f"request on entry#{r.index} {r.mark}" for rid, r in pending.items()}
    if not person.triages:
        tally.cases["label_request.list"] += 1
        if response.status_code != 403:
            tally.leaks.append(f"{person} | label_request.list | {response.status_code}")
        return
    tally.ids(
        "label_request.list",
        person,
        universe,
        [rid for rid, r in pending.items() if sees(person, r.mark)],
        [r["id"] for r in ok(response)],
    )


async def audit_surfaces(
    app: FastAPI, client: AsyncClient, world: World, tally: Tally, person: Person
) -> int:
    """Every GET route under /api/v1/audit: the security officer reads every record of the
    trail (one case per record, all pages), everyone else is refused. Returns the route count."""
    paths = sorted(
        {
            r.path
            for r in iter_route_contexts(app.routes)
            if r.path
            and r.path.startswith("/api/v1/audit")
            and "GET" in (r.methods or ())
            and "{" not in r.path
            and r.path not in CONSOLE_PATHS  # paged by ``before``: console_surfaces
        }
    )
    for path in paths:
        if not person.audits:
            response = await client.get(path, headers=world.headers[person.name])
            tally.cases["audit"] += 1
            if response.status_code not in (403, 404):
                tally.leaks.append(f"{person} | audit {path} | {response.status_code}")
            continue
        await sequenced(app)  # the API chains the queue too, before it reads
        async with tx(app) as session:  # the trail as it stands, before this reading
            stored = set(await session.scalars(select(AuditRecord.seq)))
        seen: set[int] = set()
        after: int | None = 0
        while after is not None:
            response = await client.get(
                path, params={"after": after, "limit": 500}, headers=world.headers[person.name]
            )
            if response.status_code != 200:
                tally.missing.append(f"{person} | audit {path} | {response.status_code}")
                break
            page = response.json()
            seen.update(item["seq"] for item in page["items"])
            after = page["next_after"]
        tally.cases["audit"] += len(stored)
        tally.missing.extend(f"{person} | audit {path} | record {n}" for n in stored - seen)
    return len(paths)


async def access_review_surfaces(
    client: AsyncClient, world: World, tally: Tally, person: Person
) -> None:
    """An organisation's access review and network rules (docs/adr/0038): served to
    administrators and security officers (every member listed), refused to everyone else
    with one same answer for every organisation, known or not; an unknown one is 404 to
    those who may read."""
    may = person.audits or Role.ADMINISTRATOR in person.roles
    refusals: dict[str, set[str]] = {"review": set(), "organisation": set()}
    for code in (*ORGS, "NO-SUCH-ORG"):
        for kind, path in (
            ("review", f"/api/v1/organisations/{code}/access-review"),
            ("organisation", f"/api/v1/organisations/{code}"),
        ):
            response = await client.get(path, headers=world.headers[person.name])
            tally.cases["access_review"] += 1
            want = (200 if code in ORGS else 404) if may else 403
            got = response.status_code
            if got != want:
                line = f"{person} | {path} | expected {want}, got {got}"
                (tally.leaks if got == 200 else tally.wrong).append(line)
            elif want == 403:
                body = without_request_id(response.json())
                refusals[kind].add(json.dumps(body, sort_keys=True))
            elif want == 200 and kind == "review":
                names = {a["username"] for a in response.json()["accounts"]}
                members = {p.name for p in world.people.values() if p.org == code}
                if not members <= names:
                    tally.missing.append(f"{person} | {path} | {sorted(members - names)}")
    for kind, bodies in refusals.items():
        if len(bodies) > 1:
            tally.wrong.append(f"{person} | {kind} | refusals differ: {sorted(bodies)}")


CONSOLE_PATHS = ("/api/v1/audit/console",)
HIDDEN_TITLE = "—"


async def console_surfaces(
    app: FastAPI, client: AsyncClient, world: World, tally: Tally, person: Person
) -> None:
    """The security console (docs/adr/0039). Everyone but security officers is refused every
    console route. A security officer pages through the whole trail (but the console's own
    delivery records, kept out of it), and "who saw this" gives them an entry's title only
    when the policy lets them read the entry (a reading role and a clearance that sees it):
    else "—" and nothing of the entry's words."""
    headers = world.headers[person.name]
    some = next(iter(world.entries.values()))
    async with tx(app) as session:
        person_id = await session.scalar(select(User.id).where(User.username == person.name))
    routes_ = (
        "/api/v1/audit/console",
        f"/api/v1/audit/resources/entry/{some.id}/readers",
        f"/api/v1/audit/people/{person_id}/activity",
        f"/api/v1/audit/people/{person_id}/credentials",
    )
    if not person.audits:
        for path in routes_:
            response = await client.get(path, headers=headers)
            tally.cases["console.refused"] += 1
            if response.status_code not in (403, 404):
                tally.leaks.append(f"{person} | console {path} | {response.status_code}")
        return
    await sequenced(app)
    async with tx(app) as session:
        stored = set(
            await session.scalars(select(AuditRecord.seq).where(AuditRecord.action != "live.audit"))
        )
    seen: set[int] = set()
    before: int | None = None
    while True:
        params: dict[str, int] = {"limit": 200} | ({"before": before} if before else {})
        response = await client.get("/api/v1/audit/console", params=params, headers=headers)
        if response.status_code != 200:
            tally.missing.append(f"{person} | console | {response.status_code}")
            break
        page = response.json()
        seen.update(item["seq"] for item in page["items"])
        before = page["next_before"]
        if before is None:
            break
    tally.cases["console.trail"] += len(stored)
    tally.missing.extend(f"{person} | console | record {n}" for n in stored - seen)
    for rec in world.entries.values():
        response = await client.get(
            f"/api/v1/audit/resources/entry/{rec.id}/readers", headers=headers
        )
        tally.cases["console.titles"] += 1
        if response.status_code != 200:
            tally.missing.append(f"{person} | console.titles | {response.status_code}")
            continue
        title = response.json()["title"]
        cleared = person.reads and sees(person, rec.mark)
        if rec.word in response.text and not cleared:
            tally.leaks.append(f"{person} | console.titles | entry#{rec.index} {rec.mark}")
        if cleared and rec.word not in title:
            tally.missing.append(f"{person} | console.titles | entry#{rec.index} {rec.mark}")
        if not cleared and title != HIDDEN_TITLE:
            tally.leaks.append(f"{person} | console.titles | {title!r} for entry#{rec.index}")


async def alert_surfaces(
    app: FastAPI, client: AsyncClient, world: World, tally: Tally, person: Person
) -> int:
    """Every GET route of security alerts (``/api/v1/security/...``, ``/api/v1/alert-rules``,
    docs/adr/0040): security officers read them (ids, levels, actions), everyone else is
    refused; no answer holds an entry's word, whoever reads it. Returns the route count."""
    paths = sorted(
        {
            r.path
            for r in iter_route_contexts(app.routes)
            if r.path
            and (r.path.startswith("/api/v1/security/") or r.path == "/api/v1/alert-rules")
            and "GET" in (r.methods or ())
            and "{" not in r.path
        }
    )
    words = [COMMON_WORD, *(rec.word for rec in world.entries.values())]
    for path in paths:
        response = await client.get(path, headers=world.headers[person.name])
        tally.cases["alerts"] += 1
        if not person.audits:
            if response.status_code not in (403, 404):
                tally.leaks.append(f"{person} | alerts {path} | {response.status_code}")
            continue
        if response.status_code != 200:
            tally.missing.append(f"{person} | alerts {path} | {response.status_code}")
        elif any(word in response.text for word in words):
            tally.leaks.append(f"{person} | alerts {path} | content")
        elif path == "/api/v1/security/alerts" and not response.json()["total"]:
            tally.wrong.append(f"{person} | alerts {path} | no alert raised in the world")
    return len(paths)


async def derived_after_relabel(
    app: FastAPI, client: AsyncClient, world: World, tally: Tally
) -> None:
    """A sent synthesis never outlives its sources' labels (SECURITY.md 31): one of its
    entries is raised past some of its recipients; then, for every reader, no form of the
    synthesis (JSON read, list, inbox, PDF; the web pages for recipients) holds the entry's id
    or word unless the reader may see both the synthesis and the entry now."""
    for s in world.syntheses.values():
        if not s.sent:
            continue
        for entry_id in s.entry_ids:
            rec = world.entries[entry_id]
            up = raised(rec.mark)
            if up is None or not any(
                sees(world.people[r], rec.mark) and not sees(world.people[r], up)
                for r in s.recipients
            ):
                continue
            author = world.headers[world.author(rec.mark.owner)]
            ok(
                await client.post(
                    f"/api/v1/entries/{rec.id}/label",
                    json={"label": up.wire(), "reason": "matrice"},
                    headers=author,
                )
            )
            rec.mark = up
            rec.versions.append((rec.versions[-1][0] + 1, up))
            world.events.append(Event("entry.label", rec.id, (up,), rec.versions[-1][0]))
            for person in world.readers:
                if not person.reads:
                    continue
                found = await synthesis_traces(
                    app,
                    client,
                    username=person.name,
                    headers=world.headers[person.name],
                    synthesis_id=s.id,
                    markers=[rec.id, rec.word],
                    web=person.name in s.recipients,
                )
                tally.cases["synthesis.derived"] += len(found)
                allowed = sees(person, s.mark) and (person.triages or person.name in s.recipients)
                record = f"entry#{rec.index} raised to {up} in synthesis {s.mark}"
                if not (allowed and sees(person, up)):
                    for surface, markers in found.items():
                        if markers:
                            tally.leaks.append(f"{person} | {surface} | {record}")
                elif rec.id not in found["api.synthesis"]:
                    tally.missing.append(f"{person} | api.synthesis | {record}")
            return
    raise AssertionError("no sent synthesis has an entry to raise past a recipient")


STREAMS_AT_ONCE = 6  # readers per wave: each wave ends with one public entry


async def live_stream(app: FastAPI, client: AsyncClient, world: World, tally: Tally) -> None:
    """Every reader resumes the stream from the first event (Last-Event-ID: 0): what arrives
    equals the events whose every label, at the time and now, the model allows (an entry
    raised since is not replayed), and no event names a situation the reader may not see.
    Readers come in waves; a public entry, seen by everyone, marks the end of each wave's
    catch-up."""
    now: dict[str, tuple[Mark, ...]] = {}
    for rec in world.entries.values():
        now[rec.id] = now[rec.attachment] = (rec.mark,)
        now.update({c: (m, rec.mark) for c, m in rec.comments.items()})
    now.update({sid: (m,) for sid, m in world.situations.items()})
    now.update({pid: (m,) for pid, m in {**world.products, **world.derived}.items()})
    now.update({aid: (m,) for aid, m in world.announcements.items()})
    now.update({sid: (m,) for sid, m in world.spaces.items()})
    universe = {e.key: " & ".join(map(str, e.marks)) for e in world.events}
    readers = [p for p in world.readers if p.reads]
    for person in world.readers:
        if not person.reads:
            refused = await client.get("/api/v1/stream", headers=world.headers[person.name])
            tally.refused("live.stream", person, refused)
    author = next(p for p in readers if p.triages and p.clearance == "DR")
    ends: set[str] = set()
    received: dict[str, list[str]] = {}
    # Each stream watches a space (ADR 0052): the first the reader may see, else one it may
    # not (not watched: no space.watch, nothing pushed).
    watched: dict[str, tuple[str, bool]] = {}
    for person in readers:
        mine = [sid for sid, m in world.spaces.items() if sees(person, m)]
        hidden = [sid for sid, m in world.spaces.items() if not sees(person, m)]
        watched[person.name] = (mine[0], True) if mine else (hidden[0], False)
    async with serve(app) as base:
        for start in range(0, len(readers), STREAMS_AT_ONCE):
            wave = readers[start : start + STREAMS_AT_ONCE]
            async with contextlib.AsyncExitStack() as stack:
                opened = await asyncio.gather(
                    *(
                        stack.enter_async_context(
                            open_stream(
                                base,
                                world.headers[p.name],
                                f"?space={watched[p.name][0]}&lang=fr",
                                extra={"Last-Event-ID": "0"},
                            )
                        )
                        for p in wave
                    )
                )
                end = ok(
                    await client.post(
                        "/api/v1/entries",
                        json={
                            "title": "Fin de rattrapage",
                            "category": "security",
                            "label": {"level": "NP", "need_to_know": [], "audience": []},
                        },
                        headers=world.headers[author.name],
                    ),
                    201,
                )["id"]
                ends.add(end)

                def ended(stream: Stream, end: str = end) -> bool:
                    return any(e.data.get("resource_id") == end for e in stream.events)

                await asyncio.gather(*(s.wait_for(ended, timeout=30) for s in opened))
                watching = [(p, s) for p, s in zip(wave, opened, strict=True) if watched[p.name][1]]
                await asyncio.gather(*(s.wait_for(pushed_feed, timeout=30) for _, s in watching))
                for person, stream in zip(wave, opened, strict=True):
                    space_push(world, tally, person, stream, watched[person.name][1], ends)
                for person, stream in zip(wave, opened, strict=True):
                    for event in stream.events:
                        target = event.data.get("situation_id")
                        tally.cases["live.references"] += 1
                        if target and not sees(person, world.situations[target]):
                            tally.leaks.append(f"{person} | live.references | {event.data}")
                    received[person.name] = [
                        live_key(e.event or "", e.data["resource_id"], e.data.get("version"))
                        for e in stream.events
                        if e.id is not None and e.data.get("resource_id") not in ends
                    ]
    for person in readers:
        tally.ids(
            "live.stream",
            person,
            universe,
            [
                e.key
                for e in world.events
                if sees_all(person, e.marks) and sees_all(person, now[e.resource_id])
            ],
            received[person.name],
        )


def pushed_feed(stream: Stream) -> bool:
    return any("fil" in e.data.get("modules", {}) for e in stream.of("space.modules"))


FEED_LINK = re.compile(r'href="/main-courante/([0-9a-f-]{36})"')


def space_push(
    world: World, tally: Tally, person: Person, stream: Stream, visible: bool, ends: set[str]
) -> None:
    """What a watched space's stream pushed (ADR 0052): the feed's latest fragment lists the
    entries the reader sees (the catch-up entries aside); a space the reader may not see is
    not watched and nothing of it is pushed."""
    surface = "space.push"
    if not visible:
        tally.cases[surface] += 1
        if stream.of("space.watch") or stream.of("space.modules"):
            tally.leaks.append(f"{person} | {surface} | a hidden space was watched")
        return
    feed = [
        e.data["modules"]["fil"] for e in stream.of("space.modules") if "fil" in e.data["modules"]
    ]
    links = [eid for eid in FEED_LINK.findall(feed[-1]) if eid not in ends]
    seen = [eid for eid, rec in world.entries.items() if sees(person, rec.mark)]
    universe = {eid: f"entry {rec.mark}" for eid, rec in world.entries.items()}
    tally.ids(surface, person, universe, seen, links)


# --- the matrix ------------------------------------------------------------------------------

# The matrix declares the protected kinds it covers (hypervision/kinds.py): kind -> the surfaces
# on which that kind's records are checked. tests/records/test_registry.py fails when a
# registered kind is missing here; the matrix fails when a surface named here checked nothing.
COVERS: dict[str, tuple[str, ...]] = {
    "entry": (
        "entry.get",
        "entry.list",
        "entry.aggregate",
        "entry.versions",
        "map.entries",
        "live.stream",
        "space.push",
    ),
    "situation": ("situation.get", "situation.list", "entry.references", "live.references"),
    "zone": ("zone.get", "zone.list", "map.export.zones"),
    "layer": ("layer.list", "layer.features"),
    "synthesis": ("synthesis.get", "synthesis.list", "synthesis.pdf"),
    "comment": ("comment.list", "search.comments", "live.stream"),
    "attachment": ("attachment.list", "attachment.download", "live.stream"),
    "layer_feature": ("layer.features",),
    "synthesis_recipient": ("synthesis.inbox",),
    "product": (
        "product.list",
        "product.get",
        "product.rows",
        "product.export",
        "product.aggregate",
        "product.lineage",
        "product.diff",
    ),
    "product_derivation": ("product.derived_rows", "product.lineage"),
    "product_input": ("product.lineage",),
    "product_version": ("product.versions",),
    "product_rule_change": ("product.rule_changes",),
    "product_source": ("product.source",),
    "product_source_run": ("product.source",),
    "product_quality_run": ("product.quality",),
    "product_quality_failure": ("product.quality_failures",),
    "opendata_publication": (
        "opendata.datasets",
        "opendata.dataset",
        "opendata.page",
        "opendata.catalogue",
        "opendata.schema",
    ),
    "opendata_release": ("opendata.dataset", "opendata.download"),
    "opendata_row": ("opendata.rows", "opendata.download"),
    "space": (
        "space.list",
        "space.get",
        "space.export",
        "space.module",
        "space.modules",
        "space.report",
    ),
    "report_schedule": ("space.report_schedules",),
    "report_delivery": ("report.deliveries",),
    "hub_document": ("hub.documents", "hub.document", "hub.document.file"),
    "announcement": ("hub.announcements", "hub.announcement", "live.stream"),
}

READ_SURFACES = (
    entry_surfaces,
    entry_lists,
    situation_surfaces,
    geo_surfaces,
    hub_surfaces,
    product_surfaces,
    synthesis_surfaces,
    space_surfaces,
    label_requests,
)


def printed_html(html: str) -> bytes:
    """Stands in for WeasyPrint (about a second a page here): the "PDF" is the HTML that
    would be printed, so that what it contains can be checked too. The PDF itself is tested
    in tests/synthesis."""
    return b"%PDF-stub\n" + html.encode()


PUBLIC_ROWS = {"alpha", "gamma"}  # the first product's rows for everyone ("tous")
PUBLIC_COLUMNS = ["nom", "portee"]


async def public_surfaces(client: AsyncClient, world: World, tally: Tally) -> None:
    """The public principal (ADR 0035): an anonymous client on every public route sees the
    published datasets and their rows for everyone, nothing else; unpublished, refused and
    unknown slugs answer the same 404; a withdrawn dataset 410."""
    anonymous = "public (anonymous)"
    published = {s for s, state in world.publications.items() if state == "published"}
    listing = ok(await client.get("/opendata/api/datasets?size=100"))
    tally.ids(
        "opendata.datasets",
        anonymous,
        {s: f"dataset {s}" for s in world.publications},
        published,
        [d["slug"] for d in listing["datasets"]],
    )
    html = await client.get("/opendata")
    tally.cases["opendata.page"] += 1
    shown = [s for s in set(world.publications) - published if f'/opendata/{s}"' in html.text]
    if "beta" in html.text or shown:
        tally.leaks.append(f"{anonymous} | opendata.page | catalogue shows {shown}")
    for document in ("/catalogue.jsonld", "/catalogue.ttl"):  # the DCAT-AP catalogue
        dcat = await client.get(document)
        tally.cases["opendata.catalogue"] += 1
        named = [s for s in set(world.publications) - published if f"/opendata/{s}#" in dcat.text]
        if dcat.status_code != 200 or "beta" in dcat.text or named:
            tally.leaks.append(f"{anonymous} | {document} | {dcat.status_code} names {named}")
    unknown = await client.get("/opendata/api/datasets/inconnu")
    assert unknown.status_code == 404
    product_slugs = [f"produit-{i}" for i in range(len(world.products))] + ["produit-derive"]
    probes = {**world.publications, **{s: "never" for s in product_slugs}}
    probes.update({"jeu-colonne": "refused", "jeu-lignes": "refused"})
    for slug, state in probes.items():
        want = {"published": 200, "withdrawn": 410}.get(state, 404)
        paths = (
            ("opendata.dataset", f"/opendata/api/datasets/{slug}"),
            ("opendata.rows", f"/opendata/api/datasets/{slug}/rows?size=100"),
            ("opendata.schema", f"/opendata/api/datasets/{slug}/schema.json"),
            ("opendata.download", f"/opendata/datasets/{slug}/releases/1/data.json"),
            ("opendata.download", f"/opendata/datasets/{slug}/releases/latest/data.csv"),
            ("opendata.page", f"/opendata/{slug}"),
        )
        for surface, path in paths:
            got = await client.get(path)
            tally.cases[surface] += 1
            if got.status_code != want:
                line = f"{anonymous} | {surface} | {slug} ({state}) | {want}, got {got.status_code}"
                (tally.leaks if got.status_code == 200 else tally.wrong).append(line)
                continue
            if (
                want == 404
                and surface != "opendata.page"
                and without_request_id(got.json()) != without_request_id(unknown.json())
            ):
                tally.wrong.append(f"{anonymous} | {surface} | {slug}: another 404 body")
            if want != 200:
                continue
            if "beta" in got.text or '"nombre"' in got.text:
                tally.leaks.append(f"{anonymous} | {surface} | {slug}: hidden data")
            if surface == "opendata.rows":
                body = got.json()
                if [f["name"] for f in body["fields"]] != PUBLIC_COLUMNS:
                    tally.leaks.append(f"{anonymous} | {surface} | columns {body['fields']}")
                tally.ids(
                    surface,
                    anonymous,
                    {n: f"row {n}" for n in PRODUCT_ROWS},
                    PUBLIC_ROWS,
                    [r["nom"] for r in body["rows"]],
                )


async def run_matrix(
    app: FastAPI, client: AsyncClient, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf, "pdf_of", printed_html)
    started = time.perf_counter()
    async with tx(app) as session:  # alerts on every reader's reads: the security surfaces
        await alerts_service.ensure_state(session)  # have alerts to show (docs/adr/0040)
        rule = await session.scalar(select(AlertRule).where(AlertRule.kind == "bulk_reads"))
        assert rule is not None
        rule.params, rule.version = {**rule.params, "threshold": 1}, rule.version + 1
    world = await Builder(app, client).build()
    await sequenced(app)
    async with tx(app) as session:
        await app.state.alerts.run(session)
    built = time.perf_counter() - started
    tally = Tally()
    audit_routes = 0
    for person in world.readers:
        for surfaces in READ_SURFACES:
            await surfaces(client, world, tally, person)
        audit_routes = await audit_surfaces(app, client, world, tally, person)
        await access_review_surfaces(client, world, tally, person)
        await console_surfaces(app, client, world, tally, person)
        audit_routes += await alert_surfaces(app, client, world, tally, person)
    await public_surfaces(client, world, tally)
    read = time.perf_counter() - started - built
    await derived_after_relabel(app, client, world, tally)
    await live_stream(app, client, world, tally)
    for kind, names in COVERS.items():
        for surface in names:
            if not tally.cases[surface]:
                tally.wrong.append(f"{kind} | {surface} | no case checked")
    seconds = time.perf_counter() - started
    records = (
        len(world.entries)
        + sum(len(r.comments) + 1 for r in world.entries.values())
        + len(world.zones)
        + len(world.layers)
        + len(world.syntheses)
        + len(world.situations)
    )
    summary = {
        "engine": name,
        "users": len(world.people),
        "records": records,
        "entries": len(world.entries),
        "events": len(world.events),
        "surfaces": len(tally.cases),
        "cases": tally.total,
        "cases_by_surface": dict(sorted(tally.cases.items())),
        "leaks": len(tally.leaks),
        "missing": len(tally.missing),
        "other": len(tally.wrong),
        "audit_routes": audit_routes,
        "build_seconds": round(built, 1),
        "seconds": round(seconds, 1),
        "read_seconds": round(read, 1),
        "first_mismatches": [*tally.leaks, *tally.missing, *tally.wrong][:SHOWN],
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"leak-matrix-{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(  # noqa: T201
        f"\nleak matrix [{name}]: {summary['users']} users, {records} records, "
        f"{summary['surfaces']} surfaces, {tally.total} cases, {len(tally.leaks)} leaks, "
        f"{len(tally.missing)} missing, {len(tally.wrong)} other, {seconds:.1f} s"
    )
    if tally.leaks or tally.missing or tally.wrong:
        pytest.fail(tally.report(), pytrace=False)


def engine_of(app: FastAPI) -> str:
    return str(app.state.engine.dialect.name)


# Both engines; on SQLite (the application's filter, no row-level security behind it) in make
# test-deep, which CI runs after make test: the two runs together took over four minutes.
@pytest.mark.parametrize(
    "database_url",
    [pytest.param("sqlite", marks=pytest.mark.deep), "postgresql"],
    indirect=True,
)
async def test_leak_matrix(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_matrix(app, client, engine_of(app), monkeypatch)


@pytest.mark.deep  # the longest test of all: make test-deep, run by CI after make test
async def test_rls_alone_holds_on_postgresql(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The application's SQL filter off: PostgreSQL row-level security must hold alone."""
    if engine_of(app) != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    monkeypatch.setattr(rules, "SQL_FILTER_ENABLED", False)
    await run_matrix(app, client, "postgresql-rls-only", monkeypatch)
