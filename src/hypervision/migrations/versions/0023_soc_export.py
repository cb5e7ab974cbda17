"""Handing the audit trail to the SOC (issue 21, ADR 0037): the export cursor of each sink.

``soc_export_cursors`` holds sequence numbers and a lease, no protected data: no row-level
security (like ``audit_head``). Expand-only: a new table.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "soc_export_cursors",
        sa.Column("sink", sa.String(length=32), nullable=False),
        sa.Column("sent_seq", sa.BigInteger(), nullable=False),
        sa.Column("resume_seq", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_sent", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_resume", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sink", name=op.f("pk_soc_export_cursors")),
    )


def downgrade() -> None:
    op.drop_table("soc_export_cursors")
