"""clients that register themselves (SPEC §8): registered_by, registration token, software, document expiry;
initial access tokens; client ids as long as a URL on PostgreSQL

RFC 7591 clients keep the hash of their registration access token (RFC 7592) and the software they name; a
client ID metadata document's client is stored under its URL, with the time its copy goes stale. PostgreSQL
enforces VARCHAR lengths, so every column that holds a client id grows to 2048 there (no rewrite: a longer
VARCHAR is the same type); SQLite does not, and rebuilding its tables would cascade the clients' deletion.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import consentry.storage.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLIENT_ID_COLUMNS = (
    ("oauth2_clients", "id", False),
    ("resources", "client_id", False),
    ("authorization_codes", "client_id", False),
    ("access_tokens", "client_id", False),
    ("refresh_tokens", "client_id", False),
    ("consents", "client_id", False),
    ("consent_history", "client_id", True),
    ("audit_events", "client_id", True),
    ("webhook_outbox", "client_id", False),
)


def _client_ids(length: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, nullable in CLIENT_ID_COLUMNS:
        op.alter_column(table, column, type_=sa.String(length), existing_nullable=nullable)


def upgrade() -> None:
    _client_ids(2048)
    with op.batch_alter_table("oauth2_clients") as batch:
        batch.add_column(sa.Column("registered_by", sa.String(24), nullable=False, server_default="operator"))
        batch.add_column(sa.Column("registration_token_hash", sa.LargeBinary(32), nullable=True))
        batch.add_column(sa.Column("software_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("software_version", sa.String(255), nullable=True))
        batch.add_column(
            sa.Column(
                "document_expires_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.create_table(
        "initial_access_tokens",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("uses_left", sa.Integer(), nullable=True),
        sa.Column("expires_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initial_access_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_initial_access_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("initial_access_tokens")
    with op.batch_alter_table("oauth2_clients") as batch:
        batch.drop_column("document_expires_at")
        batch.drop_column("software_version")
        batch.drop_column("software_id")
        batch.drop_column("registration_token_hash")
        batch.drop_column("registered_by")
    op.execute(sa.text("DELETE FROM oauth2_clients WHERE length(id) > 64"))  # would not fit any more
    _client_ids(64)
