"""resources; scopes.resource_id and restricted; codes and tokens: resources, audience, jti (SPEC §7)

The operator's APIs (RFC 8707 resources) and the custom scopes that belong to them. Codes and refresh tokens
record the resources a grant was asked for; access tokens their audience and, when they have one, the JWT ID
the revocation feed names them by (the feed reads them by revocation time). Existing rows have none: they are
tokens for userinfo, as before.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import consentry.storage.types
from consentry.storage.types import StringList

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FEED = sa.text("jti IS NOT NULL AND revoked_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("identifier", sa.String(2048), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column(
            "token_format",
            sa.Enum(
                "opaque", "jwt", name="token_format", native_enum=False, create_constraint=True, length=24
            ),
            nullable=False,
        ),
        sa.Column("access_token_ttl", sa.Integer(), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("pushed_until", sa.String(200), nullable=True),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth2_clients.id"],
            name=op.f("fk_resources_client_id_oauth2_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resources")),
        sa.UniqueConstraint("identifier", name=op.f("uq_resources_identifier")),
        sa.UniqueConstraint("client_id", name=op.f("uq_resources_client_id")),
    )
    with op.batch_alter_table("scopes") as batch:
        batch.add_column(sa.Column("resource_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("restricted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_foreign_key(
            batch.f("fk_scopes_resource_id_resources"),
            "resources",
            ["resource_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(batch.f("ix_scopes_resource_id"), ["resource_id"], unique=False)
    with op.batch_alter_table("authorization_codes") as batch:
        batch.add_column(sa.Column("resources", StringList(), nullable=True))
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("resources", StringList(), nullable=True))
    with op.batch_alter_table("access_tokens") as batch:
        batch.add_column(sa.Column("audience", StringList(), nullable=True))
        batch.add_column(sa.Column("jti", sa.String(43), nullable=True))
    op.create_index(
        "ix_access_tokens_revocation_feed",
        "access_tokens",
        ["revoked_at"],
        sqlite_where=_FEED,
        postgresql_where=_FEED,
    )


def downgrade() -> None:
    op.drop_index("ix_access_tokens_revocation_feed", "access_tokens")
    with op.batch_alter_table("access_tokens") as batch:
        batch.drop_column("jti")
        batch.drop_column("audience")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("resources")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("resources")
    with op.batch_alter_table("scopes") as batch:
        batch.drop_index(batch.f("ix_scopes_resource_id"))
        batch.drop_constraint(batch.f("fk_scopes_resource_id_resources"), type_="foreignkey")
        batch.drop_column("restricted")
        batch.drop_column("resource_id")
    op.drop_table("resources")
