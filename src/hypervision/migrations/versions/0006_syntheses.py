"""Syntheses: the points de situation, their recipients (inbox) and schedules

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime
from hypervision.records.labels import JsonList

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "syntheses",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("scope", sa.JSON, nullable=False),
        sa.Column("narrative", sa.Text, nullable=False),
        sa.Column("figures", sa.JSON, nullable=False),
        sa.Column("entry_ids", JsonList, nullable=False),
        sa.Column("author_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("submitted_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("submitted_at", UTCDateTime, nullable=True),
        sa.Column("validated_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("validated_at", UTCDateTime, nullable=True),
        sa.Column("sent_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("supersedes_id", sa.Uuid, sa.ForeignKey("syntheses.id"), nullable=True),
        sa.Column("schedule_id", sa.Uuid, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("label_level", sa.String(16), nullable=False),
        sa.Column("need_to_know", JsonList, nullable=False),
        sa.Column("audience", JsonList, nullable=False),
        sa.Column("organisation_id", sa.Uuid, nullable=False, index=True),
    )
    op.create_table(
        "synthesis_recipients",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "synthesis_id",
            sa.Uuid,
            sa.ForeignKey("syntheses.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("via_organisation_id", sa.Uuid, nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=False),
        sa.Column("acknowledged_at", UTCDateTime, nullable=True),
        sa.Column("email_status", sa.String(16), nullable=False),
        sa.Column("email_error", sa.String(300), nullable=True),
        sa.Column("emailed_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("synthesis_id", "user_id", name="uq_recipient"),
    )
    op.create_table(
        "synthesis_schedules",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("times", sa.JSON, nullable=False),
        sa.Column("scope", sa.JSON, nullable=False),
        sa.Column("organisation_id", sa.Uuid, sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("created_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("last_run_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("synthesis_schedules")
    op.drop_table("synthesis_recipients")
    op.drop_table("syntheses")
