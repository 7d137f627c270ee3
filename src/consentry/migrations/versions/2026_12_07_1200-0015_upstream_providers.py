"""upstream identity providers (SPEC §10): providers, linked accounts, trips to a provider and back

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import consentry.storage.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, consentry.storage.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "upstream_providers",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "oidc", "oauth2", name="upstream_kind", native_enum=False, create_constraint=True, length=24
            ),
            nullable=False,
        ),
        sa.Column("issuer", sa.String(2048), nullable=True),
        sa.Column("authorize_url", sa.String(2048), nullable=False),
        sa.Column("token_url", sa.String(2048), nullable=False),
        sa.Column("userinfo_url", sa.String(2048), nullable=True),
        sa.Column("emails_url", sa.String(2048), nullable=True),
        sa.Column("jwks_uri", sa.String(2048), nullable=True),
        sa.Column("signing_algs", consentry.storage.types.StringList(), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("client_secret", sa.String(1024), nullable=False),
        sa.Column("scope", sa.String(1024), nullable=False),
        sa.Column("uid_field", sa.String(64), nullable=False),
        sa.Column("email_field", sa.String(64), nullable=False),
        sa.Column("trust_email", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("icon", sa.String(2048), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_upstream_providers")),
    )
    op.create_table(
        "linked_accounts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("provider_uid", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column(
            "profile",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        _time("token_expires_at", nullable=True),
        _time("linked_at"),
        _time("last_used_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_linked_accounts_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["provider"],
            ["upstream_providers.name"],
            name=op.f("fk_linked_accounts_provider_upstream_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linked_accounts")),
        sa.UniqueConstraint(
            "provider", "provider_uid", name=op.f("uq_linked_accounts_provider_provider_uid")
        ),
        sa.UniqueConstraint("user_id", "provider", name=op.f("uq_linked_accounts_user_id_provider")),
    )
    op.create_index(op.f("ix_linked_accounts_user_id"), "linked_accounts", ["user_id"])
    op.create_index(
        op.f("ix_linked_accounts_provider_linked_at"), "linked_accounts", ["provider", "linked_at"]
    )
    op.create_table(
        "upstream_authorizations",
        sa.Column("state_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("browser_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(512), nullable=False),
        sa.Column(
            "oauth2_context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("link_user_id", sa.Uuid(), nullable=True),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("ticket_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        _time("created_at"),
        _time("expires_at"),
        sa.ForeignKeyConstraint(
            ["provider"],
            ["upstream_providers.name"],
            name=op.f("fk_upstream_authorizations_provider_upstream_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["link_user_id"],
            ["users.id"],
            name=op.f("fk_upstream_authorizations_link_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_upstream_authorizations")),
        sa.UniqueConstraint("ticket_hash", name=op.f("uq_upstream_authorizations_ticket_hash")),
    )
    op.create_index(op.f("ix_upstream_authorizations_expires_at"), "upstream_authorizations", ["expires_at"])
    op.create_index(op.f("ix_upstream_authorizations_provider"), "upstream_authorizations", ["provider"])
    op.create_index(
        op.f("ix_upstream_authorizations_link_user_id"), "upstream_authorizations", ["link_user_id"]
    )


def downgrade() -> None:
    op.drop_table("upstream_authorizations")
    op.drop_table("linked_accounts")
    op.drop_table("upstream_providers")
