"""clients: token_endpoint_auth_method_fixed (SPEC §2)

A client registered with a token_endpoint_auth_method must authenticate with that one; a client created
without one (the CLI's default) may use client_secret_basic or client_secret_post. Existing clients keep
what they could do: both.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oauth2_clients") as batch:
        batch.add_column(
            sa.Column(
                "token_endpoint_auth_method_fixed", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth2_clients") as batch:
        batch.drop_column("token_endpoint_auth_method_fixed")
