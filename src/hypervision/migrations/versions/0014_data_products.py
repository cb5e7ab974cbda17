"""Data products (issue 17, ADR 0026): the products, their data versions, and the owner's
function that makes each product's own rows table

``data_products`` is a labelled, versioned kind; ``product_versions`` and
``product_rule_changes`` (rule changes waiting for a second steward) belong to their product
(visible with it). Both get the row-level security template (``records.rls``); versions and
label requests now also name products.

``hv_ctx_roles()`` reads the reader's roles from the signed context (stewards' rules may test
them). ``hv_product_ddl(signed)`` runs, as the owner, DDL statements on one ``dp_<hex>`` table
when they are signed with the context key (the application's role has no CREATE right), then
grants the caller's role DML on that table.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hypervision.db import UTCDateTime
from hypervision.records.labels import JsonList

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One statement per item (asyncpg prepares each statement on its own).
FUNCTIONS = (
    r"""
CREATE FUNCTION hv_ctx_roles() RETURNS text[] LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$ SELECT coalesce(array(SELECT jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(hv_context() -> 'roles') = 'array'
             THEN hv_context() -> 'roles' ELSE '[]'::jsonb END)), '{}') $$
""",
    r"""
CREATE FUNCTION hv_product_ddl(signed text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    body text := split_part(coalesce(signed, ''), '.', 1);
    tag text := split_part(coalesce(signed, ''), '.', 2);
    secret bytea;
    payload jsonb;
    target text;
    statement text;
BEGIN
    SELECT k.key INTO secret FROM hv_context_key k WHERE k.id = 1;
    IF secret IS NULL OR body = '' OR tag = ''
       OR encode(public.hmac(convert_to(body, 'UTF8'), secret, 'sha256'), 'hex') <> tag THEN
        RAISE EXCEPTION 'hv_product_ddl: statements not signed' USING ERRCODE = '42501';
    END IF;
    payload := convert_from(decode(body, 'hex'), 'UTF8')::jsonb;
    IF payload ->> 'purpose' IS DISTINCT FROM 'product-ddl'
       OR coalesce((payload ->> 'exp')::double precision, 0) < extract(epoch FROM now()) THEN
        RAISE EXCEPTION 'hv_product_ddl: expired or foreign payload' USING ERRCODE = '42501';
    END IF;
    target := payload ->> 'table';
    IF target IS NULL OR target !~ '^dp_[0-9a-f]{32}$' THEN
        RAISE EXCEPTION 'hv_product_ddl: not a product table' USING ERRCODE = '42501';
    END IF;
    FOR statement IN SELECT jsonb_array_elements_text(payload -> 'statements') LOOP
        EXECUTE statement;
    END LOOP;
    IF to_regclass(quote_ident(target)) IS NOT NULL THEN
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I', target, session_user);
    END IF;
END
$$
""",
)


def upgrade() -> None:
    op.create_table(
        "data_products",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(160), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("successor_id", sa.Uuid, nullable=True),
        sa.Column("table_schema", sa.JSON, nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("data_version", sa.Integer, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("author_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("label_level", sa.String(16), nullable=False),
        sa.Column("need_to_know", JsonList, nullable=False),
        sa.Column("audience", JsonList, nullable=False),
        sa.Column("organisation_id", sa.Uuid, nullable=False, index=True),
    )
    op.create_table(
        "product_versions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "product_id",
            sa.Uuid,
            sa.ForeignKey("data_products.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor_id", sa.Uuid, nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("source", sa.JSON, nullable=False),
        sa.Column("rows_added", sa.Integer, nullable=False),
        sa.Column("rows_changed", sa.Integer, nullable=False),
        sa.Column("rows_removed", sa.Integer, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("schema_changes", sa.JSON, nullable=False),
        sa.UniqueConstraint("product_id", "number"),
    )
    op.create_table(
        "product_rule_changes",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "product_id",
            sa.Uuid,
            sa.ForeignKey("data_products.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("proposed_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("proposed_at", UTCDateTime, nullable=False),
        sa.Column("decided_by", sa.Uuid, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    from hypervision.kinds import KINDS
    from hypervision.records.rls import protect, refresh_versions

    for statement in FUNCTIONS:
        op.execute(statement)
    protect(op.execute, KINDS["product"], KINDS)
    protect(op.execute, KINDS["product_version"], KINDS)
    protect(op.execute, KINDS["product_rule_change"], KINDS)
    refresh_versions(
        op.execute, KINDS, ("entry", "situation", "zone", "layer", "synthesis", "product")
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        tables = bind.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE tablename ~ '^dp_[0-9a-f]{32}$'")
        ).scalars()
        for table in list(tables):
            op.execute(f'DROP TABLE "{table}"')
        op.execute("DROP FUNCTION IF EXISTS hv_product_ddl(text)")
        op.execute("DROP FUNCTION IF EXISTS hv_ctx_roles()")
    op.drop_table("product_rule_changes")
    op.drop_table("product_versions")
    op.drop_table("data_products")
