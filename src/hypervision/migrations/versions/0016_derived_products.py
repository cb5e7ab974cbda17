"""Derived products and lineage (issue 17, ADR 0028): the definition of each derived product
and the edges from a derived product to its sources. Both belong to the derived product
(visible with it) and get the row-level security template (``records.rls``).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "product_derivations",
        sa.Column(
            "product_id",
            sa.Uuid,
            sa.ForeignKey("data_products.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("defined_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("defined_at", UTCDateTime, nullable=False),
        sa.Column("computed_from", sa.JSON, nullable=False),
        sa.Column("failure", sa.JSON, nullable=True),
    )
    op.create_table(
        "product_inputs",
        sa.Column(
            "derived_id",
            sa.Uuid,
            sa.ForeignKey("data_products.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "source_id", sa.Uuid, sa.ForeignKey("data_products.id"), primary_key=True, index=True
        ),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    from hypervision.kinds import KINDS
    from hypervision.records.rls import protect

    protect(op.execute, KINDS["product_derivation"], KINDS)
    protect(op.execute, KINDS["product_input"], KINDS)


def downgrade() -> None:
    op.drop_table("product_inputs")
    op.drop_table("product_derivations")
