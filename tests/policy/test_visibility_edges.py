"""Edge cases of the visibility rule, in Python and through the SQL filter on each engine."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from hypervision.config import Settings
from hypervision.logbook.models import Entry
from hypervision.policy.rules import can_see, visible_filter
from tests.conftest import make_settings
from tests.factories import make_user, tx
from tests.policy.world import GROUPS, Orgs, Reader, Record, entry_row, reference, subject

ALL = frozenset(GROUPS)
NONE: frozenset[str] = frozenset()
STRAY = uuid.uuid5(uuid.NAMESPACE_URL, "urn:test:org:not-in-the-tree")
UNKNOWN_LEVELS = ("TS", "np", "dr", "NP ", " DR", "", "SECRET")


@dataclass(frozen=True)
class Case:
    name: str
    reader: Reader
    record: Record
    visible: bool


def cases(o: Orgs) -> list[Case]:
    def rec(
        level: str = "NP",
        ntk: frozenset[str] = NONE,
        audience: tuple[str, ...] = (),
        owner: str = "OTHER",
    ) -> Record:
        return Record(level, ntk, frozenset(o[a] for a in audience), o[owner])

    def who(
        clearance: str | None = "DR", groups: frozenset[str] = ALL, org: str | None = "SVC11"
    ) -> Reader:
        return Reader(clearance, groups, o[org] if org else None)

    found = [
        Case("empty need_to_know", who("NP", NONE), rec(), True),
        Case(
            "need_to_know: all groups required",
            who(groups=frozenset("A")),
            rec(ntk=frozenset("AB")),
            False,
        ),
        Case(
            "need_to_know: subset of the groups",
            who(groups=frozenset("ABC")),
            rec(ntk=frozenset("AB")),
            True,
        ),
        Case(
            "need_to_know: reader without groups", who(groups=NONE), rec(ntk=frozenset("D")), False
        ),
        Case("empty audience: every organisation", who(org="OTHER"), rec(owner="SVC11"), True),
        Case("empty audience: reader without organisation", who(org=None), rec(), True),
        Case(
            "owner outside the audience sees it",
            who(),
            rec(audience=("SVC21",), owner="SVC11"),
            True,
        ),
        Case(
            "owner's sibling outside the audience",
            who(org="SVC12"),
            rec(audience=("SVC21",), owner="SVC11"),
            False,
        ),
        Case(
            "owner's parent outside the audience",
            who(org="DIR1"),
            rec(audience=("SVC21",), owner="SVC11"),
            False,
        ),
        Case("audience organisation itself", who(org="DIR2"), rec(audience=("DIR2",)), True),
        Case("child of an audience organisation", who(org="SVC11"), rec(audience=("DIR1",)), True),
        Case(
            "grandchild of an audience organisation", who(org="SVC21"), rec(audience=("MIN",)), True
        ),
        Case(
            "parent of an audience organisation", who(org="DIR1"), rec(audience=("SVC11",)), False
        ),
        Case(
            "root above an audience organisation",
            who(org="MIN"),
            rec(audience=("SVC12", "SVC21")),
            False,
        ),
        Case(
            "cousin of an audience organisation",
            who(org="SVC21"),
            rec(audience=("SVC11", "DIR1")),
            False,
        ),
        Case(
            "audience outside the tree",
            who(),
            Record("NP", NONE, frozenset({STRAY}), o["OTHER"]),
            False,
        ),
        Case(
            "reader without organisation, audience set",
            who(org=None),
            rec(audience=("MIN",)),
            False,
        ),
        Case("no clearance: not even NP, open record", who(None, org="OTHER"), rec(), False),
        Case("no clearance: not even own record", who(None), rec(owner="SVC11"), False),
        Case("unknown clearance sees nothing", who("SECRET"), rec(), False),
        Case("NP clearance does not see DR", who("NP"), rec("DR", owner="SVC11"), False),
        Case("DR clearance sees NP", who("DR"), rec("NP"), True),
        Case("DR clearance sees DR", who("DR"), rec("DR"), True),
        Case(
            "every clause at once",
            who("DR", frozenset("A")),
            rec("DR", frozenset("A"), ("DIR1",)),
            True,
        ),
    ]
    for level in UNKNOWN_LEVELS:
        found.append(Case(f"unknown level {level!r}", who(), rec(level, owner="SVC11"), False))
    return found


SYNTHETIC = Orgs.synthetic()
NAMES = [case.name for case in cases(SYNTHETIC)]


def _settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "sqlite+aiosqlite:///:memory:")


@pytest.mark.parametrize("name", NAMES)
def test_rule_in_python(name: str, tmp_path: Path) -> None:
    case = next(c for c in cases(SYNTHETIC) if c.name == name)
    reader_subject = subject(_settings(tmp_path), SYNTHETIC, case.reader)
    assert can_see(reader_subject, case.record.label) is case.visible
    assert reference(SYNTHETIC, case.reader, case.record) is case.visible


async def test_rule_through_sql(app: FastAPI, settings: Settings) -> None:
    orgs = await Orgs.create(app)
    for org in orgs.all:
        assert orgs.ancestries[org] == orgs.lineage(org)
    author = await make_user(app, "policy.author", "POL-OTHER")
    found = cases(orgs)
    ids = [uuid.UUID(int=n + 1) for n in range(len(found))]
    async with tx(app) as session:
        rows = [entry_row(c.record, i, author.id) for c, i in zip(found, ids, strict=True)]
        await session.execute(insert(Entry), rows)

    dialect = app.state.engine.dialect.name
    wrong: list[str] = []
    async with tx(app) as session:
        labels = {e.id: e.label for e in await session.scalars(select(Entry))}
        assert set(labels) == set(ids)
        for case, row_id in zip(found, ids, strict=True):
            assert labels[row_id] == case.record.label, case.name
            reader_subject = subject(settings, orgs, case.reader)
            query = select(Entry.id).where(visible_filter(reader_subject, Entry, dialect))
            seen = set(await session.scalars(query))
            if (row_id in seen) is not case.visible:
                wrong.append(f"{case.name}: SQL says {row_id in seen}, expected {case.visible}")
            # The same reader against every other case's record: SQL, Python and reference.
            for other, other_id in zip(found, ids, strict=True):
                verdicts = (
                    other_id in seen,
                    can_see(reader_subject, labels[other_id]),
                    reference(orgs, case.reader, other.record),
                )
                if len(set(verdicts)) != 1:
                    wrong.append(
                        f"reader of {case.name!r} / record of {other.name!r}: "
                        f"sql, python, reference = {verdicts}"
                    )
    assert not wrong, f"{dialect}:\n" + "\n".join(wrong)


async def test_json_null_label_columns_are_refused(app: FastAPI) -> None:
    """A None label column must never be stored as JSON ``null``: the two compilations would
    read it differently (found by the differential test). It is refused by NOT NULL."""
    orgs = await Orgs.create(app)
    author = await make_user(app, "policy.author", "POL-OTHER")
    for column in ("need_to_know", "audience"):
        row = entry_row(Record("NP", NONE, frozenset(), orgs["OTHER"]), uuid.UUID(int=1), author.id)
        row[column] = None
        with pytest.raises(IntegrityError):
            async with tx(app) as session:
                await session.execute(insert(Entry), [row])
        async with tx(app) as session:
            assert await session.scalar(select(Entry)) is None
