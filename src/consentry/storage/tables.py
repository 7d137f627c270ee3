"""The whole data model as typed SQLAlchemy 2 tables.

Secrets never appear in clear: tokens, codes and sessions are keyed by the SHA-256 of their value
(fosite's habit: storage keyed by the token's hash), client secrets by a keyed hash, passwords by argon2id.
Every table that expires has an index on its expiry column so cleanup deletes in bounded batches.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from consentry.domain.accounts import UserStatus
from consentry.domain.clients import ClientRegistration, SubjectType, TokenEndpointAuthMethod
from consentry.domain.consent import ConsentStatus
from consentry.domain.pairwise import PseudonymVersionState
from consentry.domain.registration import RegistrationStatus
from consentry.domain.resources import TokenFormat
from consentry.domain.scopes import Scopes
from consentry.domain.upstreams import UpstreamKind
from consentry.domain.webhooks import OutboxStatus
from consentry.ids import new_clustered_id
from consentry.storage.types import PortableJSON, ScopeSet, StringList, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY, so big ids are INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# A client id: at most 64 characters but for a client ID metadata document's, a URL (SPEC §8). PostgreSQL
# enforces the length (migration 0014 widened every column that holds one); SQLite does not, and rebuilding
# its tables to change the declared length would cascade into every token through the clients' table.
ClientId = String(64).with_variant(String(2048), "postgresql")
# A SHA-256, or an opaque token's key: its 6-byte locator, then the SHA-256 (crypto/hashing.token_hash).
# Neither database enforces the length: 38-byte keys sit beside those of tokens from before locators.
Hash = LargeBinary(32)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), Scopes: ScopeSet(), dict[str, Any]: PortableJSON}


def _enum(cls: type[enum.Enum], name: str, *, checked: bool = True) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=checked,
        length=24,
        values_callable=lambda members: [m.value for m in members],
    )


def _index_when_set(column: str, *more: str) -> Index:
    """An index of a nullable column (and ``more`` after it) over the rows that have one. Every lookup through
    it compares the column to a value, which a NULL never equals, so rows without one need no entry; each
    entry left out is a B-tree insert fewer per row written. Client-credentials tokens have no consent, person
    or family, and their audit events no person: those are most of the rows of a busy token endpoint.

    A nullable foreign key's index is one of these: deleting the row it refers to finds its rows through it
    (the database's own ``SET NULL`` or ``CASCADE``); unindexed, deleting one consent read every token, and a
    user's purge or a client's deletion one whole table per consent."""
    where = text(f"{column} IS NOT NULL")
    return Index(None, column, *more, sqlite_where=where, postgresql_where=where)


# --- accounts ---------------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_clustered_id)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)  # E.164
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str | None] = mapped_column(String(200))
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    preferred_username: Mapped[str | None] = mapped_column(String(100))
    picture: Mapped[str | None] = mapped_column(String(2048))
    locale: Mapped[str | None] = mapped_column(String(35))
    zoneinfo: Mapped[str | None] = mapped_column(String(64))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[UserStatus] = mapped_column(_enum(UserStatus, "user_status"), default=UserStatus.ACTIVE)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]
    purge_after: Mapped[datetime | None] = mapped_column(index=True)  # end of the soft-delete grace period


class UserCredential(Base):
    """Password hashes; the current one has ``superseded_at`` NULL, older ones are the reuse history."""

    __tablename__ = "user_credentials"
    __table_args__ = (Index(None, "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    superseded_at: Mapped[datetime | None]


class UserSession(Base):
    """A signed-in browser or API session, found by the hash of its token (cookie or Bearer)."""

    __tablename__ = "user_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[bytes] = mapped_column(Hash, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[datetime]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))


class SigninFlow(Base):
    """One identifier-first sign-in or registration flow, with its one-time code (stored hashed)."""

    __tablename__ = "signin_flows"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    identifier: Mapped[str] = mapped_column(String(320), index=True)
    identifier_type: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(
        String(16), default="signin", server_default="signin"
    )  # signin, signup, reset
    step: Mapped[str] = mapped_column(String(24))
    code_hash: Mapped[bytes | None] = mapped_column(Hash)
    code_expires_at: Mapped[datetime | None]
    code_sent_at: Mapped[datetime | None]
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    oauth2_context: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    completed_at: Mapped[datetime | None]


# --- upstream identity providers (SPEC §10) ----------------------------------------------------------


class UpstreamProvider(Base):
    """An identity provider people may sign in with: OpenID Connect (endpoints from its discovery document,
    ID tokens checked against its JWKS) or plain OAuth 2.0 (a userinfo URL and the fields that name the
    person)."""

    __tablename__ = "upstream_providers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[UpstreamKind] = mapped_column(_enum(UpstreamKind, "upstream_kind"))
    issuer: Mapped[str | None] = mapped_column(String(2048))
    authorize_url: Mapped[str] = mapped_column(String(2048))
    token_url: Mapped[str] = mapped_column(String(2048))
    userinfo_url: Mapped[str | None] = mapped_column(String(2048))
    emails_url: Mapped[str | None] = mapped_column(String(2048))  # GitHub-style list of verified addresses
    jwks_uri: Mapped[str | None] = mapped_column(String(2048))
    signing_algs: Mapped[list[str] | None] = mapped_column(StringList())
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret: Mapped[str] = mapped_column(String(1024))  # encrypted (SecretBox): sent to the provider
    scope: Mapped[str] = mapped_column(String(1024))
    uid_field: Mapped[str] = mapped_column(String(64))
    email_field: Mapped[str] = mapped_column(String(64))
    trust_email: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    icon: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LinkedAccount(Base):
    """A person's account at an upstream provider: one ``(provider, provider_uid)`` belongs to one person, and
    a person has at most one account per provider. The provider's tokens are kept encrypted."""

    __tablename__ = "linked_accounts"
    __table_args__ = (
        UniqueConstraint("provider", "provider_uid"),
        UniqueConstraint("user_id", "provider"),
        Index(None, "provider", "linked_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(ForeignKey("upstream_providers.name", ondelete="CASCADE"))
    provider_uid: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    profile: Mapped[dict[str, Any] | None]
    access_token: Mapped[str | None] = mapped_column(Text)  # encrypted (SecretBox)
    refresh_token: Mapped[str | None] = mapped_column(Text)  # encrypted (SecretBox)
    token_expires_at: Mapped[datetime | None]
    linked_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class UpstreamAuthorization(Base):
    """One trip to an upstream provider and back: the state (single use, by its hash), nonce and PKCE
    verifier, the browser it was started in, the ``oauth2_context`` it carries and, when linking, the person
    who asked. Once the provider has answered for someone new, the answer (encrypted) waits here for them to
    accept the terms."""

    __tablename__ = "upstream_authorizations"

    state_hash: Mapped[bytes] = mapped_column(Hash, primary_key=True)
    provider: Mapped[str] = mapped_column(
        ForeignKey("upstream_providers.name", ondelete="CASCADE"), index=True
    )
    browser_hash: Mapped[bytes] = mapped_column(Hash)
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(512))  # encrypted (SecretBox)
    oauth2_context: Mapped[dict[str, Any] | None]
    link_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[str] = mapped_column(String(16))  # sent, answered, awaiting_terms, done
    ticket_hash: Mapped[bytes | None] = mapped_column(Hash, unique=True)
    answer: Mapped[str | None] = mapped_column(Text)  # encrypted (SecretBox)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


# --- clients and scopes ------------------------------------------------------------------------


class Client(Base):
    __tablename__ = "oauth2_clients"

    id: Mapped[str] = mapped_column(ClientId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    client_uri: Mapped[str | None] = mapped_column(String(2048))
    logo_uri: Mapped[str | None] = mapped_column(String(2048))
    policy_uri: Mapped[str | None] = mapped_column(String(2048))
    tos_uri: Mapped[str | None] = mapped_column(String(2048))
    policy_version: Mapped[str | None] = mapped_column(String(64))
    redirect_uris: Mapped[list[str]] = mapped_column(StringList())
    grant_types: Mapped[list[str]] = mapped_column(StringList())
    scopes: Mapped[Scopes]
    token_endpoint_auth_method: Mapped[TokenEndpointAuthMethod] = mapped_column(
        _enum(TokenEndpointAuthMethod, "token_endpoint_auth_method")
    )
    # False for a client created without a method (the CLI's default): it may use Basic or the form.
    token_endpoint_auth_method_fixed: Mapped[bool] = mapped_column(Boolean, server_default=false())
    secret_hash: Mapped[bytes | None] = mapped_column(Hash)  # NULL for public clients
    secret_rotated_at: Mapped[datetime | None]
    subject_type: Mapped[SubjectType] = mapped_column(_enum(SubjectType, "subject_type"))
    sector_identifier_uri: Mapped[str | None] = mapped_column(String(2048))
    sector: Mapped[str] = mapped_column(String(255))  # host the pairwise pseudonyms are derived for
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_ttl_days: Mapped[int | None] = mapped_column(Integer)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(8), server_default="RS256")
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    # OpenID Connect RP-Initiated and Back-Channel Logout 1.0 (SPEC §9); NULL: none registered.
    post_logout_redirect_uris: Mapped[list[str] | None] = mapped_column(StringList())
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2048))
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, server_default=false())
    webhook_secret: Mapped[str | None] = mapped_column(
        String(256)
    )  # encrypted (SecretBox): HMAC needs it back
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # SPEC §8: how the client came to be; a self-registered one's RFC 7592 registration access token (keyed
    # hash) and the software it names; a metadata document's client, when its stored copy goes stale.
    registered_by: Mapped[ClientRegistration] = mapped_column(
        _enum(ClientRegistration, "client_registration", checked=False), server_default="operator"
    )
    registration_token_hash: Mapped[bytes | None] = mapped_column(Hash)
    software_id: Mapped[str | None] = mapped_column(String(255))
    software_version: Mapped[str | None] = mapped_column(String(255))
    document_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class InitialAccessToken(Base):
    """RFC 7591 §3: what the operator hands a developer so that their software may register itself
    (`consentry dcr token create`), kept only as its keyed hash."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(Hash, unique=True)
    uses_left: Mapped[int | None] = mapped_column(Integer)  # NULL: as many as it is used before it expires
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Resource(Base):
    """An API the operator protects (SPEC §7, RFC 8707): tokens for it name it as their audience. It
    introspects, reads its revocation feed and signs its webhooks with the credentials of its own client row
    (no redirect URI, no grant type)."""

    __tablename__ = "resources"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(2048), unique=True)  # an absolute URI (RFC 8707 §2)
    name: Mapped[str] = mapped_column(String(200))
    token_format: Mapped[TokenFormat] = mapped_column(_enum(TokenFormat, "token_format"))
    access_token_ttl: Mapped[int | None] = mapped_column(Integer)  # seconds; NULL: the deployment's
    client_id: Mapped[str] = mapped_column(
        ClientId, ForeignKey("oauth2_clients.id", ondelete="CASCADE"), unique=True
    )
    pushed_until: Mapped[str | None] = mapped_column(String(200))  # the revocation feed's cursor for pushes
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Scope(Base):
    """The scope catalogue: what each scope means to a person, and which claims it releases. A custom
    scope may belong to one resource (SPEC §7); a restricted one goes only to trusted clients and admins."""

    __tablename__ = "scopes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(500))
    claims: Mapped[list[str]] = mapped_column(StringList())
    resource_id: Mapped[str | None] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    restricted: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime]


# --- grants and tokens (keyed by hash) ---------------------------------------------------------


class AuthorizationCode(Base):
    """A one-time code; kept after use (``used_at``) so a replay can be detected and punished."""

    __tablename__ = "authorization_codes"
    __table_args__ = (  # the foreign keys' indexes: deleting a user, a client or a consent finds its codes
        Index(None, "user_id", "client_id"),
        Index(None, "client_id"),
        _index_when_set("consent_id"),
        _index_when_set("session_id"),
    )

    code_hash: Mapped[bytes] = mapped_column(Hash, primary_key=True)
    client_id: Mapped[str] = mapped_column(ClientId, ForeignKey("oauth2_clients.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    consent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consents.id", ondelete="SET NULL"))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    scopes: Mapped[Scopes]
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    nonce: Mapped[str | None] = mapped_column(String(512))
    auth_time: Mapped[datetime]
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # shared by every token this code yields
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the sign-in session it was issued in (sid)
    resources: Mapped[list[str] | None] = mapped_column(StringList())  # RFC 8707 resources requested
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class AccessToken(Base):
    __tablename__ = "access_tokens"
    __table_args__ = (
        _index_when_set("user_id", "client_id"),
        _index_when_set("consent_id"),
        _index_when_set("family_id"),
        _index_when_set("session_id"),
        # The revocation feed reads the revoked tokens that have a jti, by time of revocation.
        Index(
            "ix_access_tokens_revocation_feed",
            "revoked_at",
            sqlite_where=text("jti IS NOT NULL AND revoked_at IS NOT NULL"),
            postgresql_where=text("jti IS NOT NULL AND revoked_at IS NOT NULL"),
        ),
    )

    token_hash: Mapped[bytes] = mapped_column(Hash, primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ClientId, ForeignKey("oauth2_clients.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    family_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    consent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consents.id", ondelete="SET NULL"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # sid; none for a client's own tokens
    scopes: Mapped[Scopes]
    # RFC 8707/9068: the resources the token is for (NULL: userinfo), and the JWT ID that the revocation
    # feed names it by; a token for no resource has neither.
    audience: Mapped[list[str] | None] = mapped_column(StringList())
    jti: Mapped[str | None] = mapped_column(String(43))
    auth_time: Mapped[datetime | None]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]


class RefreshToken(Base):
    """Refresh tokens rotate on every use; all of one grant share ``family_id`` so reuse revokes them all."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index(None, "user_id", "client_id"),
        _index_when_set("consent_id"),
        _index_when_set("session_id"),
    )

    token_hash: Mapped[bytes] = mapped_column(Hash, primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ClientId, ForeignKey("oauth2_clients.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    consent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consents.id", ondelete="SET NULL"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # sid, kept through every rotation
    scopes: Mapped[Scopes]
    resources: Mapped[list[str] | None] = mapped_column(StringList())  # the grant's; a refresh may narrow
    auth_time: Mapped[datetime | None]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    rotated_at: Mapped[datetime | None]  # set when exchanged for its successor; a later use is reuse
    revoked_at: Mapped[datetime | None]


# --- consent ------------------------------------------------------------------------------------


class Consent(Base):
    """What a person let one client see, until when; at most one active record per (user, client)."""

    __tablename__ = "consents"
    __table_args__ = (
        Index(None, "user_id", "client_id"),
        Index(
            "uq_consents_active_user_client",
            "user_id",
            "client_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(
        ClientId, ForeignKey("oauth2_clients.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[Scopes]
    declined_scopes: Mapped[Scopes]
    policy_version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[ConsentStatus] = mapped_column(_enum(ConsentStatus, "consent_status"))
    granted_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]


class ConsentHistory(Base):
    """Every change to a consent: who, when, from where, scopes before and after."""

    __tablename__ = "consent_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    consent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("consents.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    client_id: Mapped[str | None] = mapped_column(ClientId)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(16))  # user, admin, system
    scopes_before: Mapped[Scopes | None]
    scopes_after: Mapped[Scopes | None]
    policy_version: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    occurred_at: Mapped[datetime]


# --- pseudonyms (OIDC Core §8.1) ---------------------------------------------------------------


class PseudonymVersion(Base):
    __tablename__ = "pseudonym_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    algorithm: Mapped[str] = mapped_column(String(32))
    key_ref: Mapped[str] = mapped_column(
        String(128)
    )  # key material is derived from the server secret and this
    state: Mapped[PseudonymVersionState] = mapped_column(_enum(PseudonymVersionState, "pseudonym_state"))
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    retired_at: Mapped[datetime | None]


class Pseudonym(Base):
    __tablename__ = "pseudonyms"
    __table_args__ = (
        UniqueConstraint("sector", "version", "user_id"),
        Index(None, "sector", "pseudonym", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sector: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(ForeignKey("pseudonym_versions.version"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    pseudonym: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class PseudonymSector(Base):
    """The pseudonym version a sector's clients see (SPEC §6): pinned at the sector's first pseudonym, moved
    only by ``consentry pseudonyms migrate``, the previous one still honoured until ``migrating_until``."""

    __tablename__ = "pseudonym_sectors"

    sector: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(ForeignKey("pseudonym_versions.version"))
    previous_version: Mapped[int | None] = mapped_column(ForeignKey("pseudonym_versions.version"))
    migrating_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]


# --- keys, audit, outbox, pipeline -------------------------------------------------------------


class SigningKey(Base):
    """JOSE signing keys; retired keys stay published until every token they signed has expired. A new key is
    published from its creation but signs from ``activates_at`` (NULL: at once), when the key it replaces
    retires: relying parties that cache the JWKS have it before any token needs it."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_jwk: Mapped[str] = mapped_column(Text)  # encrypted with a key derived from the server secret
    public_jwk: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
    publish_until: Mapped[datetime | None]
    activates_at: Mapped[datetime | None]


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "event_type", "occurred_at"),
        _index_when_set("user_id", "occurred_at"),
        Index(None, "client_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(48))
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(16), default="user")
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # no FK: the trail outlives (anonymised) users
    client_id: Mapped[str | None] = mapped_column(ClientId)
    scopes: Mapped[Scopes | None]
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any] | None]


class WebhookOutbox(Base):
    """Webhook events written in the same transaction as the change; delivered at least once."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(
        ClientId, ForeignKey("oauth2_clients.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(48))
    payload: Mapped[dict[str, Any]]
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "outbox_status"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class RegistrationRequest(Base):
    """An asynchronous registration: its status for the caller, and the durable queue of the db transport."""

    __tablename__ = "registration_requests"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_clustered_id)
    status: Mapped[RegistrationStatus] = mapped_column(_enum(RegistrationStatus, "registration_status"))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(
        String(255)
    )  # hashed before queueing, cleared when done
    attributes: Mapped[dict[str, Any] | None]
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    error: Mapped[str | None] = mapped_column(String(1000))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    in_dlq: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
