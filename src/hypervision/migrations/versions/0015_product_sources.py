"""Product sources (issue 17, ADR 0029): a product's HTTP source polled on a schedule, and the
history of its runs; both belong to their product (row-level security template).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "product_sources",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "product_id",
            sa.Uuid,
            sa.ForeignKey("data_products.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("interval_minutes", sa.Integer, nullable=False),
        sa.Column("owner_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("etag", sa.String(200), nullable=True),
        sa.Column("last_modified", sa.String(100), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("next_run_at", UTCDateTime, nullable=False, index=True),
        sa.Column("last_run_at", UTCDateTime, nullable=True),
        sa.Column("last_status", sa.String(16), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "product_source_runs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "product_id",
            sa.Uuid,
            sa.ForeignKey("data_products.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("rows", sa.Integer, nullable=True),
        sa.Column("data_version", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Uuid, nullable=True),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    from hypervision.kinds import KINDS
    from hypervision.records.rls import protect

    protect(op.execute, KINDS["product_source"], KINDS)
    protect(op.execute, KINDS["product_source_run"], KINDS)


def downgrade() -> None:
    op.drop_table("product_source_runs")
    op.drop_table("product_sources")
