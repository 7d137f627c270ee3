"""The UserInfo endpoint (OIDC Core §5.3): claims released by the scopes of the access token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consentry.domain.scopes import OPENID
from consentry.errors import InsufficientScopeError, InvalidTokenError
from consentry.runtime import Runtime
from consentry.services.introspection import find_live_token, subject_seen_by
from consentry.storage.records import User
from consentry.storage.users import UserRepository


def claims_for(user: User, scopes: frozenset[str]) -> dict[str, Any]:
    """OIDC Core §5.4: profile, email and phone claims; absent values are omitted."""
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        profile = {
            "name": user.name, "given_name": user.given_name, "family_name": user.family_name,
            "preferred_username": user.preferred_username, "picture": user.picture, "locale": user.locale,
            "zoneinfo": user.zoneinfo,
        }  # fmt: skip
        claims.update({key: value for key, value in profile.items() if value is not None})
        claims["updated_at"] = int(user.updated_at.timestamp())
    if "email" in scopes and user.email:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    if "phone" in scopes and user.phone:
        claims["phone_number"] = user.phone
        claims["phone_number_verified"] = user.phone_verified
    return claims


async def userinfo(runtime: Runtime, access_token: str, *, now: datetime) -> dict[str, Any]:
    live = await find_live_token(runtime, access_token, "access_token", now=now)
    if live is None or live.token_type != "access_token" or live.record.user_id is None:
        raise InvalidTokenError("the access token is invalid, expired or revoked")
    token = live.record
    if token.resources:  # SPEC §7: a token for an API is not one for userinfo (its audience is the API)
        raise InvalidTokenError("the access token is for another resource; use one issued without resource")
    if OPENID not in token.scopes:
        raise InsufficientScopeError("the access token lacks the openid scope")
    client = await runtime.clients.get(token.client_id)
    async with runtime.database.read_only() as session:
        user = await UserRepository(session).get_user(token.user_id) if token.user_id else None
    if user is None or client is None or user.status != "active":
        raise InvalidTokenError("the access token is no longer valid")
    return {**await subject_seen_by(runtime, user.id, client, now=now), **claims_for(user, token.scopes)}
