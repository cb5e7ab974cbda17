"""The hub (issue 18, docs/adr/0042): the crisis directory (duty assignments, not labelled:
no row-level security), shared documents and announcements (protected kinds, versioned:
row-level security from the template, and the policies of versions and label requests
refreshed to name them). Expand-only.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime
from hypervision.records.labels import JsonList

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _label() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("label_level", sa.String(16), nullable=False),
        sa.Column("need_to_know", JsonList, nullable=False),
        sa.Column("audience", JsonList, nullable=False),
        sa.Column("organisation_id", sa.Uuid, nullable=False, index=True),
    ]


def _stamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "duty_assignments",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=True, index=True),
        sa.Column("person_name", sa.String(120), nullable=False),
        sa.Column(
            "organisation_id",
            sa.Uuid,
            sa.ForeignKey("organisations.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("room", sa.String(120), nullable=False),
        sa.Column("function", sa.String(120), nullable=False),
        sa.Column("phone", sa.String(40), nullable=False),
        sa.Column("radio", sa.String(60), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("starts_at", UTCDateTime, nullable=False, index=True),
        sa.Column("ends_at", UTCDateTime, nullable=False, index=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=True),
        *_stamps(),
    )
    op.create_table(
        "hub_documents",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(100), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("author_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        *_stamps(),
        *_label(),
    )
    op.create_table(
        "announcements",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("importance", sa.String(16), nullable=False),
        sa.Column("starts_at", UTCDateTime, nullable=False, index=True),
        sa.Column("ends_at", UTCDateTime, nullable=True),
        sa.Column("author_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        *_stamps(),
        *_label(),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    from hypervision.kinds import KINDS
    from hypervision.records.rls import protect, refresh_versions

    protect(op.execute, KINDS["hub_document"], KINDS)
    protect(op.execute, KINDS["announcement"], KINDS)
    refresh_versions(op.execute, KINDS)  # names the kinds whose tables exist now


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The policies of versions and label requests name the two tables: re-create them
        # without, before the tables go.
        from hypervision.kinds import KINDS
        from hypervision.records.registry import Registry
        from hypervision.records.rls import refresh_versions

        gone = {"hub_document", "announcement"}
        refresh_versions(op.execute, Registry(*(k for k in KINDS if k.name not in gone)))
    op.drop_table("announcements")
    op.drop_table("hub_documents")
    op.drop_table("duty_assignments")
