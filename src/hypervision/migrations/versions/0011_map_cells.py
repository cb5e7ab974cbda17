"""Map cells: counts of located entries per grid cell, zoom band and label signature (issue 15)

``map_signatures`` holds the label columns the policy reads (level, need-to-know, audience,
owner) of located entries, one row per distinct combination; ``map_cells`` counts, per stored
grid zoom and cell, the entries of one signature by severity × status, with the sums of their
centres (``logbook/cells.py``; ADR 0020). Both are filled from the existing entries here, then kept
in the write transaction of every entry change.

A count of the entries of a signature in a small cell tells whether such entries exist there:
on PostgreSQL both tables get the row-level security template of 0007 (ENABLE, FORCE, one
policy per command). A signature has the visibility rule of the records it stands for; a cell
is visible with its signature. Writers only ever touch the signatures of entries they write,
which they may see (the rule of labels on write), so the policies never refuse a legitimate
write.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.logbook.cells import rebuild
from hypervision.records.labels import JsonList
from hypervision.records.rls import VISIBLE, drop, statements

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAIRS = [
    f"n_{severity}_{status}"
    for severity in ("info", "minor", "major", "critical")
    for status in ("open", "in_progress", "closed")
]

# table -> who may read, insert, update and delete its rows (beyond the system context)
RULES = {
    "map_signatures": VISIBLE,
    "map_cells": "EXISTS (SELECT 1 FROM map_signatures p WHERE p.id = signature_id)",
}


def upgrade() -> None:
    op.create_table(
        "map_signatures",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("label_level", sa.String(16), nullable=False),
        sa.Column("need_to_know", JsonList, nullable=False),
        sa.Column("audience", JsonList, nullable=False),
        sa.Column("organisation_id", sa.Uuid, nullable=False, index=True),
    )
    op.create_table(
        "map_cells",
        sa.Column("grid", sa.SmallInteger, primary_key=True),
        sa.Column("gx", sa.Integer, primary_key=True),
        sa.Column("gy", sa.Integer, primary_key=True),
        sa.Column("signature_id", sa.Uuid, sa.ForeignKey("map_signatures.id"), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in PAIRS),
        sa.Column("sum_lon", sa.Float, nullable=False),
        sa.Column("sum_lat", sa.Float, nullable=False),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # The owner reads every entry to count them: FORCE (migration 0007) would hold an owner
        # that is not superuser to the empty identity. Restored below, in this transaction.
        op.execute("ALTER TABLE entries NO FORCE ROW LEVEL SECURITY")
    rebuild(op.get_bind())
    if postgres:
        op.execute("ALTER TABLE entries FORCE ROW LEVEL SECURITY")
        for table, rule in RULES.items():
            for statement in statements(table, rule):
                op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in RULES:
            drop(op.execute, table)
    op.drop_table("map_cells")
    op.drop_table("map_signatures")
