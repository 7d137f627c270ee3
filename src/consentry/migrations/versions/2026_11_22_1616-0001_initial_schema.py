"""initial schema: every aggregate of SPEC, and the scope catalogue

Revision ID: 0001
Revises:
Create Date: 2026-11-22 16:16:00.851886
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import consentry.storage.types

# OIDC Core §5.4 standard scopes, described for the person deciding on the consent screen.
SCOPE_CATALOGUE = [
    {"name": "openid", "description": "Sign you in with your Consentry account", "claims": ["sub"]},
    {
        "name": "profile",
        "description": "See your name, username, picture, language and time zone",
        "claims": [
            "name",
            "given_name",
            "family_name",
            "preferred_username",
            "picture",
            "locale",
            "zoneinfo",
            "updated_at",
        ],
    },
    {"name": "email", "description": "See your email address", "claims": ["email", "email_verified"]},
    {
        "name": "phone",
        "description": "See your phone number",
        "claims": ["phone_number", "phone_number_verified"],
    },
    {
        "name": "offline_access",
        "description": "Keep access while you are away (refresh tokens)",
        "claims": [],
    },
]

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_type", sa.String(length=48), nullable=False),
        sa.Column("occurred_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("scopes", consentry.storage.types.ScopeSet(), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_events_client_id_occurred_at"), ["client_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_events_event_type_occurred_at"), ["event_type", "occurred_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_events_occurred_at"), ["occurred_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_events_user_id_occurred_at"), ["user_id", "occurred_at"], unique=False
        )

    op.create_table(
        "pseudonym_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("key_ref", sa.String(length=128), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "active",
                "retiring",
                "retired",
                name="pseudonym_state",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retired_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_pseudonym_versions")),
    )
    op.create_table(
        "registration_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "processing",
                "completed",
                "failed",
                name="registration_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("in_dlq", sa.Boolean(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_requests")),
    )
    with op.batch_alter_table("registration_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registration_requests_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_registration_requests_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "scopes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("claims", consentry.storage.types.StringList(), nullable=False),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scopes")),
    )
    op.create_table(
        "signin_flows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("identifier", sa.String(length=320), nullable=False),
        sa.Column("identifier_type", sa.String(length=8), nullable=False),
        sa.Column("step", sa.String(length=24), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("code_expires_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("code_sent_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column(
            "oauth2_context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signin_flows")),
    )
    with op.batch_alter_table("signin_flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signin_flows_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_signin_flows_identifier"), ["identifier"], unique=False)

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("private_jwk", sa.Text(), nullable=False),
        sa.Column(
            "public_jwk",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("publish_until", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("phone_verified", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("given_name", sa.String(length=100), nullable=True),
        sa.Column("family_name", sa.String(length=100), nullable=True),
        sa.Column("preferred_username", sa.String(length=100), nullable=True),
        sa.Column("picture", sa.String(length=2048), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("zoneinfo", sa.String(length=64), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active", "deleted", name="user_status", native_enum=False, create_constraint=True, length=24
            ),
            nullable=False,
        ),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("purge_after", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("phone", name=op.f("uq_users_phone")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_purge_after"), ["purge_after"], unique=False)

    op.create_table(
        "oauth2_clients",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("client_uri", sa.String(length=2048), nullable=True),
        sa.Column("logo_uri", sa.String(length=2048), nullable=True),
        sa.Column("policy_uri", sa.String(length=2048), nullable=True),
        sa.Column("tos_uri", sa.String(length=2048), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("redirect_uris", consentry.storage.types.StringList(), nullable=False),
        sa.Column("grant_types", consentry.storage.types.StringList(), nullable=False),
        sa.Column("scopes", consentry.storage.types.ScopeSet(), nullable=False),
        sa.Column(
            "token_endpoint_auth_method",
            sa.Enum(
                "client_secret_basic",
                "client_secret_post",
                "none",
                name="token_endpoint_auth_method",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("secret_rotated_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "subject_type",
            sa.Enum(
                "public",
                "pairwise",
                name="subject_type",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("sector_identifier_uri", sa.String(length=2048), nullable=True),
        sa.Column("sector", sa.String(length=255), nullable=False),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column("consent_ttl_days", sa.Integer(), nullable=True),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("webhook_secret", sa.String(length=128), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_oauth2_clients_owner_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth2_clients")),
    )
    with op.batch_alter_table("oauth2_clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth2_clients_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "pseudonyms",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("sector", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pseudonyms_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["version"], ["pseudonym_versions.version"], name=op.f("fk_pseudonyms_version_pseudonym_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pseudonyms")),
        sa.UniqueConstraint(
            "sector", "version", "user_id", name=op.f("uq_pseudonyms_sector_version_user_id")
        ),
    )
    with op.batch_alter_table("pseudonyms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pseudonyms_sector_pseudonym"), ["sector", "pseudonym"], unique=True
        )
        batch_op.create_index(batch_op.f("ix_pseudonyms_user_id"), ["user_id"], unique=False)

    op.create_table(
        "user_credentials",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_credentials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_credentials")),
    )
    with op.batch_alter_table("user_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_credentials_user_id_created_at"), ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("auth_time", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "consents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scopes", consentry.storage.types.ScopeSet(), nullable=False),
        sa.Column("declined_scopes", consentry.storage.types.ScopeSet(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "revoked",
                "expired",
                name="consent_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("granted_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth2_clients.id"],
            name=op.f("fk_consents_client_id_oauth2_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_consents_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consents_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consents_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consents_user_id_client_id"), ["user_id", "client_id"], unique=False
        )
        batch_op.create_index(
            "uq_consents_active_user_client",
            ["user_id", "client_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=48), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "delivered",
                "dead",
                name="outbox_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth2_clients.id"],
            name=op.f("fk_webhook_outbox_client_id_oauth2_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
    )
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_outbox_client_id"), ["client_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_webhook_outbox_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "access_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("family_id", sa.Uuid(), nullable=True),
        sa.Column("consent_id", sa.Uuid(), nullable=True),
        sa.Column("scopes", consentry.storage.types.ScopeSet(), nullable=False),
        sa.Column("auth_time", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth2_clients.id"],
            name=op.f("fk_access_tokens_client_id_oauth2_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consents.id"],
            name=op.f("fk_access_tokens_consent_id_consents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_access_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_access_tokens")),
    )
    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_tokens_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_tokens_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_tokens_family_id"), ["family_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_access_tokens_user_id_client_id"), ["user_id", "client_id"], unique=False
        )

    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("consent_id", sa.Uuid(), nullable=True),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=False),
        sa.Column("scopes", consentry.storage.types.ScopeSet(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=8), nullable=True),
        sa.Column("nonce", sa.String(length=512), nullable=True),
        sa.Column("auth_time", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth2_clients.id"],
            name=op.f("fk_authorization_codes_client_id_oauth2_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consents.id"],
            name=op.f("fk_authorization_codes_consent_id_consents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_authorization_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_authorization_codes")),
    )
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_authorization_codes_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "consent_history",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("consent_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=16), nullable=False),
        sa.Column("scopes_before", consentry.storage.types.ScopeSet(), nullable=True),
        sa.Column("scopes_after", consentry.storage.types.ScopeSet(), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("occurred_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consents.id"],
            name=op.f("fk_consent_history_consent_id_consents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_history")),
    )
    with op.batch_alter_table("consent_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_history_consent_id"), ["consent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consent_history_user_id"), ["user_id"], unique=False)

    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("consent_id", sa.Uuid(), nullable=True),
        sa.Column("scopes", consentry.storage.types.ScopeSet(), nullable=False),
        sa.Column("auth_time", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", consentry.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth2_clients.id"],
            name=op.f("fk_refresh_tokens_client_id_oauth2_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consents.id"],
            name=op.f("fk_refresh_tokens_consent_id_consents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_refresh_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_refresh_tokens")),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refresh_tokens_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refresh_tokens_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_refresh_tokens_family_id"), ["family_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_refresh_tokens_user_id_client_id"), ["user_id", "client_id"], unique=False
        )

    now = datetime.now(UTC)
    scopes = sa.table(
        "scopes",
        sa.column("name", sa.String),
        sa.column("description", sa.String),
        sa.column("claims", consentry.storage.types.StringList()),
        sa.column("created_at", consentry.storage.types.UTCDateTime()),
    )
    op.bulk_insert(scopes, [{**row, "created_at": now} for row in SCOPE_CATALOGUE])


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_user_id_client_id"))
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_family_id"))
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_expires_at"))
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_client_id"))

    op.drop_table("refresh_tokens")
    with op.batch_alter_table("consent_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_history_user_id"))
        batch_op.drop_index(batch_op.f("ix_consent_history_consent_id"))

    op.drop_table("consent_history")
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authorization_codes_expires_at"))

    op.drop_table("authorization_codes")
    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_tokens_user_id_client_id"))
        batch_op.drop_index(batch_op.f("ix_access_tokens_family_id"))
        batch_op.drop_index(batch_op.f("ix_access_tokens_expires_at"))
        batch_op.drop_index(batch_op.f("ix_access_tokens_client_id"))

    op.drop_table("access_tokens")
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_client_id"))

    op.drop_table("webhook_outbox")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_consents_active_user_client",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(batch_op.f("ix_consents_user_id_client_id"))
        batch_op.drop_index(batch_op.f("ix_consents_expires_at"))
        batch_op.drop_index(batch_op.f("ix_consents_client_id"))

    op.drop_table("consents")
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_user_sessions_expires_at"))

    op.drop_table("user_sessions")
    with op.batch_alter_table("user_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_credentials_user_id_created_at"))

    op.drop_table("user_credentials")
    with op.batch_alter_table("pseudonyms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pseudonyms_user_id"))
        batch_op.drop_index(batch_op.f("ix_pseudonyms_sector_pseudonym"))

    op.drop_table("pseudonyms")
    with op.batch_alter_table("oauth2_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth2_clients_owner_id"))

    op.drop_table("oauth2_clients")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_purge_after"))

    op.drop_table("users")
    op.drop_table("signing_keys")
    with op.batch_alter_table("signin_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signin_flows_identifier"))
        batch_op.drop_index(batch_op.f("ix_signin_flows_expires_at"))

    op.drop_table("signin_flows")
    op.drop_table("scopes")
    with op.batch_alter_table("registration_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registration_requests_status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_registration_requests_created_at"))

    op.drop_table("registration_requests")
    op.drop_table("pseudonym_versions")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_user_id_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_event_type_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_client_id_occurred_at"))

    op.drop_table("audit_events")
