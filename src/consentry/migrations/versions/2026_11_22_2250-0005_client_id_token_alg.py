"""clients: id_token_signed_response_alg (OIDC Dynamic Client Registration §2)

Discovery lists RS256 and ES256 for ID tokens; a client now chooses which it receives. Existing clients keep
RS256, the OIDC Core default.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oauth2_clients") as batch:
        batch.add_column(
            sa.Column("id_token_signed_response_alg", sa.String(8), nullable=False, server_default="RS256")
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth2_clients") as batch:
        batch.drop_column("id_token_signed_response_alg")
