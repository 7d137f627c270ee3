"""pseudonym_sectors: each sector pinned to a pseudonym version (SPEC §6)

A rotation no longer changes any ``sub`` a client knows: a sector keeps its version until it is migrated, and
during a migration window its previous version is honoured too. Sectors that already have pseudonyms are
pinned to the version active now, the one they have been given so far.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import consentry.storage.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pseudonym_sectors",
        sa.Column("sector", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("migrating_until", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"],
            ["pseudonym_versions.version"],
            name=op.f("fk_pseudonym_sectors_version_pseudonym_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["previous_version"],
            ["pseudonym_versions.version"],
            name=op.f("fk_pseudonym_sectors_previous_version_pseudonym_versions"),
        ),
        sa.PrimaryKeyConstraint("sector", name=op.f("pk_pseudonym_sectors")),
    )
    op.execute(
        "INSERT INTO pseudonym_sectors (sector, version, updated_at) "
        "SELECT DISTINCT p.sector, v.version, COALESCE(v.activated_at, v.created_at) FROM pseudonyms p "
        "JOIN pseudonym_versions v ON v.state = 'active'"
    )


def downgrade() -> None:
    op.drop_table("pseudonym_sectors")
