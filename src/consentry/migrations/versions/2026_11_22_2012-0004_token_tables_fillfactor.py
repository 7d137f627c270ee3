"""token tables fillfactor: room in each page for revoked_at updates to stay HOT on PostgreSQL

Revoking a consent updates ``revoked_at`` on every token the person holds for the client (10,000 in the
benchmark). ``revoked_at`` is in no index, so with free space in the page PostgreSQL updates the row in place
(a heap-only tuple) instead of adding an entry to each of the table's five indexes. SQLite has no such knob.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 20:12:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("access_tokens", "refresh_tokens")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 85)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
