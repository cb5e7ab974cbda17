"""Spaces (issue 18, ADR 0041): pages of modules officers assemble, labelled and versioned like
every protected record (row-level security template, ``records.rls``).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime
from hypervision.records.labels import JsonList

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spaces",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("template", sa.String(40), nullable=True),
        sa.Column("modules", sa.JSON, nullable=False),
        sa.Column("people", JsonList, nullable=False),
        sa.Column("editors", JsonList, nullable=False),
        sa.Column("owner_user_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("author_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("label_level", sa.String(16), nullable=False),
        sa.Column("need_to_know", JsonList, nullable=False),
        sa.Column("audience", JsonList, nullable=False),
        sa.Column("organisation_id", sa.Uuid, sa.ForeignKey("organisations.id"), nullable=False),
    )
    op.create_index("ix_spaces_organisation_id", "spaces", ["organisation_id"])
    if op.get_bind().dialect.name != "postgresql":
        return
    from hypervision.kinds import KINDS
    from hypervision.records.rls import protect, refresh_versions

    protect(op.execute, KINDS["space"], KINDS)
    refresh_versions(op.execute, KINDS)  # versions and label requests now name spaces too


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The policies of versions and label requests name the table: re-create them without
        # it (and without the kinds that belong to a space), before the table goes.
        from hypervision.kinds import KINDS
        from hypervision.records.registry import Registry
        from hypervision.records.rls import refresh_versions

        kept = (k for k in KINDS if "space" not in (k.name, k.parent))
        refresh_versions(op.execute, Registry(*kept))
    op.drop_table("spaces")
