"""The registry of protected kinds is complete and every kind in it is covered: a table holding
a label (or a record of a protected kind) is declared; a declared kind has row-level security
set up by a migration, a live-topic decision and leak-matrix surfaces. No database needed."""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import ForeignKey, MetaData, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hypervision import models as all_models
from hypervision.db import Base
from hypervision.kinds import KINDS, PROTECTED_TABLES, SUPPORT_TABLES
from hypervision.records import rls
from hypervision.records.labels import Labelled
from hypervision.records.registry import Kind, Registry
from tests.security import test_leak_matrix

LABEL_COLUMNS = {"label_level", "need_to_know", "audience"}
MIGRATIONS = Path(all_models.__file__).parent / "migrations" / "versions"
MATRIX_SOURCE = Path(test_leak_matrix.__file__).read_text()


def protected_by_migrations() -> set[str]:
    """Tables whose policies a migration creates: the hand-written ones of 0007, and those a
    later migration protects with the template (``protect(op.execute, KINDS["…"], KINDS)``)."""
    tables = set(
        importlib.import_module("hypervision.migrations.versions.0007_row_level_security").RULES
    )
    for path in sorted(MIGRATIONS.glob("*.py")):
        for name in re.findall(
            r"""protect\(\s*op\.execute\s*,\s*KINDS\[["'](\w+)["']\]""", path.read_text()
        ):
            tables.add(KINDS[name].table)
    return tables


def problems(
    registry: Registry,
    metadata: MetaData,
    covers: Mapping[str, tuple[str, ...]],
    protected: set[str],
) -> list[str]:
    """Everything the registry misses or that a declared kind lacks, in words."""
    found: list[str] = []
    declared = set(registry.tables())
    kind_tables = declared | set(SUPPORT_TABLES)
    for table in metadata.sorted_tables:
        if table.name in kind_tables:
            continue
        if LABEL_COLUMNS & set(table.columns.keys()):
            found.append(f"table {table.name} has label columns but is not a registered kind")
        for fk in table.foreign_keys:
            if fk.column.table.name in declared and table.name not in declared:
                found.append(
                    f"table {table.name} belongs to {fk.column.table.name} (a protected kind) "
                    "but is not a registered kind"
                )
    for kind in registry:
        if kind.table not in protected:
            found.append(f"kind {kind.name}: no migration sets up its row-level security")
        if not isinstance(kind.live, bool):
            found.append(f"kind {kind.name}: no live-topic decision")
        surfaces = covers.get(kind.name, ())
        if not surfaces:
            found.append(f"kind {kind.name}: no leak-matrix surface")
        for surface in surfaces:
            if f'"{surface}"' not in MATRIX_SOURCE:
                found.append(f"kind {kind.name}: surface {surface} is not in the leak matrix")
    return sorted(set(found))


def test_the_registry_is_complete_and_every_kind_covered() -> None:
    assert problems(KINDS, Base.metadata, test_leak_matrix.COVERS, protected_by_migrations()) == []
    assert set(test_leak_matrix.COVERS) == {kind.name for kind in KINDS}


# --- a throw-away kind: what the test says when one is forgotten -------------------------------


class Scratch(DeclarativeBase):
    pass


class Note(Labelled, Scratch):
    """A new protected record, not declared anywhere yet."""

    __tablename__ = "scratch_notes"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class NoteMark(Scratch):
    """A record of a note (visible with its note)."""

    __tablename__ = "scratch_note_marks"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    note_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("scratch_notes.id"))


def test_a_forgotten_kind_fails_the_registry_test() -> None:
    """The same check, run on the application's tables plus a throw-away kind."""
    metadata = MetaData()
    for table in (*Base.metadata.sorted_tables, *Scratch.metadata.sorted_tables):
        table.to_metadata(metadata)
    protected = protected_by_migrations()
    covers = test_leak_matrix.COVERS
    # Not declared: its label columns give it away.
    assert problems(KINDS, metadata, covers, protected) == [
        "table scratch_notes has label columns but is not a registered kind"
    ]
    # Declared, but nothing else done yet: no RLS, no leak-matrix surface; its child table is
    # now seen as belonging to a protected kind.
    declared = Registry(*KINDS, Kind("note", Note, live=False))
    assert problems(declared, metadata, covers, protected) == [
        "kind note: no leak-matrix surface",
        "kind note: no migration sets up its row-level security",
        "table scratch_note_marks belongs to scratch_notes (a protected kind) but is not a "
        "registered kind",
    ]
    # Declared with its child, protected and covered: nothing missing.
    whole = Registry(
        *KINDS,
        Kind("note", Note, live=False),
        Kind("note_mark", NoteMark, live=False, parent="note", parent_key="note_id"),
    )
    done = {**covers, "note": ("entry.get",), "note_mark": ("entry.get",)}
    assert (
        problems(whole, metadata, done, protected | {"scratch_notes", "scratch_note_marks"}) == []
    )
    # A live-topic decision cannot be left out: ``live`` has no default.
    with pytest.raises(TypeError):
        Kind("note", Note)  # type: ignore[call-arg]


def test_a_declaration_is_checked() -> None:
    with pytest.raises(ValueError, match="twice"):
        Registry(*KINDS, Kind("entry", Note, live=False))
    with pytest.raises(ValueError, match="parent must be declared"):
        Registry(Kind("note_mark", NoteMark, live=False, parent="note", parent_key="note_id"))
    with pytest.raises(ValueError, match="needs a label"):
        Registry(Kind("note_mark", NoteMark, live=False))


def test_what_is_derived_from_the_registry() -> None:
    assert PROTECTED_TABLES == (
        "entries",
        "situations",
        "zones",
        "layers",
        "syntheses",
        "data_products",
        "spaces",
        "comments",
        "attachments",
        "layer_features",
        "synthesis_recipients",
        "product_versions",
        "product_rule_changes",
        "product_sources",
        "product_source_runs",
        "product_derivations",
        "product_inputs",
        "product_quality_runs",
        "product_quality_failures",
        "opendata_publications",
        "opendata_releases",
        "opendata_rows",
        "report_schedules",
        "report_deliveries",
        "hub_documents",
        "announcements",
        "record_versions",
        "label_change_requests",
        "outbox",
        "audit_records",
        "audit_resources",
        "map_signatures",
        "map_cells",
        "alert_rules",
        "security_alerts",
        "alert_cursor",
        "alert_known_addresses",
    )
    assert {
        "entry",
        "comment",
        "situation",
        "attachment",
        "product",
        "space",
        "announcement",
    } == KINDS.topics()
    assert KINDS.version_parents() == {
        "entry": "entries",
        "situation": "situations",
        "zone": "zones",
        "layer": "layers",
        "synthesis": "syntheses",
        "product": "data_products",
        "hub_document": "hub_documents",
        "announcement": "announcements",
        "space": "spaces",
    }


def test_the_template_reproduces_migration_0007() -> None:
    """The policies 0007 wrote by hand are exactly what the template generates from the
    registry (the catalogue itself is compared in tests/records/test_rls_template.py)."""
    migration = importlib.import_module("hypervision.migrations.versions.0007_row_level_security")
    # The kinds 0007 knew (later kinds are protected by their own migrations, which also
    # refresh the rules of versions and label requests).
    then = Registry(*(kind for kind in KINDS if kind.table in migration.RULES))
    assert rls.rules(then) == migration.RULES
    assert rls.VISIBLE == migration.VISIBLE
    assert rls.SYSTEM == migration.SYSTEM
