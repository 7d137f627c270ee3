"""encrypted webhook secrets: room for the sealed (Fernet) form

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:55:25.073999
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oauth2_clients", schema=None) as batch_op:
        batch_op.alter_column(
            "webhook_secret",
            existing_type=sa.VARCHAR(length=128),
            type_=sa.String(length=256),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth2_clients", schema=None) as batch_op:
        batch_op.alter_column(
            "webhook_secret",
            existing_type=sa.String(length=256),
            type_=sa.VARCHAR(length=128),
            existing_nullable=True,
        )
