"""The freshness of a space's shared module results (ADR 0047): the newest outbox event of a
resource, or of a kind of resource, read by an index alone.

``ix_outbox_resource`` (resource_type, resource_id, id) answers "the newest event of this
product" (and of the products it is derived from); ``ix_outbox_type_id`` (resource_type, id)
"the newest event of any entry (situation, synthesis, zone)", each a backward walk of one
index leaf, however long the outbox. Expand-only, on SQLite and PostgreSQL.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_resource", "outbox", ["resource_type", "resource_id", "id"])
    op.create_index("ix_outbox_type_id", "outbox", ["resource_type", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_type_id", table_name="outbox")
    op.drop_index("ix_outbox_resource", table_name="outbox")
