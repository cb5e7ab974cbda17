"""Filtered upstream and access review (issue 21, ADR 0038): the networks an organisation's
members may work from, whether they need a client certificate verified by the ingress, and
the confirmed access reviews.

``access_reviews`` is an identity table like ``users`` and ``auth_sessions``: administration
data, not a labelled record, so not under row-level security (the application reads
organisations before any principal exists). Expand-only: two columns with server defaults
and one table.

Revision ID: 0022
Revises: 0019
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organisations") as table:
        table.add_column(
            sa.Column("allowed_networks", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        table.add_column(
            sa.Column(
                "client_cert_required", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "access_reviews",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("confirmed_by", sa.Uuid(), nullable=True),
        sa.Column("confirmed_by_name", sa.String(length=100), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_access_reviews_organisation_id_organisations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by"], ["users.id"], name=op.f("fk_access_reviews_confirmed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_reviews")),
    )
    with op.batch_alter_table("access_reviews") as table:
        table.create_index(
            table.f("ix_access_reviews_organisation_id"), ["organisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("access_reviews") as table:
        table.drop_index(table.f("ix_access_reviews_organisation_id"))
    op.drop_table("access_reviews")
    with op.batch_alter_table("organisations") as table:
        table.drop_column("client_cert_required")
        table.drop_column("allowed_networks")
