"""Four eyes on a derived product drawn from rules-restricted sources of its own domain (issue
17, ADR 0028): whether its release waits for a second steward, and who released it when.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("product_derivations") as table:
        table.add_column(
            sa.Column("needs_release", sa.Boolean, nullable=False, server_default=sa.false())
        )
        table.add_column(
            sa.Column("released_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=True)
        )
        table.add_column(sa.Column("released_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("product_derivations") as table:
        table.drop_column("released_at")
        table.drop_column("released_by")
        table.drop_column("needs_release")
