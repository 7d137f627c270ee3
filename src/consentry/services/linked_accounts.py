"""A person's linked upstream accounts (SPEC §10): listing them, unlinking one, and what administrators see.

Unlinking drops the provider's tokens with the link, and is refused when it would leave the person no way to
sign in (``domain.upstreams.may_unlink``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from consentry.domain.upstreams import may_unlink
from consentry.errors import ConflictError, NotFoundError, ServiceUnavailableError
from consentry.infrastructure.upstream_oauth import UpstreamRefused, UpstreamUnavailable
from consentry.runtime import Runtime
from consentry.services.upstream_providers import config_of, seal_token, token_expiry
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.database import Transaction
from consentry.storage.records import LinkedAccount
from consentry.storage.upstreams import LinkedAccountRepository, UpstreamProviderRepository
from consentry.storage.users import UserRepository

RECENT_LINKS = 10
REFRESH_AHEAD = timedelta(seconds=60)  # a token this close to expiring is refreshed before it is handed out


def describe(link: LinkedAccount) -> dict[str, Any]:
    return {
        "provider": link.provider,
        "provider_uid": link.provider_uid,
        "email": link.email,
        "linked_at": link.linked_at.isoformat(),
        "last_used_at": link.last_used_at.isoformat() if link.last_used_at else None,
    }


async def linked_accounts_of(session: Transaction, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The person's linked accounts as the API, the export and administrators show them."""
    return [describe(link) for link in await LinkedAccountRepository(session).of_user(user_id)]


async def list_linked_accounts(runtime: Runtime, user_id: uuid.UUID) -> list[dict[str, Any]]:
    async with runtime.database.read_only() as session:
        return await linked_accounts_of(session, user_id)


async def unlink(
    runtime: Runtime, user_id: uuid.UUID, provider: str, *, origin: RequestOrigin, now: datetime
) -> None:
    async with runtime.database.unit_of_work() as session:
        user = await UserRepository(session).get_user(user_id, for_update=True)  # one unlink at a time
        links = LinkedAccountRepository(session)
        held = await links.of_user(user_id)
        if user is None or not any(link.provider == provider for link in held):
            raise NotFoundError("no account of that provider is linked to yours")
        if not may_unlink(
            other_links=len(held) - 1, has_verified_identifier=user.email_verified or user.phone_verified
        ):
            raise ConflictError(
                "this is the only way left to sign in to your account: add an email address or link another"
                " account first"
            )
        await links.remove(user_id, provider)
        await AuditRepository(session).record(
            "account_unlinked", now=now, origin=origin, user_id=user_id, details={"provider": provider}
        )


async def upstream_access_token(
    runtime: Runtime,
    user_id: uuid.UUID,
    provider: str,
    *,
    admin: uuid.UUID | None,
    origin: RequestOrigin,
    now: datetime,
) -> dict[str, Any]:
    """The provider's access token for the person, for an administrator's call to the provider's API on their
    behalf (as Auth0's identity-provider tokens): refreshed first, with the refresh token, when it has expired
    or is about to. Each read is audited."""
    async with runtime.database.read_only() as session:
        link = next(
            (
                held
                for held in await LinkedAccountRepository(session).of_user(user_id)
                if held.provider == provider
            ),
            None,
        )
        record = await UpstreamProviderRepository(session).get(provider)
    if link is None or record is None or link.access_token is None:
        raise NotFoundError("no token of that provider is kept for this person")
    config = config_of(runtime, record)
    access_token, expires_at = runtime.secret_box.open(link.access_token).decode(), link.token_expires_at
    if expires_at is not None and expires_at <= now + REFRESH_AHEAD:
        if link.refresh_token is None:
            raise ConflictError(
                "the provider's token has expired and it gave no refresh token: the person signs in again"
            )
        try:
            token = await runtime.upstream_oauth.refresh(
                config, runtime.secret_box.open(link.refresh_token).decode()
            )
        except UpstreamRefused as exc:
            raise ConflictError(
                f"{config.display_name} refused to refresh the token ({exc}): the person signs in again"
            ) from None
        except UpstreamUnavailable as exc:
            raise ServiceUnavailableError(
                f"{config.display_name} cannot be reached: {exc}", retry_after=5
            ) from None
        access_token, expires_at = token["access_token"], token_expiry(token)
        async with runtime.database.unit_of_work() as session:
            await LinkedAccountRepository(session).update_tokens(
                link.id,
                access_token=seal_token(runtime, access_token),
                refresh_token=seal_token(runtime, token.get("refresh_token")),
                expires_at=expires_at,
            )
    async with runtime.database.unit_of_work() as session:
        await AuditRepository(session).record(
            "upstream_token_read", now=now, origin=origin, user_id=user_id, actor="admin",
            details={"provider": provider, "admin": str(admin) if admin else None},
        )  # fmt: skip
    return {
        "provider": provider,
        "access_token": access_token,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }


async def link_statistics(session: Transaction) -> dict[str, Any]:
    """For ``GET /api/v1/admin/stats``: linked accounts per provider, and the newest links."""
    links = LinkedAccountRepository(session)
    recent = [
        {"user_id": str(link.user_id), **describe(link)} for link in await links.recent(limit=RECENT_LINKS)
    ]
    return {"linked_accounts": await links.count_by_provider(), "recent_links": recent}
