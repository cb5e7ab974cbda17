"""The security console (issue 21, ADR 0039): the trail's index by record, and by person.

- ``audit_resources`` (resource_id, seq): one row per record id a sequenced audit record
  names, filled by the sequencer in the batch that chains the record; "who saw this" reads it
  as an index range. Existing sequenced records are indexed here (queued ones will be by the
  sequencer). Under row-level security like ``audit_records``: auditors and the system read,
  everyone appends, only the system deletes (retention); no UPDATE or DELETE for the
  application's role (``policy.rls.GRANTS``).
- ``ix_audit_records_actor_seq`` (actor_id, seq): a person's activity, newest first.

Expand-only: a new table and a new index.

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYSTEM = "(SELECT hv_ctx_system())"


def upgrade() -> None:
    op.create_table(
        "audit_resources",
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("resource_id", "seq", name=op.f("pk_audit_resources")),
    )
    op.create_index("ix_audit_resources_seq", "audit_resources", ["seq"])
    op.create_index("ix_audit_records_actor_seq", "audit_records", ["actor_id", "seq"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "INSERT INTO audit_resources (resource_id, seq) "
            "SELECT DISTINCT left(r.value, 64), a.seq FROM audit_records a, "
            "jsonb_array_elements_text(a.resource_ids::jsonb) AS r(value) "
            "WHERE a.seq IS NOT NULL"
        )
        op.execute("ALTER TABLE audit_resources ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE audit_resources FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY hv_read ON audit_resources FOR SELECT "
            f"USING ({SYSTEM} OR (SELECT hv_ctx_audit()))"
        )
        op.execute("CREATE POLICY hv_insert ON audit_resources FOR INSERT WITH CHECK (true)")
        op.execute(f"CREATE POLICY hv_prune ON audit_resources FOR DELETE USING ({SYSTEM})")
    else:
        op.execute(
            "INSERT INTO audit_resources (resource_id, seq) "
            "SELECT DISTINCT substr(j.value, 1, 64), a.seq FROM audit_records a, "
            "json_each(a.resource_ids) AS j WHERE a.seq IS NOT NULL"
        )


def downgrade() -> None:
    op.drop_index("ix_audit_records_actor_seq", table_name="audit_records")
    op.drop_table("audit_resources")
