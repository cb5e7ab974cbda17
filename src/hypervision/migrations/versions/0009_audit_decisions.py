"""Audit decisions longer than eight characters: ``not_found`` (SECURITY.md item 29)

A read of a protected id that does not exist is recorded with the decision ``not_found``; one
the reader may not see, with ``denied``. Widening a varchar is a catalogue change on
PostgreSQL (no table rewrite, the hash chain is untouched); SQLite does not enforce lengths.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "audit_records", "decision", type_=sa.String(16), existing_type=sa.String(8)
        )


def downgrade() -> None:
    # The trail is append-only and hashed: its records are never rewritten, so the wider
    # column stays.
    pass
