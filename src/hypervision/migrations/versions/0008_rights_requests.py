"""Rights requests: widenings of a user's rights waiting for a second administrator

A request holds data about users only (no label, no operational record), like the other
identity tables: no row-level security; the application's role gets its DML from the grants
``hypervision migrate`` applies after every migration (``policy.rls.GRANTS``), and the
administrator check guards it in the application (ADR 0011, ADR 0013).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "user_id",
            sa.Uuid,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("requested_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("basis", sa.JSON, nullable=False),
        sa.Column("target", sa.JSON, nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("decided_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("rights_requests")
