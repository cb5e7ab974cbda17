"""The map's street level read by an index alone (issue 15, ADR 0020): the spatial index on
entries carries the columns a map point shows and the policy reads (PostgreSQL).

The per-entry path (``geo.mapdata``: street level, filters the map cells cannot answer) selects
the entries whose box meets the view, the policy filter on their label, and a point's columns.
With the box alone in the index, every candidate in view cost a heap page (1M entries: 937
pages for a street at Nation, one per entry), read again for each view. ``ix_entries_map`` is
the same GiST key and predicate as ``ix_entries_box`` (migration 0005) with those columns
INCLUDEd (and the status, the map's other enumerated filter), so the query is an index-only
scan (on pages all-visible, which vacuum keeps so).

Expand-only: the new index is built first, then the old one dropped; both serve the same
expression, so version N's queries use the new one. PostgreSQL only (SQLite has no GiST: its
b-tree ``ix_entries_bbox`` stays as it is).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BOX = "box(point(min_lon, min_lat), point(max_lon, max_lat))"
# mapdata.POINT_COLUMNS, the status (the map's other enumerated filter), then the label
# columns the policy reads (policy.rules.VISIBILITY).
INCLUDED = (
    "id, min_lon, min_lat, max_lon, max_lat, title, category, severity, status, label_level, "
    "need_to_know, audience, organisation_id"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"CREATE INDEX ix_entries_map ON entries USING gist ({BOX}) INCLUDE ({INCLUDED}) "
        "WHERE min_lon IS NOT NULL"
    )
    op.execute("DROP INDEX ix_entries_box")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"CREATE INDEX ix_entries_box ON entries USING gist ({BOX}) WHERE min_lon IS NOT NULL"
    )
    op.execute("DROP INDEX ix_entries_map")
