"""Reports (issue 18, ADR 0045): report schedules of a space and the deliveries they made.
Expand-only. No label columns: a schedule is visible with its space, a delivery with its
schedule (row-level security template, ``records.rls``).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_schedules",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "space_id", sa.Uuid, sa.ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("times", sa.JSON, nullable=False),
        sa.Column("module_ids", sa.JSON, nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("created_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("last_run_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_report_schedules_space_id", "report_schedules", ["space_id"])
    op.create_table(
        "report_deliveries",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "schedule_id",
            sa.Uuid,
            sa.ForeignKey("report_schedules.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("space_id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("via_organisation_id", sa.Uuid, nullable=True),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("level", sa.String(16), nullable=True),
        sa.Column("email_status", sa.String(16), nullable=False),
        sa.Column("email_error", sa.String(300), nullable=True),
        sa.Column("emailed_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_report_deliveries_schedule_id", "report_deliveries", ["schedule_id"])
    op.create_index("ix_report_deliveries_user_id", "report_deliveries", ["user_id"])
    if op.get_bind().dialect.name != "postgresql":
        return
    from hypervision.kinds import KINDS
    from hypervision.records.rls import protect

    protect(op.execute, KINDS["report_schedule"], KINDS)
    protect(op.execute, KINDS["report_delivery"], KINDS)


def downgrade() -> None:
    op.drop_table("report_deliveries")
    op.drop_table("report_schedules")
