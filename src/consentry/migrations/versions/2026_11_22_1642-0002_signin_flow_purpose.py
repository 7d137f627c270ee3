"""signin flow purpose: signing in, signing up, or resetting a password

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:42:37.428464
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signin_flows", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=16), nullable=False, server_default="signin")
        )


def downgrade() -> None:
    with op.batch_alter_table("signin_flows", schema=None) as batch_op:
        batch_op.drop_column("purpose")
