"""OpenID Connect sign-in beside local accounts (issue 20, ADR 0033): the accounts' identities
at the providers, and what a session opened there needs to end there too.

``user_identities`` is an identity table like ``users`` and ``auth_sessions``: not under
row-level security (the application reads it before any principal exists).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_identities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_identities_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_identities")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_user_identities_issuer")),
    )
    with op.batch_alter_table("user_identities") as table:
        table.create_index(table.f("ix_user_identities_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("auth_sessions") as table:
        table.add_column(sa.Column("oidc_provider", sa.String(length=32), nullable=True))
        table.add_column(sa.Column("id_token", sa.Text(), nullable=True))
        table.add_column(sa.Column("oidc_sid", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions") as table:
        table.drop_column("oidc_sid")
        table.drop_column("id_token")
        table.drop_column("oidc_provider")
    with op.batch_alter_table("user_identities") as table:
        table.drop_index(table.f("ix_user_identities_user_id"))
    op.drop_table("user_identities")
