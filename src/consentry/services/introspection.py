"""Token introspection (RFC 7662) and the bearer-token lookup shared with userinfo (RFC 6750)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.crypto.hashing import token_hash
from consentry.domain.clients import RegisteredClient
from consentry.runtime import Runtime
from consentry.storage.group_commit import WriteUnit
from consentry.storage.tokens import TokenRecord

INACTIVE: dict[str, Any] = {"active": False}
MAX_TOKEN_LENGTH = 4096  # an opaque token is 43 characters; a JWT access token some hundreds


@dataclass(frozen=True, slots=True)
class LiveToken:
    record: TokenRecord
    token_type: str  # access_token or refresh_token


async def find_live_token(
    runtime: Runtime, token: str, hint: str | None, *, now: datetime
) -> LiveToken | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = token_hash(token)
    lookup = runtime.token_lookup
    order = (
        (("refresh_token", lookup.refresh), ("access_token", lookup.access))
        if hint == "refresh_token"
        else (("access_token", lookup.access), ("refresh_token", lookup.refresh))
    )
    for kind, reader in order:
        record = await reader.get(digest)
        if record is None:
            continue
        if not record.is_live(now=now) or await runtime.clients.get(record.client_id) is None:
            return (
                None  # expired, revoked, or its client deleted (maybe by another node as this one issued it)
            )
        return LiveToken(record, kind)
    return None


async def introspect(
    runtime: Runtime, caller: RegisteredClient, token: str, hint: str | None, *, now: datetime
) -> dict[str, Any]:
    """``active=false`` for anything not live (§2.2), and for a token the caller may not see (SPEC §7): a
    client sees only its own tokens, a resource only the access tokens whose audience it is (else either
    could read what other apps may do); ``sub`` as the token's client knows the person."""
    live = await find_live_token(runtime, token, hint, now=now)
    if live is None:
        return INACTIVE
    record = live.record
    resource = (await runtime.clients.catalogue()).resource_of_client(caller.id)
    if resource is not None:
        issued_to = await runtime.clients.get(record.client_id)
        if live.token_type != "access_token" or resource.identifier not in (record.resources or ()):
            return INACTIVE
    elif record.client_id == caller.id:
        issued_to = caller
    else:
        return INACTIVE
    response: dict[str, Any] = {
        "active": True,
        "scope": record.scopes.format(),
        "client_id": record.client_id,
        "token_type": "Bearer" if live.token_type == "access_token" else "refresh_token",
        "exp": int(record.expires_at.timestamp()),
        "iat": int(record.created_at.timestamp()),
        "iss": runtime.issuer,
        "aud": _audience(record),
    }
    if record.jti is not None:
        response["jti"] = record.jti
    if record.user_id is not None and issued_to is not None:
        response |= await subject_seen_by(runtime, record.user_id, issued_to, now=now)
    return response


def _audience(record: TokenRecord) -> str | list[str]:
    """The resources an access token is for (it then has a jti); any other token is for its client."""
    if record.jti is None or not record.resources:
        return record.client_id
    return record.resources[0] if len(record.resources) == 1 else list(record.resources)


async def subject_seen_by(
    runtime: Runtime, user_id: uuid.UUID, client: RegisteredClient, *, now: datetime
) -> dict[str, str]:
    """The ``sub`` ``client`` knows the person by, and ``sub_previous`` while its sector migrates (SPEC §6);
    a new pseudonym is recorded (group-committed) first."""
    subject = await runtime.subjects.subject(user_id, client, now=now)
    if subject.record is not None:
        await runtime.writes.write(WriteUnit(statements=(subject.record.statement,)))
        runtime.subjects.remember(subject.record)
    return subject.claims()
