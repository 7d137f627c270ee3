"""Codes and tokens, always addressed by the SHA-256 of their value (never the value itself).

Single use and rotation are enforced by conditional UPDATEs (``... WHERE used_at IS NULL``): of two
concurrent requests exactly one sees a row updated, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import ColumnElement, Table, bindparam, null, or_, select, tuple_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from consentry.domain.consent import ConsentStatus
from consentry.domain.scopes import OFFLINE_ACCESS, Scopes
from consentry.storage.batched_reads import BatchedReader, rows_by_first_column
from consentry.storage.group_commit import marked_once
from consentry.storage.json_arrays import array_has
from consentry.storage.key_lists import ByKeys, by_keys
from consentry.storage.tables import AccessToken, AuthorizationCode, Client, Consent, RefreshToken

if TYPE_CHECKING:
    from consentry.storage.database import Database

ACCESS_TOKENS: Table = AccessToken.__table__  # type: ignore[assignment]
REFRESH_TOKENS: Table = RefreshToken.__table__  # type: ignore[assignment]
AUTHORIZATION_CODES: Table = AuthorizationCode.__table__  # type: ignore[assignment]


def token_row(
    kind: Literal["access", "refresh"],
    *,
    token_hash: bytes,
    client_id: str,
    scopes: Scopes,
    created_at: datetime,
    expires_at: datetime,
    user_id: uuid.UUID | None = None,
    family_id: uuid.UUID | None = None,
    consent_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    auth_time: datetime | None = None,
    resources: Sequence[str] = (),
    jti: str | None = None,
) -> tuple[Table, dict[str, Any]]:
    """An access or refresh token as a row to insert (group-committed: no ORM object on the hot path).

    ``resources``: an access token's audience, or a refresh token's grant's resources (RFC 8707); ``jti``:
    an access token's JWT ID, which the revocation feed names it by."""
    row: dict[str, Any] = {
        "token_hash": token_hash,
        "client_id": client_id,
        "user_id": user_id,
        "family_id": family_id,
        "consent_id": consent_id,
        "session_id": session_id,
        "scopes": scopes,
        "auth_time": auth_time,
        "created_at": created_at,
        "expires_at": expires_at,
    }
    if kind == "refresh":
        return REFRESH_TOKENS, row | {"resources": list(resources) or None}
    return ACCESS_TOKENS, row | {"audience": list(resources) or None, "jti": jti}


def _consent_still_live(consent_id: InstrumentedAttribute[uuid.UUID | None]) -> ColumnElement[bool]:
    """No consent, or a live one: a consent revoked since the code or token was issued stops its use.

    On PostgreSQL the consent is read FOR SHARE: a revocation holds it FOR UPDATE until it has revoked the
    consent's tokens and committed, and a claim that only read it would slip in between, leaving tokens the
    revocation did not see. The claim waits for the revocation instead and then finds the consent gone; a
    revocation that comes second waits for the claim's tokens and revokes them with the rest."""
    live = (
        select(Consent.id)
        .where(
            Consent.id == consent_id,
            Consent.status == ConsentStatus.ACTIVE,
            Consent.expires_at > bindparam("now"),
        )
        .with_for_update(read=True)
    )
    return or_(consent_id.is_(None), live.exists())


# Single use of a code (RFC 6749 §4.1.2) and rotation of a refresh token (RFC 9700 §4.14.2), as group-commit
# claims: marked used/rotated only if not already, and only while their consent is live.
CODE_USE = marked_once(
    "code use",
    AuthorizationCode.code_hash,
    AuthorizationCode.used_at,
    AuthorizationCode.expires_at > bindparam("now"),  # not ended meanwhile (narrowing ends codes)
    _consent_still_live(AuthorizationCode.consent_id),
)
REFRESH_ROTATION = marked_once(
    "refresh rotation",
    RefreshToken.token_hash,
    RefreshToken.rotated_at,
    RefreshToken.revoked_at.is_(None),
    _consent_still_live(RefreshToken.consent_id),
)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored access or refresh token as read on the hot paths (no ORM object)."""

    token_hash: bytes
    client_id: str
    user_id: uuid.UUID | None
    family_id: uuid.UUID | None
    consent_id: uuid.UUID | None
    session_id: uuid.UUID | None
    scopes: Scopes
    auth_time: datetime | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    rotated_at: datetime | None  # refresh tokens only
    resources: list[str] | None  # an access token's audience; a refresh token's grant's resources
    jti: str | None  # access tokens for a resource only

    def is_live(self, *, now: datetime) -> bool:
        return self.rotated_at is None and self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """A stored authorization code as the token endpoint reads it (no ORM object)."""

    code_hash: bytes
    client_id: str
    user_id: uuid.UUID
    consent_id: uuid.UUID | None
    redirect_uri: str
    scopes: Scopes
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    auth_time: datetime
    family_id: uuid.UUID
    session_id: uuid.UUID | None
    resources: list[str] | None
    expires_at: datetime
    used_at: datetime | None


_CODE_COLUMNS = [AUTHORIZATION_CODES.c[name] for name in CodeRecord.__slots__]
_CODES_BY_HASH = by_keys(
    AUTHORIZATION_CODES.c.code_hash, lambda among_keys: select(*_CODE_COLUMNS).where(among_keys)
)


class TokenLookup:
    """Codes, access and refresh tokens by hash, batched across concurrent requests."""

    def __init__(self, database: Database) -> None:
        dialect = database.dialect
        self.access: BatchedReader[bytes, TokenRecord] = BatchedReader(
            rows_by_first_column(database, _token_records(ACCESS_TOKENS).for_dialect(dialect), TokenRecord)
        )
        self.refresh: BatchedReader[bytes, TokenRecord] = BatchedReader(
            rows_by_first_column(database, _token_records(REFRESH_TOKENS).for_dialect(dialect), TokenRecord)
        )
        self.codes: BatchedReader[bytes, CodeRecord] = BatchedReader(
            rows_by_first_column(database, _CODES_BY_HASH.for_dialect(dialect), CodeRecord)
        )


def _token_records(table: Table) -> ByKeys:
    def either(*names: str) -> Any:
        return next((table.c[name] for name in names if name in table.c), null())

    columns = [
        *(table.c[name] for name in _RECORD_COLUMNS),
        either("rotated_at"),
        either("audience", "resources"),
        either("jti"),
    ]
    return by_keys(table.c.token_hash, lambda among_keys: select(*columns).where(among_keys))


_RECORD_COLUMNS = (
    "token_hash",
    "client_id",
    "user_id",
    "family_id",
    "consent_id",
    "session_id",
    "scopes",
    "auth_time",
    "created_at",
    "expires_at",
    "revoked_at",
)


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revoked access token, as the revocation feed names it (SPEC §7)."""

    jti: str
    expires_at: datetime
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class OneTimeGrant:
    """An app's live tokens from approvals the person did not ask to remember (SPEC §4 remembered=false)."""

    client_id: str
    scopes: Scopes
    granted_at: datetime
    last_issued_at: datetime
    expires_at: datetime

    def with_token(self, scopes: Scopes, created_at: datetime, expires_at: datetime) -> OneTimeGrant:
        return OneTimeGrant(
            self.client_id,
            self.scopes | scopes,
            min(self.granted_at, created_at),
            max(self.last_issued_at, created_at),
            max(self.expires_at, expires_at),
        )


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # Codes and tokens are written through group commit (rows above) and read on the hot paths through
    # TokenLookup; what remains here is revocation's read-then-update in one transaction.

    async def get_access_token(self, token_hash: bytes) -> AccessToken | None:
        return await self._session.get(AccessToken, token_hash)

    async def get_refresh_token(self, token_hash: bytes) -> RefreshToken | None:
        return await self._session.get(RefreshToken, token_hash)

    async def end_codes_carrying(
        self, user_id: uuid.UUID, client_id: str, scopes: Scopes | None, *, now: datetime
    ) -> int:
        """This person's unused codes for this client that carry any of ``scopes`` (None: every one) expire
        now: a consent narrowed or revoked after they were issued no longer covers them. Returns how many."""
        live = await self._session.execute(
            select(AuthorizationCode.code_hash, AuthorizationCode.scopes).where(
                AuthorizationCode.expires_at > now,  # the live ones
                AuthorizationCode.user_id == user_id,
                AuthorizationCode.client_id == client_id,
                AuthorizationCode.used_at.is_(None),
            )
        )
        ending = [code_hash for code_hash, code_scopes in live if scopes is None or code_scopes & scopes]
        if ending:
            await self._session.execute(
                update(AuthorizationCode)
                .where(AuthorizationCode.code_hash.in_(ending), AuthorizationCode.used_at.is_(None))
                .values(expires_at=now)
                .execution_options(synchronize_session=False)
            )
        return len(ending)

    async def live_of(
        self, user_id: uuid.UUID, client_id: str, *, now: datetime, one_time_only: bool = False
    ) -> list[AccessToken | RefreshToken]:
        """Every live access and refresh token of one person for one client (a bounded set); with
        ``one_time_only``, those of approvals the person did not ask to remember (no consent record)."""
        found: list[AccessToken | RefreshToken] = []
        for table in (AccessToken, RefreshToken):
            live = select(table).where(
                table.user_id == user_id,
                table.client_id == client_id,
                table.revoked_at.is_(None),
                table.expires_at > now,
            )
            if one_time_only:
                live = live.where(table.consent_id.is_(None))
            found.extend(await self._session.scalars(live))
        return found

    async def one_time_grants(self, user_id: uuid.UUID, *, now: datetime) -> list[OneTimeGrant]:
        """The person's approvals not remembered as a consent (``remember=false``) whose tokens still live,
        one per app not deleted: what its tokens carry, when the first was issued and the last expires."""
        grants: dict[str, OneTimeGrant] = {}
        for table in (AccessToken, RefreshToken):
            rows = await self._session.execute(
                select(table.client_id, table.scopes, table.created_at, table.expires_at)
                .join(Client, Client.id == table.client_id)
                .where(
                    table.user_id == user_id,
                    table.consent_id.is_(None),
                    table.revoked_at.is_(None),
                    table.expires_at > now,
                    Client.deleted_at.is_(None),
                )
            )
            for client_id, scopes, created_at, expires_at in rows:
                known = grants.get(client_id)
                grants[client_id] = (
                    OneTimeGrant(client_id, scopes, created_at, created_at, expires_at)
                    if known is None
                    else known.with_token(scopes, created_at, expires_at)
                )
        return sorted(grants.values(), key=lambda grant: grant.granted_at, reverse=True)

    async def revoke_access_token(self, token_hash: bytes, *, now: datetime) -> int:
        return await self._revoke(AccessToken, AccessToken.token_hash == token_hash, now=now)

    async def revoke_family(self, family_id: uuid.UUID, *, now: datetime) -> int:
        """Every access and refresh token of one grant (a code's issue and all its rotations)."""
        return await self._revoke(
            AccessToken, AccessToken.family_id == family_id, now=now
        ) + await self._revoke(RefreshToken, RefreshToken.family_id == family_id, now=now)

    async def revoke_for_user_and_client(self, user_id: uuid.UUID, client_id: str, *, now: datetime) -> int:
        return await self._revoke(
            AccessToken, (AccessToken.user_id == user_id) & (AccessToken.client_id == client_id), now=now
        ) + await self._revoke(
            RefreshToken, (RefreshToken.user_id == user_id) & (RefreshToken.client_id == client_id), now=now
        )

    async def clients_issued_in(self, session_ids: Sequence[uuid.UUID]) -> list[tuple[str, uuid.UUID]]:
        """The (client, session) pairs of these sessions in which the client was issued a code or a token."""
        pairs: set[tuple[str, uuid.UUID]] = set()
        for table in (AuthorizationCode, AccessToken, RefreshToken):
            issued = select(table.client_id, table.session_id).where(table.session_id.in_(session_ids))
            for client_id, session_id in await self._session.execute(issued.distinct()):
                if session_id is not None:
                    pairs.add((client_id, session_id))
        return sorted(pairs)

    async def end_session_grants(self, session_ids: Sequence[uuid.UUID], *, now: datetime) -> int:
        """What was issued in these sign-in sessions ends with them (SPEC §9): their unused codes expire, and
        the tokens of every grant without ``offline_access`` are revoked; a grant with it lives on until the
        consent or the person ends it. Returns how many tokens were revoked."""
        await self._session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.session_id.in_(session_ids),
                AuthorizationCode.used_at.is_(None),
                AuthorizationCode.expires_at > now,
            )
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )
        offline: set[uuid.UUID] = set()
        for table in (AccessToken, RefreshToken):
            live = await self._session.execute(
                select(table.family_id, table.scopes).where(
                    table.session_id.in_(session_ids), table.revoked_at.is_(None), table.expires_at > now
                )
            )
            offline |= {family for family, scopes in live if family is not None and OFFLINE_ACCESS in scopes}
        ended = 0
        for table in (AccessToken, RefreshToken):
            ending: ColumnElement[bool] = table.session_id.in_(session_ids)
            if offline:
                ending = ending & table.family_id.not_in(offline)
            ended += await self._revoke(table, ending, now=now)
        return ended

    async def revoke_everything_of(self, user_id: uuid.UUID, *, now: datetime) -> int:
        """Every live access and refresh token of one person, whatever the client, and their unused codes."""
        await self._session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.user_id == user_id,
                AuthorizationCode.used_at.is_(None),
                AuthorizationCode.expires_at > now,
            )
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )
        return await self._revoke(AccessToken, AccessToken.user_id == user_id, now=now) + await self._revoke(
            RefreshToken, RefreshToken.user_id == user_id, now=now
        )

    async def revoke_tokens_of_client(self, client_id: str, *, now: datetime) -> int:
        """Every live access and refresh token of one client (it is being deleted)."""
        return await self._revoke(
            AccessToken, AccessToken.client_id == client_id, now=now
        ) + await self._revoke(RefreshToken, RefreshToken.client_id == client_id, now=now)

    async def revoke_tokens_of_users(self, user_ids: Sequence[uuid.UUID], *, now: datetime) -> int:
        """Every live access and refresh token of these people (their accounts are being deleted)."""
        access = await self._revoke(AccessToken, AccessToken.user_id.in_(user_ids), now=now)
        return access + await self._revoke(RefreshToken, RefreshToken.user_id.in_(user_ids), now=now)

    async def revoke_carrying_scope(self, scope: str, *, now: datetime) -> int:
        """Every live token that carries ``scope`` (it is being deleted): access tokens, and the refresh
        tokens of grants that hold it."""
        dialect = self._session.get_bind().dialect.name
        return await self._revoke(
            AccessToken, array_has(AccessToken.scopes, scope, dialect), now=now
        ) + await self._revoke(RefreshToken, array_has(RefreshToken.scopes, scope, dialect), now=now)

    async def revoke_for_resource(self, identifier: str, *, now: datetime) -> int:
        """Every live access token whose audience the resource is, and every refresh token of a grant asked
        for it (the resource is being deleted)."""
        dialect = self._session.get_bind().dialect.name
        return await self._revoke(
            AccessToken, array_has(AccessToken.audience, identifier, dialect), now=now
        ) + await self._revoke(RefreshToken, array_has(RefreshToken.resources, identifier, dialect), now=now)

    async def revocations_for(
        self, identifier: str, *, after: tuple[datetime, str] | None, now: datetime, limit: int
    ) -> list[Revocation]:
        """The resource's revoked, unexpired access tokens, in (revoked_at, jti) order, after ``after``."""
        dialect = self._session.get_bind().dialect.name
        revoked = (
            select(AccessToken.jti, AccessToken.expires_at, AccessToken.revoked_at)
            .where(
                AccessToken.jti.is_not(None),
                AccessToken.revoked_at.is_not(None),  # with the line above: the feed's partial index
                AccessToken.expires_at > now,
                array_has(AccessToken.audience, identifier, dialect),
            )
            .order_by(AccessToken.revoked_at, AccessToken.jti)
            .limit(limit)
        )
        if after is not None:
            revoked = revoked.where(tuple_(AccessToken.revoked_at, AccessToken.jti) > tuple_(*after))
        rows = await self._session.execute(revoked)
        return [Revocation(str(jti), expires, revoked or expires) for jti, expires, revoked in rows]

    async def _revoke(
        self, table: type[AccessToken] | type[RefreshToken], condition: ColumnElement[bool], *, now: datetime
    ) -> int:
        result = await self._session.execute(
            update(table)
            .where(condition, table.revoked_at.is_(None), table.expires_at > now)
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)
