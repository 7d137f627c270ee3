"""signing keys published before they sign (SPEC §11): activates_at

A rotation publishes the new keys at once and has every node switch to them at one moment, after relying
parties' cached JWKS have expired; NULL means the key signed from its creation (every key before this).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import consentry.storage.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(
            sa.Column("activates_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    # A key that had not yet started signing goes, and the key it was to replace signs on.
    op.execute(
        sa.text(
            "DELETE FROM signing_keys WHERE activates_at IS NOT NULL AND activates_at > CURRENT_TIMESTAMP"
        )
    )
    op.execute(
        sa.text(
            "UPDATE signing_keys SET retired_at = NULL, publish_until = NULL WHERE retired_at > CURRENT_TIMESTAMP"
        )
    )
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_column("activates_at")
