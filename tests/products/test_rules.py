"""Stewards' rules (products/rules.py): their meaning on examples, validation errors that name
the bad node, the SQL and RLS forms' shape, column projection, fingerprints and review (the
differential test proves the compilations equal on generated trees)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Date, MetaData, Table, Text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from hypervision.config import Settings
from hypervision.identity.principal import Principal
from hypervision.policy import rls
from hypervision.products.rules import MAX_DEPTH, MAX_VALUES, Reader, RuleError, RuleSet
from tests.conftest import TEST_SECRET

LEVELS = ("NP", "DR")
HEALTH = "00000000-0000-4000-8000-0000000000aa"  # the health ministry
SAMU_75 = "00000000-0000-4000-8000-0000000000ab"  # under it
PREF_75 = "00000000-0000-4000-8000-0000000000b1"
FIELDS = {
    "service": "string",
    "department": "string",
    "owner_org": "string",
    "patients": "integer",
    "beds": "integer",
    "level": "string",
    "day": "date",
    "updated": "datetime",
    "place": "geometry",
}

# The issue's examples: SAMU rows for health organisations only; a department prefecture sees
# its own department's rows; the patient count column for MEDICAL only.
TREE: dict[str, Any] = {
    "rows": [
        {
            "effect": "deny",
            "when": {
                "all": [
                    {"op": "eq", "left": {"rec": "service"}, "right": {"value": "SAMU"}},
                    {
                        "not": {
                            "op": "contains",
                            "left": {"user": "organisation_ancestors"},
                            "right": {"value": HEALTH},
                        }
                    },
                ]
            },
            "note": "SAMU : santé seulement",
        },
        {
            "effect": "allow",
            "when": {"op": "in", "left": {"rec": "department"}, "right": {"user": "groups"}},
        },
        {
            "effect": "allow",
            "when": {"op": "eq", "left": {"user": "organisation"}, "right": {"rec": "owner_org"}},
        },
    ],
    "rows_default": "deny",
    "columns": [
        {
            "columns": ["patients"],
            "effect": "deny",
            "when": {
                "not": {"op": "contains", "left": {"user": "groups"}, "right": {"value": "MEDICAL"}}
            },
        }
    ],
}


def reader(
    org: str | None = None,
    ancestors: tuple[str, ...] = (),
    groups: tuple[str, ...] = (),
    rank: int = 0,
    roles: tuple[str, ...] = (),
) -> Reader:
    return Reader(
        org,
        frozenset((org,) if org else ()) | frozenset(ancestors),
        frozenset(groups),
        rank,
        frozenset(roles),
    )


def parse(tree: dict[str, Any]) -> RuleSet:
    return RuleSet.parse(tree, FIELDS, LEVELS)


def rows_rule(when: dict[str, Any], effect: str = "allow", default: str = "deny") -> RuleSet:
    return parse({"rows": [{"effect": effect, "when": when}], "rows_default": default})


def problems(tree: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(RuleError) as caught:
        parse(tree)
    error = caught.value
    assert error.status == 422
    assert error.fr.startswith("Règles invalides")
    assert error.en.startswith("Invalid rules")
    assert error.extra["problems"] == [
        {"path": p.path, "fr": p.fr, "en": p.en} for p in error.problems
    ]
    return [(p.path, p.fr, p.en) for p in error.problems]


# --- meaning -----------------------------------------------------------------------------


def test_the_issue_examples() -> None:
    rules = parse(TREE)
    samu = {"service": "SAMU", "department": "75", "owner_org": SAMU_75}
    beds = {"service": "urgences", "department": "75", "owner_org": SAMU_75}
    health_reader = reader(SAMU_75, ancestors=(HEALTH,))
    prefecture = reader(PREF_75, groups=("75",))
    assert rules.row_allows(health_reader, samu)  # own organisation's row
    assert not rules.row_allows(prefecture, samu)  # SAMU: health only, before the department
    assert rules.row_allows(prefecture, beds)  # its department
    assert not rules.row_allows(reader(PREF_75, groups=("13",)), beds)  # another one: default
    assert rules.visible_columns(prefecture, ["service", "patients", "beds"]) == [
        "service",
        "beds",
    ]
    medical = reader(PREF_75, groups=("75", "MEDICAL"))
    assert rules.visible_columns(medical, ["patients", "service"]) == ["patients", "service"]


def test_first_matching_rule_decides_then_the_default() -> None:
    is_75 = {"op": "eq", "left": {"rec": "department"}, "right": {"value": "75"}}
    rules = parse(
        {
            "rows": [
                {"effect": "deny", "when": is_75},
                {"effect": "allow", "when": {"any": []}},  # never holds
                {"effect": "allow", "when": {"all": []}},  # always holds
            ],
            "rows_default": "deny",
        }
    )
    assert not rules.row_allows(reader(), {"department": "75"})
    assert rules.row_allows(reader(), {"department": "13"})
    assert parse({"rows_default": "allow"}).row_allows(reader(), {})
    assert not parse({"rows_default": "deny"}).row_allows(reader(), {})


def test_null_makes_every_atom_false_and_not_its_negation() -> None:
    ne = {"op": "ne", "left": {"rec": "department"}, "right": {"value": "75"}}
    not_in = {"op": "not_in", "left": {"rec": "department"}, "right": {"user": "groups"}}
    for atom in (ne, not_in):
        assert not rows_rule(atom).row_allows(reader(), {})
        assert not rows_rule(atom).row_allows(reader(), {"department": None})
        assert rows_rule({"not": atom}).row_allows(reader(), {})
    assert rows_rule(ne).row_allows(reader(), {"department": "13"})
    null = {"op": "is_null", "left": {"rec": "department"}}
    assert rows_rule(null).row_allows(reader(), {})
    assert not rows_rule({"op": "not_null", "left": {"rec": "department"}}).row_allows(reader(), {})
    # A reader without an organisation: user.organisation is null, so eq and ne are both false.
    mine = {"op": "eq", "left": {"user": "organisation"}, "right": {"rec": "owner_org"}}
    assert not rows_rule(mine).row_allows(reader(), {"owner_org": PREF_75})
    assert not rows_rule({**mine, "op": "ne"}).row_allows(reader(), {"owner_org": PREF_75})


def test_clearance_compares_by_rank() -> None:
    at_least_dr = {"op": "ge", "left": {"user": "clearance"}, "right": {"value": "DR"}}
    assert rows_rule(at_least_dr).row_allows(reader(rank=1), {})
    assert not rows_rule(at_least_dr).row_allows(reader(rank=0), {})
    assert not rows_rule(at_least_dr).row_allows(reader(rank=-1), {})  # no clearance: null
    cleared = {"op": "ge", "left": {"user": "clearance"}, "right": {"rec": "level"}}
    rules = rows_rule(cleared)
    assert rules.row_allows(reader(rank=0), {"level": "NP"})
    assert not rules.row_allows(reader(rank=0), {"level": "DR"})
    assert rules.row_allows(reader(rank=1), {"level": "DR"})
    assert not rules.row_allows(reader(rank=1), {"level": "SECRET"})  # not a level: null
    assert not rules.row_allows(reader(rank=1), {})


def test_literals_are_coerced_to_the_other_sides_type() -> None:
    upper = {"op": "eq", "left": {"user": "organisation"}, "right": {"value": PREF_75.upper()}}
    assert rows_rule(upper).row_allows(reader(PREF_75), {})
    assert rows_rule(upper).to_tree()["rows"][0]["when"]["right"] == {"value": PREF_75.upper()}
    paris = {"op": "ge", "left": {"rec": "updated"}, "right": {"value": "2026-07-26T14:00+02:00"}}
    rules = rows_rule(paris)
    assert rules.row_allows(reader(), {"updated": datetime(2026, 7, 26, 12, tzinfo=UTC)})
    assert not rules.row_allows(reader(), {"updated": datetime(2026, 7, 26, 11, 59, tzinfo=UTC)})
    naive = datetime(2026, 7, 26, 12, tzinfo=UTC).replace(tzinfo=None)  # read as UTC
    assert rules.row_allows(reader(), {"updated": naive})
    day = {"op": "lt", "left": {"rec": "day"}, "right": {"value": "2026-07-26"}}
    assert rows_rule(day).row_allows(reader(), {"day": date(2026, 7, 25)})
    listed = {"op": "in", "left": {"rec": "patients"}, "right": {"value": [1, 2]}}
    assert rows_rule(listed).row_allows(reader(), {"patients": 2})
    assert not rows_rule(listed).row_allows(reader(), {"patients": 3})


def test_contains_is_in_written_the_other_way_round() -> None:
    contains = {"op": "contains", "left": {"user": "roles"}, "right": {"rec": "service"}}
    within = {"op": "in", "left": {"rec": "service"}, "right": {"user": "roles"}}
    steward = reader(roles=("data_steward",))
    for row in ({"service": "data_steward"}, {"service": "officer"}, {}):
        assert rows_rule(contains).row_allows(steward, row) == rows_rule(within).row_allows(
            steward, row
        )
    assert rows_rule(contains).row_allows(steward, {"service": "data_steward"})


def test_column_rules_first_match_per_column() -> None:
    medical = {"op": "contains", "left": {"user": "groups"}, "right": {"value": "MEDICAL"}}
    rules = parse(
        {
            "rows_default": "allow",
            "columns": [
                {"columns": ["patients", "beds"], "effect": "allow", "when": medical},
                {"columns": ["patients"], "effect": "deny", "when": {"all": []}},
                {"columns": ["place"], "effect": "deny", "when": {"not": medical}},
            ],
        }
    )
    names = ["service", "patients", "beds", "place"]
    assert rules.visible_columns(reader(groups=("MEDICAL",)), names) == names
    assert rules.visible_columns(reader(), names) == ["service", "beds"]


# --- validation ----------------------------------------------------------------------------


def test_a_missing_field_is_named_in_french_and_english() -> None:
    found = problems(
        {
            "rows": [
                {
                    "effect": "allow",
                    "when": {"all": [{"op": "is_null", "left": {"rec": "patient"}}]},
                }
            ],
            "rows_default": "deny",
            "columns": [{"columns": ["lits"], "effect": "deny", "when": {"all": []}}],
        }
    )
    assert found == [
        (
            "rows[0].when.all[0].left",
            "le champ « patient » n'existe pas dans le schéma du produit",
            "field 'patient' is not in the product's schema",
        ),
        (
            "columns[0].columns[0]",
            "le champ « lits » n'existe pas dans le schéma du produit",
            "field 'lits' is not in the product's schema",
        ),
    ]


@pytest.mark.parametrize(
    ("when", "path", "french"),
    [
        ({"op": "eq", "left": {"rec": "place"}, "right": {"value": "x"}}, "left", "géométrique"),
        ({"op": "eq", "left": {"rec": "beds"}, "right": {"value": "3"}}, "right", "entier attendu"),
        ({"op": "eq", "left": {"rec": "beds"}, "right": {"value": True}}, "right", "entier"),
        ({"op": "eq", "left": {"rec": "beds"}, "right": {"value": 2**63}}, "right", "entier"),
        ({"op": "lt", "left": {"rec": "service"}, "right": {"value": "a"}}, "", "seulement eq"),
        ({"op": "eq", "left": {"rec": "beds"}, "right": {"rec": "day"}}, "", "incompatibles"),
        ({"op": "eq", "left": {"rec": "day"}, "right": {"value": "26/07/2026"}}, "right", "date"),
        (
            {"op": "ge", "left": {"rec": "updated"}, "right": {"value": "2026-07-26"}},
            "right",
            "fuseau",
        ),
        ({"op": "ge", "left": {"user": "clearance"}, "right": {"value": "TS"}}, "right", "niveau"),
        (
            {"op": "eq", "left": {"user": "organisation"}, "right": {"value": "x"}},
            "right",
            "organisation",
        ),
        ({"op": "eq", "left": {"user": "groups"}, "right": {"value": "x"}}, "left", "ensemble"),
        ({"op": "eq", "left": {"rec": "beds"}, "right": {"value": None}}, "right", "is_null"),
        ({"op": "eq", "left": {"value": 1}, "right": {"value": 1}}, "", "deux valeurs fixes"),
        ({"op": "in", "left": {"rec": "beds"}, "right": {"value": 3}}, "right", "ensemble attendu"),
        ({"op": "in", "left": {"rec": "beds"}, "right": {"value": [0] * 1001}}, "right", "liste"),
        (
            {"op": "in", "left": {"user": "clearance"}, "right": {"user": "groups"}},
            "",
            "incompatibles",
        ),
        ({"op": "eq", "left": {"rec": "beds"}, "right": {"value": [1]}}, "right", "valeur simple"),
        ({"op": "is_null", "left": {"user": "roles"}}, "left", "attribut simple"),
        ({"op": "is_null", "left": {"value": 1}}, "left", "attribut simple"),
        (
            {"op": "eq", "left": {"rec": "service"}, "right": {"value": "a\x00"}},
            "right",
            "invalide",
        ),
    ],
)
def test_meaningless_conditions_are_refused(when: dict[str, Any], path: str, french: str) -> None:
    found = problems({"rows": [{"effect": "deny", "when": {"not": when}}], "rows_default": "allow"})
    assert len(found) == 1, found
    where, fr, en = found[0]
    assert where == "rows[0].when.not" + (f".{path}" if path else "")
    assert french in fr
    assert en and en != fr


@pytest.mark.parametrize(
    ("tree", "path", "french"),
    [
        ({"rows": []}, "rows_default", "champ obligatoire"),
        (
            {"rows_default": "maybe"},
            "rows_default",
            "valeur non autorisée (attendu : 'allow' ou 'deny')",
        ),
        ({"rows_default": "deny", "extra": 1}, "extra", "champ inconnu"),
        (
            {"rows_default": "deny", "rows": [{"effect": "allow", "when": {"op": "xor"}}]},
            "rows[0].when.op",
            "valeur non autorisée",
        ),
        (
            {"rows_default": "deny", "rows": [{"effect": "allow", "when": {"every": []}}]},
            "rows[0].when",
            "nœud inconnu",
        ),
        (
            {
                "rows_default": "deny",
                "rows": [
                    {
                        "effect": "allow",
                        "when": {
                            "all": [{"not": {"op": "eq", "left": {"me": 1}, "right": {"value": 1}}}]
                        },
                    }
                ],
            },
            "rows[0].when.all[0].not.left",
            "opérande inconnu",
        ),
        (
            {
                "rows_default": "deny",
                "rows": [
                    {
                        "effect": "allow",
                        "when": {"op": "eq", "left": {"user": "name"}, "right": {"value": 1}},
                    }
                ],
            },
            "rows[0].when.left.user",
            "valeur non autorisée",
        ),
        (
            {
                "rows_default": "deny",
                "columns": [{"columns": [], "effect": "deny", "when": {"all": []}}],
            },
            "columns[0].columns",
            "au moins un élément",
        ),
    ],
)
def test_malformed_trees_name_the_bad_node(tree: dict[str, Any], path: str, french: str) -> None:
    found = problems(tree)
    assert (path, french) in [(p, fr[: len(french)]) for p, fr, _ in found], found


def test_column_rules_depend_on_the_reader_only() -> None:
    found = problems(
        {
            "rows_default": "allow",
            "columns": [
                {
                    "columns": ["patients"],
                    "effect": "deny",
                    "when": {"op": "gt", "left": {"rec": "patients"}, "right": {"value": 10}},
                }
            ],
        }
    )
    assert found[0][0] == "columns[0].when.left"
    assert "ne dépend que du lecteur" in found[0][1]


def test_deep_or_wide_trees_are_refused() -> None:
    deep: dict[str, Any] = {"all": []}
    for _ in range(MAX_DEPTH):
        deep = {"not": deep}
    assert problems({"rows_default": "deny", "rows": [{"effect": "allow", "when": deep}]}) == [
        ("racine", "arbre trop profond ou trop grand", "tree too deep or too large")
    ]
    huge = {"op": "in", "left": {"rec": "beds"}, "right": {"value": list(range(MAX_VALUES))}}
    assert problems({"rows_default": "deny", "rows": [{"effect": "allow", "when": huge}]})[0][
        0
    ] == ("racine")
    many = [{"effect": "allow", "when": {"all": []}}] * 201
    assert problems({"rows_default": "deny", "rows": many})[0][:2] == ("rows", "trop d'éléments")
    with pytest.raises(RuleError):
        RuleSet.parse([], FIELDS, LEVELS)  # type: ignore[arg-type]


# --- compiled forms --------------------------------------------------------------------------


def table() -> Table:
    return Table(
        "product_rows",
        MetaData(),
        Column("service", Text),
        Column("department", Text),
        Column("owner_org", Text),
        Column("patients", BigInteger),
        Column("beds", BigInteger),
        Column("level", Text),
        Column("day", Date),
    )


def test_the_sql_filter_leaves_only_the_rows_side() -> None:
    rows = table()
    rules = parse(TREE)
    where = rules.row_filter(reader(PREF_75, groups=("75",)), dict(rows.c), "sqlite")
    sql = str(where.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    # The reader is not under HEALTH: the SAMU rule is the row's side alone; groups and the
    # organisation are values.
    assert sql == (
        "NOT (product_rows.service IS NOT NULL AND product_rows.service = 'SAMU') AND "
        "(product_rows.department IS NOT NULL AND product_rows.department IN ('75') OR "
        "product_rows.owner_org IS NOT NULL AND product_rows.owner_org = "
        "'00000000-0000-4000-8000-0000000000b1')"
    )
    health = reader(SAMU_75, ancestors=(HEALTH,))
    sql = str(
        rules.row_filter(health, dict(rows.c), "postgresql").compile(
            dialect=PGDialect_asyncpg()  # type: ignore[no-untyped-call]
        )
    )
    assert "service" not in sql  # the SAMU rule cannot hold for a health reader: folded away
    everyone = rows_rule({"op": "ge", "left": {"user": "clearance"}, "right": {"value": "NP"}})
    assert str(everyone.row_filter(reader(rank=0), dict(rows.c), "sqlite")) == "true"
    assert str(everyone.row_filter(reader(rank=-1), dict(rows.c), "sqlite")) == "false"


def test_the_rls_predicate_reads_the_signed_context_and_escapes_literals() -> None:
    nasty = "o'k\\ :name %s $$ é"
    rules = parse(
        {
            "rows": [
                {
                    "effect": "deny",
                    "when": {"op": "eq", "left": {"rec": "service"}, "right": {"value": nasty}},
                },
                {
                    "effect": "allow",
                    "when": {"op": "in", "left": {"rec": "department"}, "right": {"user": "roles"}},
                },
                {
                    "effect": "allow",
                    "when": {"op": "le", "left": {"rec": "level"}, "right": {"user": "clearance"}},
                },
            ],
            "rows_default": "deny",
        }
    )
    predicate = rules.rls_predicate(rls.quote_ident)
    assert "(SELECT hv_ctx_roles())::text[]" in predicate
    assert "(SELECT array_length(hv_ctx_levels(), 1) - 1)" in predicate
    assert "(CASE \"level\" WHEN E'NP' THEN 0 WHEN E'DR' THEN 1 END)" in predicate
    literal = "E'o\\u0027k\\u005C \\u003Aname \\u0025s \\u0024\\u0024 \\u00E9'"
    assert f'"service" = {literal}' in predicate
    # Outside the E'…' literals: no quote, no colon, no percent, no dollar.
    outside = re.sub(r"E'[A-Za-z0-9 _\-.,/@\\]*'", "", predicate)
    assert not re.search(r"['%$]|(?<![:\w]):\w", outside), outside  # ::text[] is a cast
    weird = parse(
        {
            "rows_default": "deny",
            "rows": [{"effect": "allow", "when": {"op": "not_null", "left": {"rec": "beds"}}}],
        }
    )
    assert weird.rls_predicate(lambda name: f'row_data."{name}"') == '(row_data."beds" IS NOT NULL)'


# --- fingerprint and review ------------------------------------------------------------------


def test_the_tree_round_trips_and_its_fingerprint_ignores_key_order() -> None:
    rules = parse(TREE)
    again = parse(rules.to_tree())
    assert again.to_tree() == rules.to_tree()
    assert again.fingerprint() == rules.fingerprint()
    reordered = {"columns": TREE["columns"], "rows_default": "deny", "rows": TREE["rows"]}
    assert parse(reordered).fingerprint() == rules.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", rules.fingerprint())
    changed = {**TREE, "rows_default": "allow"}
    assert parse(changed).fingerprint() != rules.fingerprint()


def rule(effect: str, department: str) -> dict[str, Any]:
    when = {"op": "eq", "left": {"rec": "department"}, "right": {"value": department}}
    return {"effect": effect, "when": when}


def column_rule(effect: str, group: str) -> dict[str, Any]:
    when = {"op": "contains", "left": {"user": "groups"}, "right": {"value": group}}
    return {"columns": ["patients"], "effect": effect, "when": when}


def rule_set(
    rows: list[dict[str, Any]], default: str = "deny", columns: list[dict[str, Any]] | None = None
) -> RuleSet:
    return parse({"rows": rows, "rows_default": default, "columns": columns or []})


BEFORE = rule_set([rule("deny", "13"), rule("allow", "75")], columns=[column_rule("deny", "A")])


@pytest.mark.parametrize(
    ("after", "wider"),
    [
        (BEFORE, False),
        (
            rule_set(
                [{**rule("deny", "13"), "note": "autre"}, rule("allow", "75")],
                columns=[column_rule("deny", "A")],
            ),
            False,
        ),
        (
            rule_set(
                [rule("deny", "92"), rule("deny", "13"), rule("allow", "75")],
                columns=[column_rule("deny", "A")],
            ),
            False,
        ),
        (
            rule_set(
                [rule("deny", "13"), rule("deny", "92"), rule("allow", "75")],
                columns=[column_rule("deny", "A")],
            ),
            False,
        ),
        (rule_set([rule("deny", "13")], columns=[column_rule("deny", "A")]), False),
        (
            rule_set(
                [rule("deny", "13"), rule("allow", "75")],
                columns=[column_rule("deny", "B"), column_rule("deny", "A")],
            ),
            False,
        ),
        (
            rule_set(
                [rule("deny", "13"), rule("allow", "75")], "allow", [column_rule("deny", "A")]
            ),
            True,
        ),
        (rule_set([rule("allow", "75")], columns=[column_rule("deny", "A")]), True),
        (
            rule_set(
                [rule("deny", "13"), rule("allow", "75"), rule("allow", "92")],
                columns=[column_rule("deny", "A")],
            ),
            True,
        ),
        (
            rule_set([rule("deny", "13"), rule("allow", "77")], columns=[column_rule("deny", "A")]),
            True,
        ),
        (
            rule_set([rule("allow", "75"), rule("deny", "13")], columns=[column_rule("deny", "A")]),
            True,
        ),
        (rule_set([rule("deny", "13"), rule("allow", "75")]), True),
        (
            rule_set(
                [rule("deny", "13"), rule("allow", "75")],
                columns=[column_rule("allow", "B"), column_rule("deny", "A")],
            ),
            True,
        ),
    ],
)
def test_widens_is_false_only_when_provably_not_wider(after: RuleSet, wider: bool) -> None:
    assert after.widens(BEFORE) is wider


def test_rules_only_narrow_the_label_alone() -> None:
    assert not BEFORE.widens(None)
    narrower = rule_set([rule("deny", "13"), rule("allow", "75")], "deny")
    assert not narrower.widens(rule_set([rule("deny", "13"), rule("allow", "75")], "allow"))


# --- the reader ------------------------------------------------------------------------------


def test_reader_of_a_principal_and_its_signed_context(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=TEST_SECRET, label_levels=("NP", "DR"))
    org, parent = uuid.UUID(PREF_75), uuid.UUID(HEALTH)
    principal = Principal(
        user_id=uuid.uuid4(),
        username="prefet",
        organisation_id=org,
        organisation_ancestry=(org, parent),
        clearance="DR",
        roles=frozenset({"data_steward", "officer"}),
        groups=frozenset({"75"}),
    )
    assert Reader.of(settings, principal) == Reader(
        PREF_75,
        frozenset({PREF_75, HEALTH}),
        frozenset({"75"}),
        1,
        frozenset({"data_steward", "officer"}),
    )
    assert rls.reader_context(settings, principal)["roles"] == ["data_steward", "officer"]
    unknown = Principal(None, "x", None, (), "SECRET", frozenset(), frozenset())
    assert Reader.of(settings, unknown).clearance_rank == -1
    assert Reader.of(settings, unknown).organisation is None
