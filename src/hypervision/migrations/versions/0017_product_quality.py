"""Data products' quality (issue 17, ADR 0027): the stewards' quality rules on the product,
the runs of their checks and the failing rows of each product's latest run.

``product_quality_runs`` and ``product_quality_failures`` belong to their product (visible
with it: the row-level security template, ``records.rls``).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "data_products",
        sa.Column("quality_rules", sa.JSON, nullable=False, server_default="[]"),
    )
    op.create_table(
        "product_quality_runs",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "product_id",
            sa.Uuid,
            sa.ForeignKey("data_products.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("at", UTCDateTime, nullable=False, index=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("data_version", sa.Integer, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("stale", sa.Boolean, nullable=False),
        sa.Column("failed_rules", sa.Integer, nullable=False),
        sa.Column("results", sa.JSON, nullable=False),
    )
    op.create_table(
        "product_quality_failures",
        sa.Column(
            "run_id",
            sa.Uuid,
            sa.ForeignKey("product_quality_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("rule_id", sa.String(32), primary_key=True),
        sa.Column("row", sa.BigInteger, primary_key=True),
        sa.Column(
            "product_id",
            sa.Uuid,
            sa.ForeignKey("data_products.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    from hypervision.kinds import KINDS
    from hypervision.records.rls import protect

    protect(op.execute, KINDS["product_quality_run"], KINDS)
    protect(op.execute, KINDS["product_quality_failure"], KINDS)


def downgrade() -> None:
    op.drop_table("product_quality_failures")
    op.drop_table("product_quality_runs")
    op.drop_column("data_products", "quality_rules")
