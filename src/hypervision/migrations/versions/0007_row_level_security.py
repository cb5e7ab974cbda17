"""PostgreSQL row-level security: the second wall under the application's policy

Every protected table gets ENABLE and FORCE ROW LEVEL SECURITY and policies that restate the
visibility rule of ``policy/rules.py`` against the request identity. The identity is a signed
context (``hypervision.context``, set per transaction by the application): ``hv_context()``
checks its HMAC with a key that only the owner role can read, so SQL run as the application
role cannot forge one; no context, an empty one or a bad one is the empty identity, which sees
no row. SQLite has no row-level security: nothing to do there (ADR 0011).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The visibility rule over the columns label_level, need_to_know, audience, organisation_id.
# Each context function is wrapped in a sub-select so that it runs once per query (an
# InitPlan), not once per row.
VISIBLE = """(
    label_level = ANY ((SELECT hv_ctx_levels())::text[])
    AND need_to_know <@ (SELECT hv_ctx_groups())
    AND (jsonb_array_length(audience) = 0
         OR organisation_id = (SELECT hv_ctx_org())
         OR audience ?| (SELECT hv_ctx_ancestry()))
)"""

# The same rule over a label kept as JSON ({"level", "need_to_know", "audience", "owner"}).
VISIBLE_JSON = """(
    (label::jsonb ->> 'level') = ANY ((SELECT hv_ctx_levels())::text[])
    AND coalesce(label::jsonb -> 'need_to_know', '[]'::jsonb) <@ (SELECT hv_ctx_groups())
    AND (jsonb_array_length(coalesce(label::jsonb -> 'audience', '[]'::jsonb)) = 0
         OR (label::jsonb ->> 'owner') = (SELECT hv_ctx_org())::text
         OR coalesce(label::jsonb -> 'audience', '[]'::jsonb) ?| (SELECT hv_ctx_ancestry()))
)"""

SYSTEM = "(SELECT hv_ctx_system())"

PARENTS = {  # resource_type -> table of a versioned or reviewed record
    "entry": "entries",
    "situation": "situations",
    "zone": "zones",
    "layer": "layers",
    "synthesis": "syntheses",
}


def _parent_visible() -> str:
    """The record a version or a label request belongs to is visible (its own table's RLS
    applies inside the sub-select)."""
    parts = [
        f"(resource_type = '{kind}' AND EXISTS (SELECT 1 FROM {table} p WHERE p.id = resource_id))"  # noqa: S608 - constants
        for kind, table in PARENTS.items()
    ]
    return "(" + " OR ".join(parts) + ")"


# table -> who may read, insert, update and delete its rows (beyond the system context)
RULES: dict[str, str] = {
    "entries": VISIBLE,
    "situations": VISIBLE,
    "zones": VISIBLE,
    "layers": VISIBLE,
    "syntheses": VISIBLE,
    "comments": f"({VISIBLE} AND EXISTS (SELECT 1 FROM entries p WHERE p.id = entry_id))",  # noqa: S608
    "attachments": "EXISTS (SELECT 1 FROM entries p WHERE p.id = entry_id)",
    "layer_features": "EXISTS (SELECT 1 FROM layers p WHERE p.id = layer_id)",
    "synthesis_recipients": "EXISTS (SELECT 1 FROM syntheses p WHERE p.id = synthesis_id)",
    "record_versions": f"({VISIBLE} AND {_parent_visible()})",
    "label_change_requests": _parent_visible(),
}

# One statement per item (asyncpg prepares each statement on its own).
FUNCTIONS = r"""
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE hv_context_key (
    id integer PRIMARY KEY CHECK (id = 1),
    key bytea NOT NULL
);

REVOKE ALL ON hv_context_key FROM PUBLIC;

-- The verified identity of the current transaction, or '{}' (sees nothing).
-- SECURITY DEFINER: it alone reads the key; search_path pinned against hijacking.
CREATE FUNCTION hv_context() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    raw text := current_setting('hypervision.context', true);
    body text;
    tag text;
    secret bytea;
    payload jsonb;
BEGIN
    IF raw IS NULL OR raw = '' THEN
        RETURN '{}'::jsonb;
    END IF;
    body := split_part(raw, '.', 1);
    tag := split_part(raw, '.', 2);
    SELECT k.key INTO secret FROM hv_context_key k WHERE k.id = 1;
    IF secret IS NULL OR body = '' OR tag = ''
       OR encode(public.hmac(convert_to(body, 'UTF8'), secret, 'sha256'), 'hex') <> tag THEN
        RETURN '{}'::jsonb;
    END IF;
    BEGIN
        payload := convert_from(decode(body, 'hex'), 'UTF8')::jsonb;
    EXCEPTION WHEN others THEN
        RETURN '{}'::jsonb;
    END;
    IF jsonb_typeof(payload) <> 'object'
       OR coalesce((payload ->> 'exp')::double precision, 0) < extract(epoch FROM now()) THEN
        RETURN '{}'::jsonb;
    END IF;
    RETURN payload;
END
$$;

CREATE FUNCTION hv_ctx_system() RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$ SELECT coalesce((hv_context() ->> 'system')::boolean, false) $$;

CREATE FUNCTION hv_ctx_audit() RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$ SELECT coalesce((hv_context() ->> 'audit')::boolean, false) $$;

CREATE FUNCTION hv_ctx_levels() RETURNS text[] LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$ SELECT coalesce(array(SELECT jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(hv_context() -> 'levels') = 'array'
             THEN hv_context() -> 'levels' ELSE '[]'::jsonb END)), '{}') $$;

CREATE FUNCTION hv_ctx_groups() RETURNS jsonb LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$ SELECT CASE WHEN jsonb_typeof(hv_context() -> 'groups') = 'array'
                  THEN hv_context() -> 'groups' ELSE '[]'::jsonb END $$;

CREATE FUNCTION hv_ctx_ancestry() RETURNS text[] LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$ SELECT coalesce(array(SELECT jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(hv_context() -> 'ancestry') = 'array'
             THEN hv_context() -> 'ancestry' ELSE '[]'::jsonb END)), '{}') $$;

CREATE FUNCTION hv_ctx_org() RETURNS uuid LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$ SELECT (hv_context() ->> 'org')::uuid $$;
"""

CONTEXT_FUNCTIONS = (
    "hv_ctx_system()",
    "hv_ctx_audit()",
    "hv_ctx_levels()",
    "hv_ctx_groups()",
    "hv_ctx_ancestry()",
    "hv_ctx_org()",
)


def _protect(table: str, rule: str, *, insert: str | None = None) -> None:
    allowed = f"({SYSTEM} OR {rule})"
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY hv_read ON {table} FOR SELECT USING {allowed}")
    op.execute(f"CREATE POLICY hv_insert ON {table} FOR INSERT WITH CHECK {insert or allowed}")
    op.execute(
        f"CREATE POLICY hv_update ON {table} FOR UPDATE USING {allowed} WITH CHECK {allowed}"
    )
    op.execute(f"CREATE POLICY hv_delete ON {table} FOR DELETE USING {allowed}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in FUNCTIONS.split("\n\n"):
        if statement.strip():
            op.execute(statement)
    # Nobody may write a record they could not read (the rule of labels on write, ADR 0004).
    for table, rule in RULES.items():
        _protect(table, rule)
    # The outbox is written by every change (some announce revocations, with no label) and
    # read by the live hub in the system context only.
    op.execute("ALTER TABLE outbox ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE outbox FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY hv_read ON outbox FOR SELECT USING ({SYSTEM} OR {VISIBLE_JSON})")
    op.execute("CREATE POLICY hv_insert ON outbox FOR INSERT WITH CHECK (true)")
    op.execute(f"CREATE POLICY hv_delete ON outbox FOR DELETE USING ({SYSTEM})")
    # The audit trail: every request appends; only auditors (and the system) read; nobody
    # updates or deletes (no policy, and no privilege for the application role either).
    op.execute("ALTER TABLE audit_records ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_records FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY hv_read ON audit_records FOR SELECT "
        f"USING ({SYSTEM} OR (SELECT hv_ctx_audit()))"
    )
    op.execute("CREATE POLICY hv_insert ON audit_records FOR INSERT WITH CHECK (true)")
    # Retention (`audit prune`, ADR 0010): the owner, in the system context, removes whole
    # verified segments; the application's role still has no DELETE privilege.
    op.execute(f"CREATE POLICY hv_prune ON audit_records FOR DELETE USING ({SYSTEM})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (*RULES, "outbox", "audit_records"):
        for policy in ("hv_read", "hv_insert", "hv_update", "hv_delete", "hv_prune"):
            op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for function in (*CONTEXT_FUNCTIONS, "hv_context()"):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.execute("DROP TABLE IF EXISTS hv_context_key")
