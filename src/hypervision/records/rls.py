"""PostgreSQL row-level security policies derived from the registry of protected kinds: one
template, applied to every table (ADR 0011; the request identity itself is
``policy/rls.py``).

Migration 0007 wrote these policies by hand; ``rule`` and ``statements`` reproduce them
exactly (tests/records/test_rls_template.py checks each registered table against the
catalogue). A migration that protects a new kind calls ``protect(op.execute, KINDS[name], KINDS)``
(``hypervision.kinds``); the tables are listed there (``PROTECTED_TABLES``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from hypervision.records.registry import Kind, Registry

# The visibility rule of ``policy/rules.py`` over the columns label_level, need_to_know,
# audience, organisation_id. Each context function is wrapped in a sub-select so that it
# runs once per query (an InitPlan), not once per row.
VISIBLE = """(
    label_level = ANY ((SELECT hv_ctx_levels())::text[])
    AND need_to_know <@ (SELECT hv_ctx_groups())
    AND (jsonb_array_length(audience) = 0
         OR organisation_id = (SELECT hv_ctx_org())
         OR audience ?| (SELECT hv_ctx_ancestry()))
)"""

SYSTEM = "(SELECT hv_ctx_system())"

POLICIES = ("hv_read", "hv_insert", "hv_update", "hv_delete")


def parent_visible(registry: Registry, kinds: Collection[str] | None = None) -> str:
    """The record a version or a label request belongs to is visible (its own table's RLS
    applies inside the sub-select). ``kinds``: only these versioned kinds (a migration names
    those whose tables exist at its point of the history)."""
    parts = [
        f"(resource_type = '{kind}' AND EXISTS (SELECT 1 FROM {table} p WHERE p.id = resource_id))"  # noqa: S608 - constants
        for kind, table in registry.version_parents().items()
        if kinds is None or kind in kinds
    ]
    return "(" + " OR ".join(parts) + ")"


def rule(kind: Kind, registry: Registry) -> str:
    """Who may read, insert, update and delete a kind's rows (beyond the system context): its
    own label allows it, and its parent is visible."""
    if kind.parent is None:
        return VISIBLE
    parent = (
        f"EXISTS (SELECT 1 FROM {registry[kind.parent].table} p WHERE p.id = {kind.parent_key})"  # noqa: S608 - constants
    )
    return f"({VISIBLE} AND {parent})" if kind.labelled else parent


def rules(registry: Registry, kinds: Collection[str] | None = None) -> dict[str, str]:
    """table -> rule, for every kind and for versions and label requests (of ``kinds``)."""
    found = {kind.table: rule(kind, registry) for kind in registry}
    found["record_versions"] = f"({VISIBLE} AND {parent_visible(registry, kinds)})"
    found["label_change_requests"] = parent_visible(registry, kinds)
    return found


def statements(table: str, rule_sql: str) -> list[str]:
    """The template: RLS enabled and forced, and one policy per command. Nobody may write a
    record they could not read (the rule of labels on write, ADR 0004)."""
    allowed = f"({SYSTEM} OR {rule_sql})"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY hv_read ON {table} FOR SELECT USING {allowed}",
        f"CREATE POLICY hv_insert ON {table} FOR INSERT WITH CHECK {allowed}",
        f"CREATE POLICY hv_update ON {table} FOR UPDATE USING {allowed} WITH CHECK {allowed}",
        f"CREATE POLICY hv_delete ON {table} FOR DELETE USING {allowed}",
    ]


def protect(execute: Callable[[str], object], kind: Kind, registry: Registry) -> None:
    """For a migration (``protect(op.execute, KINDS["…"], KINDS)``, ``KINDS`` from
    ``hypervision.kinds``), PostgreSQL only: put a newly
    declared kind's table under row-level security."""
    for statement in statements(kind.table, rule(kind, registry)):
        execute(statement)


def drop(execute: Callable[[str], object], table: str) -> None:
    """Remove the template's policies from ``table`` (a downgrade, or before re-creating)."""
    for name in POLICIES:
        execute(f"DROP POLICY IF EXISTS {name} ON {table}")


def refresh_versions(
    execute: Callable[[str], object],
    registry: Registry,
    kinds: Collection[str] | None = None,
    tables: Iterable[str] | None = None,
) -> None:
    """Re-create the policies of versions and label requests, whose rule names every
    versioned kind: a migration adding a versioned kind calls it after ``protect``, naming
    the versioned kinds that exist at its point (``kinds``). Whatever it names, only the
    kinds whose tables exist are kept: ``tables``, by default those of the database the
    running migration is connected to — a kind declared since, whose table a later
    migration creates, is left to that migration (docs/adr/0042)."""
    present = set(tables) if tables is not None else existing_tables()
    if present is not None:
        registry = Registry(*(kind for kind in registry if kind.table in present))
    found = rules(registry, kinds)
    for table in ("record_versions", "label_change_requests"):
        drop(execute, table)
        for statement in statements(table, found[table]):
            execute(statement)


def existing_tables() -> set[str] | None:
    """The tables of the database the running Alembic migration is connected to; None when
    no migration is running (then every kind of the registry is named)."""
    from alembic import op
    from sqlalchemy import inspect

    try:
        bind = op.get_bind()
    except NameError:  # Alembic's proxy outside a migration
        return None
    return set(inspect(bind).get_table_names())
