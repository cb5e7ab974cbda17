"""Security operations, the rest of issue 21 (ADR 0046): the alert e-mails' queue, the
security officers' e-mail subscriptions, and the countries each account signed in from.
Expand-only. Like the alerts they serve, read and written only by security officers and the
system context (row-level security on PostgreSQL).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("alert_mails", "alert_mail_subscriptions", "alert_known_countries")
ALLOWED = "((SELECT hv_ctx_system()) OR (SELECT hv_ctx_audit()))"


def upgrade() -> None:
    op.create_table(
        "alert_mails",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("by_rule", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_mails")),
    )
    with op.batch_alter_table("alert_mails") as table:
        table.create_index("ix_alert_mails_due", ["state", "next_at"])
    op.create_table(
        "alert_mail_subscriptions",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("min_severity", sa.String(length=16), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_alert_mail_subscriptions")),
    )
    op.create_table(
        "alert_known_countries",
        sa.Column("user_key", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=8), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_key", "country", name=op.f("pk_alert_known_countries")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in TABLES:
        op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY hv_read ON {name} FOR SELECT USING {ALLOWED}")
        op.execute(f"CREATE POLICY hv_insert ON {name} FOR INSERT WITH CHECK {ALLOWED}")
        op.execute(
            f"CREATE POLICY hv_update ON {name} FOR UPDATE USING {ALLOWED} WITH CHECK {ALLOWED}"
        )
        op.execute(f"CREATE POLICY hv_delete ON {name} FOR DELETE USING {ALLOWED}")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
