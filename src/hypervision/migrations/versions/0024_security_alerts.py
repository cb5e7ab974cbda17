"""Security alerts (issue 21, ADR 0040): rules, alerts, the evaluator's cursor and the
addresses each account signed in from. Expand-only. Like the audit trail they cite, these
tables are read and written only by security officers and the system context (row-level
security on PostgreSQL). The default rules are installed at first start, not here (the
evaluator creates its cursor and them once, in one transaction).

Revision ID: 0024
Revises: 0019
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("alert_rules", "security_alerts", "alert_cursor", "alert_known_addresses")
ALLOWED = "((SELECT hv_ctx_system()) OR (SELECT hv_ctx_audit()))"


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    op.create_table(
        "security_alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("rule_name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_key", sa.String(length=100), nullable=False),
        sa.Column("subject_name", sa.String(length=100), nullable=False),
        sa.Column("measure", sa.Integer(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("records", sa.JSON(), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_alerts")),
    )
    with op.batch_alter_table("security_alerts") as table:
        table.create_index("ix_security_alerts_open", ["rule_id", "subject_key", "state"])
        table.create_index(table.f("ix_security_alerts_state"), ["state"])
    op.create_table(
        "alert_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("defaults_installed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_cursor")),
    )
    op.create_table(
        "alert_known_addresses",
        sa.Column("user_key", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_key", "address", name=op.f("pk_alert_known_addresses")),
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
