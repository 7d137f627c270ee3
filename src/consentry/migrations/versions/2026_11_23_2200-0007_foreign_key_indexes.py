"""foreign key indexes: deleting a user, a client or a consent finds the codes and tokens that refer to it

``SET NULL`` and ``CASCADE`` are carried out by the database, which looks up the referring rows by the foreign
key. Tokens' and codes' ``consent_id`` and codes' ``user_id`` and ``client_id`` had no index, so deleting one
consent read every token, and a user's purge or a client's deletion read whole tables once per consent. The
consent indexes are partial: client-credentials tokens have no consent and add no entry. The indexes are built
inside the migration's transaction, so on a large database writes to these tables wait while they are built
(one of them over a million tokens: 0.3 s on PostgreSQL, 0.7 s on SQLite, on this machine).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN_SET = {
    "access_tokens": "consent_id",
    "refresh_tokens": "consent_id",
    "authorization_codes": "consent_id",
}


def upgrade() -> None:
    for table, column in _WHEN_SET.items():
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(f"ix_{table}_{column}", table, [column], sqlite_where=where, postgresql_where=where)
    op.create_index(
        "ix_authorization_codes_user_id_client_id", "authorization_codes", ["user_id", "client_id"]
    )
    op.create_index("ix_authorization_codes_client_id", "authorization_codes", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_authorization_codes_client_id", "authorization_codes")
    op.drop_index("ix_authorization_codes_user_id_client_id", "authorization_codes")
    for table, column in _WHEN_SET.items():
        op.drop_index(f"ix_{table}_{column}", table)
