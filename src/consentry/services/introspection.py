"""Token introspection (RFC 7662) and the bearer-token lookup shared with userinfo (RFC 6750)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.crypto.hashing import token_hash
from consentry.domain.clients import RegisteredClient
from consentry.domain.tokens import is_live
from consentry.runtime import Runtime
from consentry.storage.tables import AccessToken, RefreshToken
from consentry.storage.tokens import TokenRepository

INACTIVE: dict[str, Any] = {"active": False}


@dataclass(frozen=True, slots=True)
class LiveToken:
    row: AccessToken | RefreshToken
    token_type: str  # access_token or refresh_token


async def find_live_token(
    runtime: Runtime, token: str, hint: str | None, *, now: datetime
) -> LiveToken | None:
    if not token or len(token) > 512:
        return None
    digest = token_hash(token)
    async with runtime.database.read_only() as session:
        tokens = TokenRepository(session)
        order = (
            ("refresh_token", "access_token")
            if hint == "refresh_token"
            else ("access_token", "refresh_token")
        )
        for kind in order:
            row: AccessToken | RefreshToken | None
            if kind == "access_token":
                row = await tokens.get_access_token(digest)
            else:
                row = await tokens.get_refresh_token(digest)
            if row is None:
                continue
            rotated = isinstance(row, RefreshToken) and row.rotated_at is not None
            if rotated or not is_live(expires_at=row.expires_at, revoked_at=row.revoked_at, now=now):
                return None
            return LiveToken(row, kind)
    return None


async def introspect(
    runtime: Runtime, caller: RegisteredClient, token: str, hint: str | None, *, now: datetime
) -> dict[str, Any]:
    """``active=false`` for anything not live (§2.2); ``sub`` as the calling client sees the person."""
    live = await find_live_token(runtime, token, hint, now=now)
    if live is None:
        return INACTIVE
    row = live.row
    response: dict[str, Any] = {
        "active": True,
        "scope": row.scopes.format(),
        "client_id": row.client_id,
        "token_type": "Bearer" if live.token_type == "access_token" else "refresh_token",
        "exp": int(row.expires_at.timestamp()),
        "iat": int(row.created_at.timestamp()),
        "iss": runtime.issuer,
        "aud": row.client_id,
    }
    if row.user_id is not None:
        async with runtime.database.unit_of_work() as session:
            response["sub"] = await runtime.subjects.subject_for(session, row.user_id, caller, now=now)
    return response
