"""registration queue fillfactor: room in each page for a request's updates on PostgreSQL

Each queued request is updated twice: claimed (``claimed_at``, ``claimed_by``: in no index, so with room in
the page PostgreSQL writes a heap-only tuple and no index entries) and marked done (a new version beside the
old). Published pages were full, so both updates moved the row and added entries to its three indexes
(docs/performance.md has the measurements). SQLite has no such knob.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 03:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE registration_requests SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE registration_requests RESET (fillfactor)")
