"""Ending consents, with immediate effect: every path that does (the person, an admin, a client's or an
account's deletion, expiry) goes through :func:`end_consents` (SPEC §4, §9); withdrawing some scopes too."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from consentry.domain import consent as rules
from consentry.domain.clients import RegisteredClient
from consentry.domain.scopes import Scopes
from consentry.errors import InvalidRequestError, NotFoundError
from consentry.runtime import Runtime
from consentry.services.consent_grants import consent_changed
from consentry.services.webhooks import EventType, enqueue
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.consents import ConsentRepository, ConsentsOf, EndedConsent
from consentry.storage.database import Transaction, retrying_deadlocks
from consentry.storage.records import AccessToken
from consentry.storage.tokens import OneTimeGrant, TokenRepository

CONSENTS_PER_STATEMENT = 1000  # ended at once; more are ended by calling again

# SPEC §9: every path that ends a consent writes its history (storage), the audit event and tells the client.
_ENDING: dict[str, tuple[str, EventType]] = {
    "revoked": ("consent_revoked", "consent.revoked"),
    "expired": ("consent_expired", "consent.expired"),
}


async def end_consents(
    runtime: Runtime,
    session: Transaction,
    which: ConsentsOf,
    *,
    action: Literal["revoked", "expired"] = "revoked",
    actor: str,
    origin: RequestOrigin | None,
    now: datetime,
    client: RegisteredClient | None = None,
    limit: int = CONSENTS_PER_STATEMENT,
    skip_locked: bool = False,
) -> list[EndedConsent]:
    """End up to ``limit`` of the active consents ``which`` names: the one way every path does it (the person,
    an admin, a client's deletion, an account's deletion, expiry). Each gets its history row, its audit
    event and its webhook; ``client`` is the app's record when the caller is deleting that app (it is then no
    longer found). Tokens are the caller's business: each path ends them differently (or, for expiry, leaves
    them to run out while refresh is refused)."""
    ended = await ConsentRepository(session).end_active(
        which, action=action, actor=actor, origin=origin, now=now, limit=limit, skip_locked=skip_locked
    )
    audit_event, webhook = _ENDING[action]
    audit = AuditRepository(session)
    for consent in ended:
        await audit.record(
            audit_event,
            now=now,
            origin=origin,
            user_id=consent.user_id,
            client_id=consent.client_id,
            scopes=consent.scopes,
            actor=actor,
        )
        told = client if client is not None else await runtime.clients.get(consent.client_id)
        if told is not None:
            await enqueue(
                runtime, session, told, webhook, user_id=consent.user_id, scopes=consent.scopes, now=now
            )
    return ended


async def end_all_consents(
    runtime: Runtime,
    session: Transaction,
    which: ConsentsOf,
    *,
    actor: str,
    origin: RequestOrigin | None,
    now: datetime,
    client: RegisteredClient | None = None,
) -> None:
    """:func:`end_consents` until none ``which`` names is left, in the caller's transaction."""
    while True:
        ended = await end_consents(
            runtime, session, which, actor=actor, origin=origin, now=now, client=client
        )
        if len(ended) < CONSENTS_PER_STATEMENT:
            return


@retrying_deadlocks
async def revoke_consent(
    runtime: Runtime,
    user_id: uuid.UUID,
    client_id: str,
    *,
    actor: str = "user",
    origin: RequestOrigin,
    now: datetime,
) -> int:
    """In one transaction: the app's access ends, remembered or not (SPEC §4). The consent, if there is one,
    is ended (kept as history); every access and refresh token of this person for this client is revoked, and
    every code not yet exchanged. Returns how many tokens died.

    The revocation holds the consent while it revokes the tokens, and a group-commit claim on one of them may
    hold that token while it waits for the consent (a token issued before any consent, refreshed as the person
    revokes): PostgreSQL then aborts one of the two, and an aborted revocation runs again."""
    async with runtime.database.unit_of_work() as session:
        tokens = TokenRepository(session)
        ended = await end_consents(
            runtime,
            session,
            ConsentsOf(user_ids=(user_id,), client_id=client_id),
            actor=actor,
            origin=origin,
            now=now,
        )
        if ended:
            before, reason = ended[0].scopes, "consent_revoked"
        else:
            one_time = await _one_time_grant(tokens, user_id, client_id, now=now)
            before, reason = one_time.scopes, "access_revoked"
        await tokens.end_codes_carrying(user_id, client_id, None, now=now)
        revoked = await tokens.revoke_for_user_and_client(user_id, client_id, now=now)
        if revoked:
            await _tell_tokens_revoked(
                runtime, session, user_id, client_id, before, actor=actor, origin=origin, now=now,
                details={"reason": reason, "revoked": revoked},
            )  # fmt: skip
    return revoked


async def _one_time_grant(
    tokens: TokenRepository, user_id: uuid.UUID, client_id: str, *, now: datetime
) -> OneTimeGrant:
    """The app's access from approvals not remembered; 404 when it has none either."""
    for grant in await tokens.one_time_grants(user_id, now=now):
        if grant.client_id == client_id:
            return grant
    raise NotFoundError("no active consent for this application")


async def _tell_tokens_revoked(
    runtime: Runtime,
    session: Transaction,
    user_id: uuid.UUID,
    client_id: str,
    scopes: Scopes,
    *,
    actor: str,
    origin: RequestOrigin,
    now: datetime,
    details: dict[str, Any],
) -> None:
    """The audit event and the client's ``tokens.revoked`` webhook for tokens the person's choice ended."""
    await AuditRepository(session).record(
        "token_revoked",
        now=now,
        origin=origin,
        user_id=user_id,
        client_id=client_id,
        scopes=scopes,
        actor=actor,
        details=details,
    )
    client = await runtime.clients.get(client_id)
    if client is not None:
        await enqueue(runtime, session, client, "tokens.revoked", user_id=user_id, scopes=scopes, now=now)


async def narrow_consent(
    runtime: Runtime,
    user_id: uuid.UUID,
    client_id: str,
    revoke_scopes: Scopes,
    *,
    actor: str = "user",
    origin: RequestOrigin,
    now: datetime,
) -> Scopes:
    """Withdraw some scopes: the consent (or the approval not remembered) keeps the rest, and every token
    carrying a withdrawn scope dies.

    Withdrawing every scope is a revocation. Returns the scopes left.
    """
    if not revoke_scopes:
        raise InvalidRequestError("revoke_scopes must name at least one scope")
    async with runtime.database.read_only() as session:
        current = await ConsentRepository(session).get_active(user_id, client_id)
        if current is not None and now < current.expires_at:
            held = current.scopes
        else:
            held = (await _one_time_grant(TokenRepository(session), user_id, client_id, now=now)).scopes
    if not (held - revoke_scopes):
        await revoke_consent(runtime, user_id, client_id, actor=actor, origin=origin, now=now)
        return Scopes()
    return await _narrow_consent(
        runtime, user_id, client_id, revoke_scopes, actor=actor, origin=origin, now=now
    )


@retrying_deadlocks  # as a revocation, and for the same reason
async def _narrow_consent(
    runtime: Runtime,
    user_id: uuid.UUID,
    client_id: str,
    revoke_scopes: Scopes,
    *,
    actor: str,
    origin: RequestOrigin,
    now: datetime,
) -> Scopes:
    async with runtime.database.unit_of_work() as session:
        consents, tokens = ConsentRepository(session), TokenRepository(session)
        consent = await consents.get_active_for_update(user_id, client_id)
        if consent is None:  # an approval not remembered: only its tokens carry the scopes
            before = (await _one_time_grant(tokens, user_id, client_id, now=now)).scopes
        else:
            before = consent.scopes
        withdrawn = before & revoke_scopes
        left = rules.narrow(before, revoke_scopes)
        ended_codes = await tokens.end_codes_carrying(user_id, client_id, withdrawn, now=now)
        revoked = 0
        for token in await tokens.live_of(user_id, client_id, now=now, one_time_only=consent is None):
            if not token.scopes & withdrawn:
                continue
            if isinstance(token, AccessToken):
                revoked += await tokens.revoke_access_token(token.token_hash, now=now)
            else:  # a refresh token carries its grant's scopes: the whole grant goes
                revoked += await tokens.revoke_family(token.family_id, now=now)
        details = {"withdrawn": withdrawn.as_list(), "revoked_tokens": revoked, "ended_codes": ended_codes}
        if consent is None:
            if revoked:
                await _tell_tokens_revoked(
                    runtime, session, user_id, client_id, withdrawn, actor=actor, origin=origin, now=now,
                    details={"reason": "scopes_withdrawn", **details},
                )  # fmt: skip
            return left
        consent.scopes = left
        await consent_changed(
            session,
            consent,
            "narrowed",
            actor=actor,
            scopes_before=before,
            origin=origin,
            now=now,
            details=details,
        )
        client = await runtime.clients.get(client_id)
        if client is not None:
            await enqueue(
                runtime, session, client, "consent.updated", user_id=user_id, scopes=consent.scopes, now=now
            )
            if revoked:
                await enqueue(
                    runtime, session, client, "tokens.revoked", user_id=user_id, scopes=withdrawn, now=now
                )
        return consent.scopes
