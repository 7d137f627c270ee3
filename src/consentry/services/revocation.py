"""Token revocation (RFC 7009)."""

from __future__ import annotations

from datetime import datetime

from consentry.crypto.hashing import token_hash
from consentry.domain.clients import RegisteredClient
from consentry.runtime import Runtime
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.tokens import TokenRepository


async def revoke(
    runtime: Runtime,
    client: RegisteredClient,
    token: str,
    hint: str | None,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> None:
    """Revoke a token of this client. Unknown tokens, or other clients' tokens, are silently ignored (§2.2).

    A refresh token takes its whole grant with it: every access token issued from it (§2.1).
    The hint only orders the look-ups; an unrecognised hint is ignored.
    """
    digest = token_hash(token)
    async with runtime.database.unit_of_work() as session:
        tokens = TokenRepository(session)
        kinds = (
            ("refresh_token", "access_token")
            if hint == "refresh_token"
            else ("access_token", "refresh_token")
        )
        for kind in kinds:
            if kind == "access_token":
                access = await tokens.get_access_token(digest)
                if access is None or access.client_id != client.id:
                    continue
                revoked = await tokens.revoke_access_token(digest, now=now)
                user_id, scopes = access.user_id, access.scopes
            else:
                refresh = await tokens.get_refresh_token(digest)
                if refresh is None or refresh.client_id != client.id:
                    continue
                revoked = await tokens.revoke_family(refresh.family_id, now=now)
                user_id, scopes = refresh.user_id, refresh.scopes
            if revoked:
                await AuditRepository(session).record(
                    "token_revoked",
                    now=now,
                    origin=origin,
                    user_id=user_id,
                    client_id=client.id,
                    scopes=scopes,
                    actor="client",
                    details={"token_type": kind, "revoked": revoked},
                )
            return
