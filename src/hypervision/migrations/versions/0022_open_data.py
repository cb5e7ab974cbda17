"""Open data (issue 19, ADR 0035): publications of data products as public datasets, their
immutable releases and the rows each release holds. All three belong to the published product
(visible with it) and get the row-level security template (``records.rls``).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _product() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "product_id",
        sa.Uuid,
        sa.ForeignKey("data_products.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


def upgrade() -> None:
    op.create_table(
        "opendata_publications",
        sa.Column("id", sa.Uuid, primary_key=True),
        _product(),
        sa.Column("organisation_id", sa.Uuid, sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.String(160), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("themes", sa.JSON, nullable=False),
        sa.Column("licence", sa.String(200), nullable=False),
        sa.Column("schedule", sa.String(16), nullable=False),
        sa.Column("columns", sa.JSON, nullable=False),
        sa.Column("conditions", sa.JSON, nullable=False),
        sa.Column("aggregation", sa.JSON, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source_schema", sa.String(64), nullable=False),
        sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("held_reason", sa.Text, nullable=False),
        sa.Column("proposed_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("proposed_at", UTCDateTime, nullable=False),
        sa.Column("approved_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("approved_at", UTCDateTime, nullable=True),
        sa.Column("withdrawn_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("withdrawn_at", UTCDateTime, nullable=True),
        sa.Column("withdrawal_reason", sa.Text, nullable=False),
        sa.Column("modified_at", UTCDateTime, nullable=False),
        sa.Column("next_refresh_at", UTCDateTime, nullable=True),
        sa.Column("release_count", sa.Integer, nullable=False),
    )
    op.create_table(
        "opendata_releases",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "publication_id",
            sa.Uuid,
            sa.ForeignKey("opendata_publications.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        _product(),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("source_version", sa.Integer, nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("suppressed", sa.Integer, nullable=False),
        sa.Column("temporal", sa.JSON, nullable=True),
        sa.Column("bbox", sa.JSON, nullable=True),
        sa.UniqueConstraint("publication_id", "number"),
    )
    op.create_table(
        "opendata_rows",
        sa.Column(
            "release_id",
            sa.Uuid,
            sa.ForeignKey("opendata_releases.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column(
            "product_id",
            sa.Uuid,
            sa.ForeignKey("data_products.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("data", sa.JSON, nullable=False),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    from hypervision.kinds import KINDS
    from hypervision.records.rls import protect

    protect(op.execute, KINDS["opendata_publication"], KINDS)
    protect(op.execute, KINDS["opendata_release"], KINDS)
    protect(op.execute, KINDS["opendata_row"], KINDS)


def downgrade() -> None:
    op.drop_table("opendata_rows")
    op.drop_table("opendata_releases")
    op.drop_table("opendata_publications")
