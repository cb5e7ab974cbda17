"""Places: the address gazetteer and its typo-tolerant index; the vocabulary of the main
courante's full-text index (issue 16, ADR 0024)

``places`` holds public reference addresses imported from a national address base file
(``hypervision places import``). Its search index:

* SQLite: the FTS5 table ``places_fts`` with the trigram tokenizer over the folded name
  (kept in step by ``geo.addresses``; rowids derived from the place id);
* PostgreSQL: a GIN ``gin_trgm_ops`` index over ``places.search_text`` when the ``pg_trgm``
  extension can be created (it ships with the server's contrib package); without it the
  search falls back to substring matching (``geo.place_search``).

``search_fts_vocab`` (SQLite) is an ``fts5vocab`` view of the words of ``search_fts``: the
candidates of "did you mean" (``search.suggest``), checked against the policy before use.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "places",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("housenumber", sa.String(24), nullable=False),
        sa.Column("street", sa.String(200), nullable=False),
        sa.Column("postcode", sa.String(10), nullable=False),
        sa.Column("citycode", sa.String(10), nullable=False),
        sa.Column("city", sa.String(120), nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        available = bind.execute(
            sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        ).first()
        if available:
            # A trusted extension since PostgreSQL 13: the database owner may create it. A
            # refusal (older server, no privilege) leaves the substring fallback in place.
            savepoint = bind.begin_nested()
            try:
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
                savepoint.commit()
            except sa.exc.DBAPIError:
                savepoint.rollback()
        if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first():
            op.execute(
                "CREATE INDEX ix_places_search ON places USING gin (search_text gin_trgm_ops)"
            )
    else:
        op.execute(
            "CREATE VIRTUAL TABLE places_fts USING fts5("
            "place_id UNINDEXED, search_text, tokenize = 'trigram')"
        )
        op.execute("CREATE VIRTUAL TABLE search_fts_vocab USING fts5vocab(search_fts, 'row')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_places_search")
    else:
        op.execute("DROP TABLE IF EXISTS search_fts_vocab")
        op.execute("DROP TABLE IF EXISTS places_fts")
    op.drop_table("places")
