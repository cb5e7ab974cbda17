"""The leak matrix's world and its reference model.

An organisation tree, readers covering clearance × organisation × need-to-know (with the roles
each surface needs), and records at every label combination, all made through the API so that
the real write paths run: entries (located, with a distinctive word, edited, labels raised or
lowered with a second person's approval), comments with their own labels, attachments, zones,
layers and syntheses sent to recipients. Every step is also written down here — the labels each
record had, the live events it caused — so that what a reader may receive is computed by the
model below, restated from DESIGN.md (Concepts: Label) and ADR 0004, never by the
application's policy code.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response

from hypervision.policy.roles import Role
from hypervision.reports import schedules as report_schedules
from tests.factories import make_group, make_org, make_user, sign_in

# --- the reference model ----------------------------------------------------------------------

LEVELS = ("NP", "DR")  # the default settings' levels, lowest first
GROUPS = ("VIP", "RENS")  # need-to-know groups
NTK: tuple[frozenset[str], ...] = (frozenset(), frozenset(GROUPS[:1]), frozenset(GROUPS))
# ministry ── service;  an unrelated organisation
TREE: Mapping[str, str | None] = {"MIN": None, "SVC": "MIN", "OTHER": None}
ORGS = tuple(TREE)
AUDIENCES: tuple[frozenset[str], ...] = (frozenset(), frozenset({"SVC"}), frozenset({"MIN"}))
READ_ROLES = frozenset({Role.OFFICER, Role.WATCH_OFFICER, Role.AUTHORITY, Role.DATA_STEWARD})


@dataclass(frozen=True)
class Mark:
    """A label as the model sees it: organisation codes, not ids."""

    level: str
    ntk: frozenset[str]
    audience: frozenset[str]
    owner: str

    def wire(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "need_to_know": sorted(self.ntk),
            "audience": sorted(self.audience),
        }

    def __str__(self) -> str:
        ntk = "+".join(sorted(self.ntk)) or "-"
        audience = "+".join(sorted(self.audience)) or "all"
        return f"{self.level}/ntk:{ntk}/aud:{audience}/owner:{self.owner}"


@dataclass(frozen=True)
class Person:
    name: str
    org: str
    clearance: str
    groups: frozenset[str]
    roles: tuple[Role, ...]

    @property
    def reads(self) -> bool:
        return bool(READ_ROLES & set(self.roles))

    @property
    def triages(self) -> bool:
        return Role.WATCH_OFFICER in self.roles

    @property
    def audits(self) -> bool:
        return Role.SECURITY_OFFICER in self.roles

    def __str__(self) -> str:
        groups = "+".join(sorted(self.groups)) or "-"
        roles = ",".join(r.value for r in self.roles)
        return f"{self.name}({self.clearance}, {self.org}, ntk:{groups}, {roles})"


def lineage(org: str) -> list[str]:
    chain: list[str] = []
    current: str | None = org
    while current is not None:
        chain.append(current)
        current = TREE[current]
    return chain


def sees(person: Person, mark: Mark) -> bool:
    """DESIGN.md: clearance >= level, need_to_know ⊆ groups, and (audience empty, or the
    reader's organisation owns the record, or lies under an audience organisation). Roles
    without a read action see nothing (ADR 0004: the administrator reads no operational data,
    the security officer only the audit trail)."""
    if not person.reads:
        return False
    if LEVELS.index(person.clearance) < LEVELS.index(mark.level):
        return False
    if not mark.ntk <= person.groups:
        return False
    if not mark.audience:
        return True
    return person.org == mark.owner or any(org in mark.audience for org in lineage(person.org))


def sees_all(person: Person, marks: Iterable[Mark]) -> bool:
    return all(sees(person, m) for m in marks)


def raised(mark: Mark) -> Mark | None:
    """One step more protective, or None when it cannot be raised."""
    if mark.level != LEVELS[-1]:
        return Mark(LEVELS[-1], mark.ntk, mark.audience, mark.owner)
    if len(mark.ntk) < len(GROUPS):
        return Mark(mark.level, frozenset(GROUPS[: len(mark.ntk) + 1]), mark.audience, mark.owner)
    if not mark.audience:
        return Mark(mark.level, mark.ntk, frozenset({mark.owner}), mark.owner)
    return None


def lowered(mark: Mark) -> Mark | None:
    """One step less protective (needs a second person's approval), or None."""
    if mark.level != LEVELS[0]:
        return Mark(LEVELS[0], mark.ntk, mark.audience, mark.owner)
    if mark.ntk:
        return Mark(mark.level, frozenset(sorted(mark.ntk)[:-1]), mark.audience, mark.owner)
    if mark.audience:
        return Mark(mark.level, mark.ntk, frozenset(), mark.owner)
    return None


# --- what was made --------------------------------------------------------------------------


@dataclass
class EntryRec:
    id: str
    index: int
    word: str
    category: str
    mark: Mark  # current
    versions: list[tuple[int, Mark]] = field(default_factory=list)
    comments: dict[str, Mark] = field(default_factory=dict)
    attachment: str = ""
    pending_request: str | None = None
    etag: str = ""
    situation: str | None = None  # linked situation
    duplicate_of: str | None = None


@dataclass
class SynthesisRec:
    id: str
    mark: Mark
    entry_ids: list[str]
    recipients: frozenset[str]
    sent: bool


@dataclass(frozen=True)
class Event:
    """A live event as the model predicts it: what it is about and every label it carries."""

    type: str
    resource_id: str
    marks: tuple[Mark, ...]
    version: int | None = None  # of a versioned record (entries, situations)

    @property
    def key(self) -> str:
        return live_key(self.type, self.resource_id, self.version)


def live_key(type_: str, resource_id: str, version: int | None) -> str:
    """One event, as the model and a stream name it: two label changes of one entry differ."""
    return f"{type_} {resource_id}" + (f" v{version}" if version is not None else "")


@dataclass
class World:
    people: dict[str, Person] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    entries: dict[str, EntryRec] = field(default_factory=dict)
    zones: dict[str, Mark] = field(default_factory=dict)
    layers: dict[str, Mark] = field(default_factory=dict)
    syntheses: dict[str, SynthesisRec] = field(default_factory=dict)
    situations: dict[str, Mark] = field(default_factory=dict)
    products: dict[str, Mark] = field(default_factory=dict)
    derived: dict[str, Mark] = field(default_factory=dict)  # derived products (ADR 0028)
    # Open data (ADR 0035): slug -> state ("published", "proposed", "withdrawn") of every
    # publication made, and the product slugs (never published) a prober might try.
    publications: dict[str, str] = field(default_factory=dict)
    # The hub (docs/adr/0042): shared documents, and announcements published by the CNCS
    # (an organisation of its own, whose publisher is not one of the readers).
    documents: dict[str, Mark] = field(default_factory=dict)
    announcements: dict[str, Mark] = field(default_factory=dict)
    # Spaces (ADR 0041), one per label of SHAPE_LABELS, each with the same modules: the feed,
    # a count of entries, a table per data product (module id -> product id) and one over a
    # product that does not exist.
    spaces: dict[str, Mark] = field(default_factory=dict)
    space_tables: dict[str, str] = field(default_factory=dict)
    # Reports (ADR 0045): space id -> its report schedule, sent once to every organisation
    # (each member gets the report as themselves, or nothing when they may not read it).
    report_schedules: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    @property
    def readers(self) -> list[Person]:
        return list(self.people.values())

    def author(self, org: str) -> str:
        return f"{org.lower()}-dr-2"

    def steward(self, org: str) -> str:
        return f"{org.lower()}-steward"


ANNOUNCER_ORG = "MININT-CNCS"  # the default of settings.hub_announcers
ANNOUNCER = "cncs-chef"
COMMON_WORD = "zorglub"  # in every entry's title
COMMENT_WORD = "quetzalcoatl"  # in comments only
LOCATION_VIEW = "2.20,48.80,2.50,48.95"
# Entries with these labels also carry a category that a synthesis will gather.
SYNTHESIS_CATEGORIES: Mapping[tuple[str, frozenset[str], frozenset[str]], str] = {
    ("NP", frozenset(), frozenset()): "health",
    ("DR", frozenset(), frozenset()): "transport",
    ("NP", frozenset(), frozenset({"SVC"})): "traffic",
    ("DR", frozenset(GROUPS), frozenset({"MIN"})): "rescue",
}
# Labels given to the second comment of each entry, in turn.
COMMENT_LABELS: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    ("NP", frozenset(), frozenset()),
    ("DR", frozenset(), frozenset()),
    ("NP", frozenset(GROUPS[1:]), frozenset()),
    ("NP", frozenset(), frozenset({"OTHER"})),
    ("NP", frozenset(), frozenset({"SVC"})),
)
# Zones and layers: one per label below, owned in turn by each organisation.
SHAPE_LABELS: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    ("NP", frozenset(), frozenset()),
    ("DR", frozenset(), frozenset()),
    ("NP", frozenset(GROUPS[:1]), frozenset()),
    ("NP", frozenset(), frozenset({"SVC"})),
    ("DR", frozenset(GROUPS), frozenset({"MIN"})),
    ("NP", frozenset(), frozenset({"OTHER"})),
)
# Data products: rows for everyone or for the VIP group; the count column for DR readers.
PRODUCT_SCHEMA = {
    "fields": [
        {"name": "nom", "type": "string"},
        {"name": "portee", "type": "string"},
        {"name": "nombre", "type": "integer"},
    ],
    "primaryKey": ["nom"],
}
PRODUCT_RULES = {
    "rows": [
        {"effect": "allow", "when": {"op": "eq", "left": {"rec": "portee"},
                                     "right": {"value": "tous"}}},
        {"effect": "allow", "when": {"op": "contains", "left": {"user": "groups"},
                                     "right": {"value": GROUPS[0]}}},
    ],
    "rows_default": "deny",
    "columns": [
        {"columns": ["nombre"], "effect": "deny",
         "when": {"op": "lt", "left": {"user": "clearance"}, "right": {"value": "DR"}}},
    ],
}  # fmt: skip
PRODUCT_ROWS = {"alpha": "tous", "beta": GROUPS[0], "gamma": "tous"}
# Quality rules (ADR 0027): "portee" fails on beta (a row for the VIP group only), "nombre"
# (a column for DR readers only) on beta and gamma.
PRODUCT_QUALITY = [
    {"id": "portee", "kind": "allowed", "field": "portee", "values": ["tous"]},
    {"id": "nombre", "kind": "range", "field": "nombre", "max": 0},
]
PRODUCT_FAILING = {"portee": {"beta"}, "nombre": {"beta", "gamma"}}
# The first product's second version (below) adds 10 to every count: every row fails "nombre".
FIRST_PRODUCT_FAILING = {"portee": {"beta"}, "nombre": set(PRODUCT_ROWS)}
PRODUCT_CSV = ("nom;portee;nombre\n" + "".join(
    f"{name};{scope};{n}\n" for n, (name, scope) in enumerate(PRODUCT_ROWS.items())
)).encode()  # fmt: skip


def product_rows(person: Person) -> set[str]:
    """The rows of a product (visible to ``person``) that its rules let through."""
    return {n for n, scope in PRODUCT_ROWS.items() if scope == "tous" or GROUPS[0] in person.groups}


# The first product gets a second data version: every count changes (a diff shows it to DR
# readers only, the column being hidden from the others). A derived product keeps its rows
# for everyone ("tous"), names and counts, under a label above its source's.
PRODUCT_CSV_2 = ("nom;portee;nombre\n" + "".join(
    f"{name};{scope};{n + 10}\n" for n, (name, scope) in enumerate(PRODUCT_ROWS.items())
)).encode()  # fmt: skip
DERIVED_ROWS = {n for n, scope in PRODUCT_ROWS.items() if scope == "tous"}
DERIVED_LABEL: tuple[str, frozenset[str], frozenset[str]] = (
    "DR",
    frozenset(GROUPS[:1]),
    frozenset(),
)


def product_columns(person: Person) -> list[str]:
    return ["nom", "portee"] + (["nombre"] if person.clearance == LEVELS[-1] else [])


ROLE_CYCLE = (Role.OFFICER, Role.WATCH_OFFICER, Role.AUTHORITY, Role.DATA_STEWARD)


def word_for(index: int) -> str:
    """A distinctive, letters-only word per entry (stemmers leave it alone)."""
    letters = "bcdfghjklmnpqrstvwxz"
    return "kw" + letters[index // len(letters)] + letters[index % len(letters)] + "ux"


def ok(response: Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json() if response.content else None


def mark_of(read: Mapping[str, Any], owner: str) -> Mark:
    """A label as the API presents it (codes)."""
    return Mark(read["level"], frozenset(read["need_to_know"]), frozenset(read["audience"]), owner)


class Builder:
    """Makes the world through the API, writing down what the model needs."""

    def __init__(self, app: FastAPI, client: AsyncClient) -> None:
        self.app, self.client, self.world = app, client, World()
        self.started = datetime.now(UTC)

    def h(self, name: str) -> dict[str, str]:
        return self.world.headers[name]

    async def build(self) -> World:
        await self._people()
        for index, (level, ntk, audience) in enumerate(itertools.product(LEVELS, NTK, AUDIENCES)):
            await self._entry(index, level, ntk, audience)
        for index, rec in enumerate(list(self.world.entries.values())):
            await self._change_label(index, rec)
            await self._second_comment(index, rec)
        await self._shapes()
        await self._hub()
        await self._products()
        await self._syntheses()
        await self._links()
        await self._spaces()
        await self._reports()
        return self.world

    # --- people ------------------------------------------------------------------------

    async def _people(self) -> None:
        for group in GROUPS:
            await make_group(self.app, group)
        for org, parent in TREE.items():
            await make_org(self.app, org, parent)
        specs: list[Person] = []
        for index, (clearance, org, ntk) in enumerate(itertools.product(LEVELS, ORGS, NTK)):
            name = f"{org.lower()}-{clearance.lower()}-{len(ntk)}"
            role = ROLE_CYCLE[index % len(ROLE_CYCLE)]
            if clearance == LEVELS[-1] and len(ntk) == len(GROUPS):
                role = Role.WATCH_OFFICER  # the authors: one per organisation
            specs.append(Person(name, org, clearance, ntk, (role,)))
        everything = frozenset(GROUPS)
        for org in ORGS:  # the data products' stewards: one per organisation
            specs.append(Person(f"{org.lower()}-steward", org, "DR", everything,
                                (Role.DATA_STEWARD,)))  # fmt: skip
        # A second steward of the first product's domain releases the product derived from
        # it (four eyes, ADR 0028).
        specs.append(Person(f"{ORGS[0].lower()}-steward-2", ORGS[0], "DR", everything,
                            (Role.DATA_STEWARD,)))  # fmt: skip
        specs.append(Person("sec-officer", "MIN", "DR", everything, (Role.SECURITY_OFFICER,)))
        specs.append(Person("habilitations", "MIN", "DR", everything, (Role.ADMINISTRATOR,)))
        for person in specs:
            await make_user(
                self.app,
                person.name,
                person.org,
                roles=person.roles,
                clearance=person.clearance,
                groups=sorted(person.groups),
            )
            self.world.people[person.name] = person
            self.world.headers[person.name] = await sign_in(self.client, person.name)

    # --- entries -----------------------------------------------------------------------

    def _event(
        self, type_: str, resource_id: str, *marks: Mark, version: int | None = None
    ) -> None:
        self.world.events.append(Event(type_, resource_id, marks, version))

    async def _entry(
        self, index: int, level: str, ntk: frozenset[str], audience: frozenset[str]
    ) -> None:
        owner = ORGS[(LEVELS.index(level) + NTK.index(ntk) + AUDIENCES.index(audience)) % 3]
        mark = Mark(level, ntk, audience, owner)
        author = self.world.author(owner)
        word = word_for(index)
        category = SYNTHESIS_CATEGORIES.get((level, ntk, audience), "security")
        body = {
            "title": f"Relevé {COMMON_WORD} {word}",
            "body": f"Observation {word} au point {index}.",
            "category": category,
            "severity": "major",
            "occurred_at": (self.started - timedelta(hours=3, minutes=index)).isoformat(),
            "location": {"type": "Point", "coordinates": [2.25 + index * 0.01, 48.85]},
            "tags": ["matrice"],
            "label": mark.wire(),
        }
        created = await self.client.post("/api/v1/entries", json=body, headers=self.h(author))
        data = ok(created, 201)
        assert mark_of(data["label"], owner) == mark, data["label"]
        rec = EntryRec(data["id"], index, word, category, mark, [(1, mark)])
        rec.etag = created.headers["etag"]
        self.world.entries[rec.id] = rec
        self._event("entry.create", rec.id, mark, version=1)
        # the first comment carries the entry's label (the default)
        comment = ok(
            await self.client.post(
                f"/api/v1/entries/{rec.id}/comments",
                json={"body": f"Vu, {COMMENT_WORD} premier."},
                headers=self.h(author),
            ),
            201,
        )
        rec.comments[comment["id"]] = mark
        self._event("comment.create", comment["id"], mark, mark)
        upload = ok(
            await self.client.post(
                f"/api/v1/entries/{rec.id}/attachments",
                files={"file": (f"note-{word}.txt", f"note {word}\n".encode(), "text/plain")},
                headers=self.h(author),
            ),
            201,
        )
        rec.attachment = upload["id"]
        self._event("attachment.create", rec.attachment, mark)
        if index % 2 == 0:  # a correction: a second version with the same label
            patched = await self.client.patch(
                f"/api/v1/entries/{rec.id}",
                json={"body": f"Observation {word} corrigée."},
                headers={**self.h(author), "If-Match": rec.etag},
            )
            ok(patched)
            rec.etag = patched.headers["etag"]
            rec.versions.append((2, mark))
            self._event("entry.update", rec.id, mark, version=2)

    def _second(self, mark: Mark, first: str) -> str | None:
        """Another watch officer who can see ``mark`` (four eyes), if any."""
        for person in self.world.readers:
            if person.triages and person.name != first and sees(person, mark):
                return person.name
        return None

    async def _change_label(self, index: int, rec: EntryRec) -> None:
        """A third of the entries get a raised label, a third an approved lowering, a third a
        lowering request left pending (when the label allows it)."""
        requester = self.world.author(rec.mark.owner)
        up, down = raised(rec.mark), lowered(rec.mark)
        kind = ("raise", "lower", "pending")[index % 3]
        if kind == "lower" and (down is None or self._second(rec.mark, requester) is None):
            kind = "raise"
        if kind == "raise" and up is None:
            kind = "pending"
        if kind == "pending" and down is None:
            return
        new = up if kind == "raise" else down
        assert new is not None
        response = await self.client.post(
            f"/api/v1/entries/{rec.id}/label",
            json={"label": new.wire(), "reason": "matrice"},
            headers=self.h(requester),
        )
        if kind == "raise":
            ok(response)
            self._applied(rec, new)
            return
        request_id = ok(response, 202)["request"]["id"]
        if kind == "pending":
            rec.pending_request = request_id
            return
        approver = self._second(rec.mark, requester)
        assert approver is not None
        ok(
            await self.client.post(
                f"/api/v1/label-requests/{request_id}/approve", headers=self.h(approver)
            )
        )
        self._applied(rec, new)

    def _applied(self, rec: EntryRec, new: Mark) -> None:
        rec.mark = new
        rec.versions.append((rec.versions[-1][0] + 1, new))
        self._event("entry.label", rec.id, new, version=rec.versions[-1][0])

    async def _second_comment(self, index: int, rec: EntryRec) -> None:
        level, ntk, audience = COMMENT_LABELS[index % len(COMMENT_LABELS)]
        mark = Mark(level, ntk, audience, rec.mark.owner)
        author = self.world.author(rec.mark.owner)
        comment = ok(
            await self.client.post(
                f"/api/v1/entries/{rec.id}/comments",
                json={"body": f"Suite {COMMENT_WORD} second.", "label": mark.wire()},
                headers=self.h(author),
            ),
            201,
        )
        rec.comments[comment["id"]] = mark
        self._event("comment.create", comment["id"], mark, rec.mark)

    # --- zones and layers ----------------------------------------------------------------

    async def _shapes(self) -> None:
        for index, (level, ntk, audience) in enumerate(SHAPE_LABELS):
            owner = ORGS[index % len(ORGS)]
            mark = Mark(level, ntk, audience, owner)
            author = self.h(self.world.author(owner))
            west = 2.25 + index * 0.02
            ring = [[west, 48.84], [west + 0.01, 48.84], [west + 0.01, 48.86], [west, 48.84]]
            zone = ok(
                await self.client.post(
                    "/api/v1/zones",
                    json={
                        "name": f"Zone {index}",
                        "kind": "perimeter",
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                        "label": mark.wire(),
                    },
                    headers=author,
                ),
                201,
            )
            assert mark_of(zone["label"], owner) == mark
            self.world.zones[zone["id"]] = mark
            features = {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [west, 48.85]},
                        "properties": {"name": f"Point {index}"},
                    }
                ],
            }
            layer = ok(
                await self.client.post(
                    "/api/v1/layers",
                    data={
                        "name": f"Couche {index}",
                        "level": level,
                        "need_to_know": ",".join(sorted(ntk)),
                        "audience": ",".join(sorted(audience)),
                    },
                    files={"file": ("c.geojson", json.dumps(features), "application/geo+json")},
                    headers=author,
                ),
                201,
            )
            assert mark_of(layer["label"], owner) == mark
            self.world.layers[layer["id"]] = mark

    # --- the hub -------------------------------------------------------------------------

    async def _hub(self) -> None:
        """One shared document and one announcement per label of SHAPE_LABELS: the documents
        owned in turn by each organisation, the announcements by the CNCS (their audiences
        target the readers' organisations)."""
        await make_org(self.app, ANNOUNCER_ORG)
        await make_user(self.app, ANNOUNCER, ANNOUNCER_ORG, roles=(Role.WATCH_OFFICER,),
                        clearance=LEVELS[-1], groups=list(GROUPS))  # fmt: skip
        cncs = await sign_in(self.client, ANNOUNCER)
        for index, (level, ntk, audience) in enumerate(SHAPE_LABELS):
            owner = ORGS[index % len(ORGS)]
            mark = Mark(level, ntk, audience, owner)
            document = ok(
                await self.client.post(
                    "/api/v1/hub/documents",
                    params={
                        "title": f"Document {index}",
                        "level": level,
                        "need_to_know": sorted(ntk),
                        "audience": sorted(audience),
                    },
                    files={"file": (f"doc-{index}.txt", f"document {index}\n".encode())},
                    headers=self.h(self.world.author(owner)),
                ),
                201,
            )
            assert mark_of(document["label"], owner) == mark
            self.world.documents[document["id"]] = mark
            said = Mark(level, ntk, audience, ANNOUNCER_ORG)
            notice = ok(
                await self.client.post(
                    "/api/v1/hub/announcements",
                    json={"title": f"Annonce {index}", "label": said.wire()},
                    headers=cncs,
                ),
                201,
            )
            assert mark_of(notice["label"], ANNOUNCER_ORG) == said
            self.world.announcements[notice["id"]] = said
            self._event("announcement.create", notice["id"], said, version=1)

    # --- data products ------------------------------------------------------------------

    async def _spaces(self) -> None:
        """One space per label of SHAPE_LABELS, made by the owning organisation's author."""
        self.world.space_tables = {f"t{n}": pid for n, pid in enumerate(self.world.products)}
        grid = {"x": 0, "y": 0, "w": 6, "h": 3}
        modules = [
            {"id": "fil", "type": "feed", "config": {"limit": 50}, **grid},
            {"id": "compte", "type": "kpi", "config": {"trend_hours": None}, **grid},
            {"id": "absent", "type": "table", "config": {"product_id": str(uuid.uuid4())}, **grid},
            *(
                {"id": mid, "type": "table", "config": {"product_id": pid}, **grid}
                for mid, pid in self.world.space_tables.items()
            ),
        ]
        for index, (level, ntk, audience) in enumerate(SHAPE_LABELS):
            owner = ORGS[index % len(ORGS)]
            mark = Mark(level, ntk, audience, owner)
            space = ok(
                await self.client.post(
                    "/api/v1/spaces",
                    json={"title": f"Espace {index}", "modules": modules, "label": mark.wire()},
                    headers=self.h(self.world.author(owner)),
                ),
                201,
            )
            self.world.spaces[space["id"]] = mark
            self._event("space.create", space["id"], mark, version=1)

    async def _reports(self) -> None:
        """A report schedule per space, to every organisation, run once."""
        for space_id, mark in self.world.spaces.items():
            schedule = ok(
                await self.client.post(
                    f"/api/v1/spaces/{space_id}/report-schedules",
                    json={"name": "Point", "times": ["07:00"],
                          "recipients": {"organisations": list(ORGS)}},
                    headers=self.h(self.world.author(mark.owner)),
                ),
                201,
            )  # fmt: skip
            self.world.report_schedules[space_id] = schedule["id"]
        later = datetime.now(UTC) + timedelta(days=1)
        state = self.app.state
        assert await report_schedules.run_due(state.system_sessions, state.settings, now=later)

    async def _products(self) -> None:
        """One product per label of SHAPE_LABELS, owned in turn by each organisation, with the
        stewards' rules of ``product_row_visible`` and ``product_columns``."""
        for index, (level, ntk, audience) in enumerate(SHAPE_LABELS):
            owner = ORGS[index % len(ORGS)]
            mark = Mark(level, ntk, audience, owner)
            steward = self.h(self.world.steward(owner))
            product = ok(
                await self.client.post(
                    "/api/v1/products",
                    json={
                        "slug": f"produit-{index}",
                        "name": f"Produit {index}",
                        "table_schema": PRODUCT_SCHEMA,
                        "rules": PRODUCT_RULES,
                        "label": mark.wire(),
                    },
                    headers=steward,
                ),
                201,
            )
            assert mark_of(product["label"], owner) == mark
            ok(
                await self.client.post(
                    f"/api/v1/products/{product['id']}/imports",
                    files={"file": ("p.csv", PRODUCT_CSV, "text/csv")},
                    headers=steward,
                ),
                201,
            )
            ok(
                await self.client.put(
                    f"/api/v1/products/{product['id']}/quality",
                    json={"rules": PRODUCT_QUALITY},
                    headers=steward,
                ),
                200,
            )
            self.world.products[product["id"]] = mark
            self._event("product.create", product["id"], mark, version=1)
            self._event("product.import", product["id"], mark, version=2)
            self._event("product.quality", product["id"], mark, version=3)
        await self._derived()
        await self._publications()

    async def _publications(self) -> None:
        """Open data (ADR 0035): every product proposed for publication by its steward —
        refused unless the public principal may read it (the lowest level, no need-to-know,
        no audience: only the first product), and refused for a column or rows its rules
        hide from the public. On the first product: one publication approved by the second
        steward, one left proposed, one approved then withdrawn."""
        for index, (product_id, mark) in enumerate(self.world.products.items()):
            steward = self.h(self.world.steward(mark.owner))
            body = {
                "product_id": product_id,
                "title": f"Jeu {index}",
                "columns": ["nom", "portee"],
                "conditions": ["portee:eq:tous"],
            }
            public = mark.level == LEVELS[0] and not mark.ntk and not mark.audience
            for slug in (f"jeu-{index}", f"jeu-{index}-attente", f"jeu-{index}-retire"):
                got = await self.client.post(
                    "/api/v1/publications", json={**body, "slug": slug}, headers=steward
                )
                if not public:
                    assert got.status_code == 422, got.text
                    continue
                made = ok(got, 201)
                if slug.endswith("-attente"):
                    self.world.publications[slug] = "proposed"
                    continue
                second = self.h(f"{self.world.steward(mark.owner)}-2")
                ok(await self.client.post(f"/api/v1/publications/{made['id']}/approve",
                                          headers=second))  # fmt: skip
                self.world.publications[slug] = "published"
                if slug.endswith("-retire"):
                    withdraw = f"/api/v1/publications/{made['id']}/withdraw"
                    reason = {"reason": "retrait"}
                    ok(await self.client.post(withdraw, json=reason, headers=steward))
                    self.world.publications[slug] = "withdrawn"
            if public:
                hidden_column = {**body, "slug": "jeu-colonne", "columns": ["nom", "nombre"]}
                got = await self.client.post(
                    "/api/v1/publications", json=hidden_column, headers=steward
                )
                assert got.status_code == 403, got.text
                hidden_rows = {**body, "slug": "jeu-lignes", "conditions": []}
                got = await self.client.post(
                    "/api/v1/publications", json=hidden_rows, headers=steward
                )
                assert got.status_code == 403, got.text

    async def _derived(self) -> None:
        """A product derived from the first one by its steward, released by a second steward
        (four eyes), then a second data version of that source (recomputing it)."""
        source_id, source_mark = next(iter(self.world.products.items()))
        steward = self.h(self.world.steward(source_mark.owner))
        level, ntk, audience = DERIVED_LABEL
        mark = Mark(level, ntk, audience, source_mark.owner)
        definition = {
            "sources": [{"product": source_id}],
            "where": [{"field": "portee", "op": "eq", "value": "tous"}],
            "columns": [{"field": "nom"}, {"field": "nombre"}],
        }
        derived = ok(
            await self.client.post(
                "/api/v1/products/derived",
                json={"slug": "produit-derive", "name": "Produit dérivé",
                      "definition": definition, "label": mark.wire()},
                headers=steward,
            ),
            201,
        )  # fmt: skip
        self.world.derived[derived["id"]] = mark
        self._event("product.create", derived["id"], mark, version=1)
        self._event("product.derive", derived["id"], mark, version=2)
        # The source's rules restrict readers: a second steward of the domain releases it.
        second = f"{self.world.steward(source_mark.owner)}-2"
        ok(
            await self.client.post(
                f"/api/v1/products/{derived['id']}/release", headers=self.h(second)
            ),
            200,
        )
        self._event("product.release", derived["id"], mark, version=3)
        ok(
            await self.client.post(
                f"/api/v1/products/{source_id}/imports",
                files={"file": ("p2.csv", PRODUCT_CSV_2, "text/csv")},
                headers=steward,
            ),
            201,
        )
        self._event("product.import", source_id, source_mark, version=4)
        self._event("product.derive", derived["id"], mark, version=4)

    # --- syntheses -----------------------------------------------------------------------

    async def _syntheses(self) -> None:
        """One synthesis per category gathered above: three sent (to users, or to a whole
        organisation), one left as a draft (watch officers only)."""
        plans: dict[str, list[str] | None] = {  # organisations sent to ([]: named users)
            "health": ["OTHER"],
            "transport": [],
            "traffic": ["SVC"],
            "rescue": None,  # a draft
        }
        for category, recipients in plans.items():
            members = [e for e in self.world.entries.values() if e.category == category]
            owner = members[0].mark.owner
            author = self.world.author(owner)
            assert all(sees(self.world.people[author], e.mark) for e in members)
            draft = ok(
                await self.client.post(
                    "/api/v1/syntheses",
                    json={
                        "title": f"Point {category}",
                        "scope": {"hours": 24 * 30, "categories": [category]},
                    },
                    headers=self.h(author),
                ),
                201,
            )
            sid = draft["id"]
            assert sorted(draft["entry_ids"]) == sorted(e.id for e in members), draft
            mark = mark_of(draft["label"], owner)
            chosen: frozenset[str] = frozenset()
            if recipients is not None:
                validator = self._second(mark, author)
                assert validator, f"nobody to validate {category} {mark}"
                ok(
                    await self.client.post(
                        f"/api/v1/syntheses/{sid}/submit", headers=self.h(author)
                    )
                )
                ok(
                    await self.client.post(
                        f"/api/v1/syntheses/{sid}/validate", headers=self.h(validator)
                    )
                )
                body: dict[str, list[str]] = {}
                if recipients:
                    body["organisations"] = recipients
                    chosen = frozenset(
                        p.name
                        for p in self.world.readers
                        if p.org in recipients and sees_all(p, [mark, *(e.mark for e in members)])
                    )
                else:  # readers allowed by the label who would not see it otherwise
                    named = [
                        p.name
                        for p in self.world.readers
                        if not p.triages and sees_all(p, [mark, *(e.mark for e in members)])
                    ][::2]
                    assert named, "nobody to name as a recipient"
                    body["users"] = named
                    chosen = frozenset(named)
                ok(
                    await self.client.post(
                        f"/api/v1/syntheses/{sid}/send", json=body, headers=self.h(validator)
                    )
                )
            self.world.syntheses[sid] = SynthesisRec(
                sid, mark, [e.id for e in members], chosen, recipients is not None
            )

    # --- links between records (references are protected like their targets) -------------

    async def _links(self) -> None:
        """One situation per label of SHAPE_LABELS, each owned in turn by each organisation
        and linked to two entries of its owner (the link made by the owner's author, who sees
        both); and an entry of each organisation marked as a duplicate of another of the same
        organisation with a different label. Readers who see an entry but not what it links to
        must get no trace of the link."""
        for index, (level, ntk, audience) in enumerate(SHAPE_LABELS):
            owner = ORGS[index % len(ORGS)]
            mark = Mark(level, ntk, audience, owner)
            author = self.world.author(owner)
            situation = ok(
                await self.client.post(
                    "/api/v1/situations",
                    json={"title": f"Situation {index}", "label": mark.wire()},
                    headers=self.h(author),
                ),
                201,
            )
            self.world.situations[situation["id"]] = mark
            self._event("situation.create", situation["id"], mark, version=1)
            owned = [e for e in self.world.entries.values() if e.mark.owner == owner]
            for rec in (owned[index % len(owned)], owned[(index + 5) % len(owned)]):
                if rec.situation is None:
                    await self._triage(rec, "situation", {"situation_id": situation["id"]})
                    rec.situation = situation["id"]
        for owner in ORGS:
            owned = [e for e in self.world.entries.values() if e.mark.owner == owner]
            copy = next((e for e in owned if e.mark.level == LEVELS[0] and not e.mark.ntk), None)
            original = next((e for e in owned if e.mark.level == LEVELS[-1] and e.mark.ntk), None)
            if copy is None or original is None:
                continue
            await self._triage(copy, "duplicate", {"duplicate_of": original.id})
            copy.duplicate_of = original.id

    async def _triage(self, rec: EntryRec, what: str, body: dict[str, str]) -> None:
        headers = self.h(self.world.author(rec.mark.owner))
        current = await self.client.get(f"/api/v1/entries/{rec.id}", headers=headers)
        ok(current)
        ok(
            await self.client.post(
                f"/api/v1/entries/{rec.id}/{what}",
                json=body,
                headers={**headers, "If-Match": current.headers["etag"]},
            )
        )
        rec.versions.append((rec.versions[-1][0] + 1, rec.mark))
        self._event(f"entry.{what}", rec.id, rec.mark, version=rec.versions[-1][0])
