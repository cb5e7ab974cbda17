"""Drop the label-level indexes: too few distinct values, and SQLite then sorts the feed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("entries", "comments", "situations")


def upgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_label_level", table_name=table)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ANALYZE")


def downgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_label_level", table, ["label_level"])
