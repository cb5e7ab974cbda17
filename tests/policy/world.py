"""A small world for the visibility policy: an organisation tree, readers, records, and the rule
restated from its text (DESIGN.md, Concepts: Label; SECURITY.md 6) as an independent reference."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from hypervision.config import Settings
from hypervision.db import create_engine
from hypervision.identity.principal import Principal
from hypervision.identity.service import organisation_ancestry
from hypervision.policy.labels import Label
from hypervision.policy.rules import Subject
from tests.factories import make_org, tx

LEVELS = ("NP", "DR")  # the configured levels, lowest first (Settings default)
GROUPS = ("A", "B", "C", "D", "12")  # "12": a code that reads as a number

# ministry ─┬─ DIR1 ─┬─ SVC11
#           │        └─ SVC12
#           └─ DIR2 ─── SVC21
# OTHER (a second root, unrelated)
TREE: Mapping[str, str | None] = {
    "MIN": None,
    "DIR1": "MIN",
    "DIR2": "MIN",
    "SVC11": "DIR1",
    "SVC12": "DIR1",
    "SVC21": "DIR2",
    "OTHER": None,
}


@dataclass(frozen=True)
class Orgs:
    """The tree's organisation ids, by code, and each one's ancestry as a ``Principal`` carries
    it (own organisation first, then its parents)."""

    ids: Mapping[str, uuid.UUID]
    ancestries: Mapping[uuid.UUID, tuple[uuid.UUID, ...]]

    @classmethod
    def synthetic(cls) -> Orgs:
        ids = {code: uuid.uuid5(uuid.NAMESPACE_URL, f"urn:test:org:{code}") for code in TREE}
        walked = cls(ids, {})
        return cls(ids, {org: walked.lineage(org) for org in ids.values()})

    @classmethod
    async def create(cls, app: FastAPI, prefix: str = "POL") -> Orgs:
        """Real organisation rows made through the identity service (parents first), with the
        ancestry loaded by ``organisation_ancestry``, as sign-in does."""
        ids: dict[str, uuid.UUID] = {}
        for code, parent in TREE.items():
            org = await make_org(app, f"{prefix}-{code}", f"{prefix}-{parent}" if parent else None)
            ids[code] = org.id
        ancestries: dict[uuid.UUID, tuple[uuid.UUID, ...]] = {}
        async with tx(app) as session:
            for org_id in ids.values():
                chain = await organisation_ancestry(session=session, org_id=org_id)
                ancestries[org_id] = tuple(o.id for o in chain)
        return cls(ids, ancestries)

    def __getitem__(self, code: str) -> uuid.UUID:
        return self.ids[code]

    @property
    def all(self) -> list[uuid.UUID]:
        return [self.ids[code] for code in TREE]

    def lineage(self, org: uuid.UUID) -> tuple[uuid.UUID, ...]:
        """The organisation then its parents, walked on TREE."""
        code = next(c for c, i in self.ids.items() if i == org)
        chain: list[uuid.UUID] = []
        current: str | None = code
        while current is not None:
            chain.append(self.ids[current])
            current = TREE[current]
        return tuple(chain)


@dataclass(frozen=True)
class Reader:
    clearance: str | None
    groups: frozenset[str]
    org: uuid.UUID | None


@dataclass(frozen=True)
class Record:
    level: str
    need_to_know: frozenset[str]
    audience: frozenset[uuid.UUID]
    owner: uuid.UUID

    @property
    def label(self) -> Label:
        return Label(
            level=self.level,
            need_to_know=self.need_to_know,
            audience=frozenset(str(a) for a in self.audience),
            owner=str(self.owner),
        )

    def columns(self) -> dict[str, Any]:
        """The ``Labelled`` columns, as ``Labelled.set_label`` writes them."""
        return {
            "label_level": self.level,
            "need_to_know": sorted(self.need_to_know),
            "audience": sorted(str(a) for a in self.audience),
            "organisation_id": self.owner,
        }


def principal(reader: Reader, ancestry: tuple[uuid.UUID, ...]) -> Principal:
    return Principal(
        user_id=uuid.uuid5(uuid.NAMESPACE_URL, f"urn:test:reader:{reader}"),
        username="reader",
        organisation_id=reader.org,
        organisation_ancestry=ancestry,
        clearance=reader.clearance,
        roles=frozenset({"officer"}),
        groups=reader.groups,
    )


def subject(settings: Settings, orgs: Orgs, reader: Reader) -> Subject:
    ancestry = orgs.ancestries[reader.org] if reader.org is not None else ()
    return Subject.of(settings, principal(reader, ancestry))


def reference(orgs: Orgs, reader: Reader, record: Record) -> bool:
    """The rule, written from its text: clearance >= level, need_to_know ⊆ groups, and (audience
    empty, or the reader's organisation owns the record, or the reader's organisation or one of
    its parents is in the audience)."""
    rank = {level: position for position, level in enumerate(LEVELS)}
    if reader.clearance not in rank or record.level not in rank:
        return False
    if rank[reader.clearance] < rank[record.level]:
        return False
    if not all(group in reader.groups for group in record.need_to_know):
        return False
    if len(record.audience) == 0:
        return True
    if reader.org is None:
        return False
    if reader.org == record.owner:
        return True
    org: str | None = next(c for c, i in orgs.ids.items() if i == reader.org)
    while org is not None:
        if orgs[org] in record.audience:
            return True
        org = TREE[org]
    return False


def entry_row(record: Record, row_id: uuid.UUID, author_id: uuid.UUID) -> dict[str, Any]:
    """A minimal ``entries`` row carrying ``record``'s label."""
    return {
        "id": row_id,
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "author_id": author_id,
        "category": "security",
        "severity": "info",
        "status": "open",
        "title": "policy probe",
        **record.columns(),
    }


# --- strategies: small pools, so that visible and hidden outcomes are both frequent ----------

# Weighted by repetition; "TS" is unknown to the platform, "np" differs from "NP" only by case.
RECORD_LEVELS = ("NP", "DR", "NP", "DR", "NP", "DR", "TS", "np")
CLEARANCES: tuple[str | None, ...] = ("DR", "NP", "DR", "NP", None, "SECRET")


def readers(orgs: Orgs) -> st.SearchStrategy[Reader]:
    return st.builds(
        Reader,
        clearance=st.sampled_from(CLEARANCES),
        groups=st.frozensets(st.sampled_from(GROUPS)),
        org=st.sampled_from([*orgs.all, *orgs.all, None]),
    )


def records(orgs: Orgs) -> st.SearchStrategy[Record]:
    return st.builds(
        Record,
        level=st.sampled_from(RECORD_LEVELS),
        need_to_know=st.frozensets(st.sampled_from(GROUPS), max_size=3),
        audience=st.frozensets(st.sampled_from(orgs.all), max_size=3),
        owner=st.sampled_from(orgs.all),
    )


def search(
    settings: Settings,
    strategy: st.SearchStrategy[Any],
    check: Callable[[AsyncEngine, Any], Coroutine[Any, Any, None]],
    examples: int,
) -> None:
    """Run a Hypothesis search in this (worker) thread, on an event loop of its own: each
    generated example is checked by ``check`` on one engine of ``settings``'s database."""
    with asyncio.Runner() as runner:
        engine = create_engine(settings)
        try:

            @hypothesis_settings(
                max_examples=examples,
                deadline=None,
                suppress_health_check=[
                    HealthCheck.too_slow,
                    HealthCheck.large_base_example,
                    HealthCheck.data_too_large,
                ],
            )
            @given(example=strategy)
            def agree(example: Any) -> None:
                runner.run(check(engine, example))

            agree()
        finally:
            runner.run(engine.dispose())
