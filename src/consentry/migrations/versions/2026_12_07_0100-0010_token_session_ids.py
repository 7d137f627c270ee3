"""codes, access and refresh tokens: session_id (sid), indexed where set (SPEC §9)

Every code and token a person's sign-in earned records that sign-in session, so that ending the session ends
what was issued in it (but a grant with offline_access), and ID tokens carry ``sid``. Tokens from before have
none: no session ends them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("authorization_codes", "access_tokens", "refresh_tokens")
_WHERE = sa.text("session_id IS NOT NULL")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("session_id", sa.Uuid(), nullable=True))
        op.create_index(
            f"ix_{table}_session_id", table, ["session_id"], sqlite_where=_WHERE, postgresql_where=_WHERE
        )


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_session_id", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("session_id")
