"""main courante

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:22:10.291984
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime
from hypervision.records.labels import JsonList

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_idempotency_keys_user_id")),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_table(
        "record_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("label_level", sa.String(length=16), nullable=False),
        sa.Column("need_to_know", JsonList, nullable=False),
        sa.Column("audience", JsonList, nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_versions")),
        sa.UniqueConstraint("resource_id", "version", name=op.f("uq_record_versions_resource_id")),
    )
    with op.batch_alter_table("record_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_record_versions_resource_id"), ["resource_id"], unique=False
        )

    op.create_table(
        "label_change_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_label_change_requests_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_label_change_requests_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_change_requests")),
    )
    with op.batch_alter_table("label_change_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_label_change_requests_resource_id"), ["resource_id"], unique=False
        )

    op.create_table(
        "situations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("label_level", sa.String(length=16), nullable=False),
        sa.Column("need_to_know", JsonList, nullable=False),
        sa.Column("audience", JsonList, nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_situations_author_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_situations")),
    )
    with op.batch_alter_table("situations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_situations_label_level"), ["label_level"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_situations_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("location", sa.JSON(), nullable=True),
        sa.Column("min_lon", sa.Float(), nullable=True),
        sa.Column("min_lat", sa.Float(), nullable=True),
        sa.Column("max_lon", sa.Float(), nullable=True),
        sa.Column("max_lat", sa.Float(), nullable=True),
        sa.Column("tags", JsonList, nullable=False),
        sa.Column("situation_id", sa.Uuid(), nullable=True),
        sa.Column("duplicate_of_id", sa.Uuid(), nullable=True),
        sa.Column("follow_up_of_id", sa.Uuid(), nullable=True),
        sa.Column("validated_at", UTCDateTime(), nullable=True),
        sa.Column("validated_by", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("label_level", sa.String(length=16), nullable=False),
        sa.Column("need_to_know", JsonList, nullable=False),
        sa.Column("audience", JsonList, nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_entries_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"], ["entries.id"], name=op.f("fk_entries_duplicate_of_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["follow_up_of_id"], ["entries.id"], name=op.f("fk_entries_follow_up_of_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["situation_id"], ["situations.id"], name=op.f("fk_entries_situation_id_situations")
        ),
        sa.ForeignKeyConstraint(
            ["validated_by"], ["users.id"], name=op.f("fk_entries_validated_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_entries_author_id"), ["author_id"], unique=False)
        batch_op.create_index(
            "ix_entries_bbox", ["min_lon", "max_lon", "min_lat", "max_lat"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_entries_category"), ["category"], unique=False)
        batch_op.create_index("ix_entries_feed", ["recorded_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_label_level"), ["label_level"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_occurred_at"), ["occurred_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_entries_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_entries_severity"), ["severity"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_situation_id"), ["situation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_status"), ["status"], unique=False)

    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("uploaded_by", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["entries.id"],
            name=op.f("fk_attachments_entry_id_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["users.id"], name=op.f("fk_attachments_uploaded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_attachments_storage_key")),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachments_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("label_level", sa.String(length=16), nullable=False),
        sa.Column("need_to_know", JsonList, nullable=False),
        sa.Column("audience", JsonList, nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_comments_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["entries.id"],
            name=op.f("fk_comments_entry_id_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comments_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_comments_label_level"), ["label_level"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_comments_organisation_id"), ["organisation_id"], unique=False
        )

    if op.get_bind().dialect.name == "postgresql":
        _postgres_search()
    else:
        _sqlite_search()


def _postgres_search() -> None:
    # French stemming with accents folded; tsvectors kept by the database itself.
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE TEXT SEARCH CONFIGURATION hv_french (COPY = french)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION hv_french "
        "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, french_stem"
    )
    op.execute(
        "ALTER TABLE entries ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('hv_french'::regconfig, coalesce(title, '')), 'A') || "
        "setweight(to_tsvector('hv_french'::regconfig, coalesce(body, '')), 'B')) STORED"
    )
    op.execute("CREATE INDEX ix_entries_search ON entries USING gin (search_vector)")
    op.execute(
        "ALTER TABLE comments ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('hv_french'::regconfig, coalesce(body, '')), 'C')) STORED"
    )
    op.execute("CREATE INDEX ix_comments_search ON comments USING gin (search_vector)")


def _sqlite_search() -> None:
    # FTS5 over French-stemmed, accent-folded text, kept in step by the search service.
    op.execute(
        "CREATE VIRTUAL TABLE search_fts USING fts5("
        "doc_id UNINDEXED, entry_id UNINDEXED, kind UNINDEXED, title, body, "
        "tokenize = 'unicode61 remove_diacritics 2')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_comments_search")
        op.execute("DROP INDEX IF EXISTS ix_entries_search")
        op.execute("ALTER TABLE comments DROP COLUMN IF EXISTS search_vector")
        op.execute("ALTER TABLE entries DROP COLUMN IF EXISTS search_vector")
        op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS hv_french")
    else:
        op.execute("DROP TABLE IF EXISTS search_fts")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comments_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_comments_label_level"))
        batch_op.drop_index(batch_op.f("ix_comments_entry_id"))

    op.drop_table("comments")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_entry_id"))

    op.drop_table("attachments")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entries_status"))
        batch_op.drop_index(batch_op.f("ix_entries_situation_id"))
        batch_op.drop_index(batch_op.f("ix_entries_severity"))
        batch_op.drop_index(batch_op.f("ix_entries_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_entries_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_entries_label_level"))
        batch_op.drop_index("ix_entries_feed")
        batch_op.drop_index(batch_op.f("ix_entries_category"))
        batch_op.drop_index("ix_entries_bbox")
        batch_op.drop_index(batch_op.f("ix_entries_author_id"))

    op.drop_table("entries")
    with op.batch_alter_table("situations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_situations_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_situations_label_level"))

    op.drop_table("situations")
    with op.batch_alter_table("label_change_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_label_change_requests_resource_id"))

    op.drop_table("label_change_requests")
    with op.batch_alter_table("record_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_record_versions_resource_id"))

    op.drop_table("record_versions")
    op.drop_table("outbox")
    op.drop_table("idempotency_keys")
