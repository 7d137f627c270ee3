"""clients: post_logout_redirect_uris, backchannel_logout_uri, backchannel_logout_session_required (SPEC §9)

OpenID Connect RP-Initiated Logout 1.0 and Back-Channel Logout 1.0 registration metadata. Existing clients
have none: no redirect after logout, no logout token.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consentry.storage.types import StringList

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oauth2_clients") as batch:
        batch.add_column(sa.Column("post_logout_redirect_uris", StringList(), nullable=True))
        batch.add_column(sa.Column("backchannel_logout_uri", sa.String(2048), nullable=True))
        batch.add_column(
            sa.Column(
                "backchannel_logout_session_required", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth2_clients") as batch:
        batch.drop_column("backchannel_logout_session_required")
        batch.drop_column("backchannel_logout_uri")
        batch.drop_column("post_logout_redirect_uris")
