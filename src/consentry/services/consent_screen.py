"""The consent screen: what to show (GET /oauth2/consent) and the person's decision (POST /oauth2/consent).

Nothing the browser sends back is trusted: the pending request is validated again in full from the values
posted, exactly as if it had arrived at /oauth2/authorize.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consentry.domain import authorization as az
from consentry.domain.consent import ConsentDecision, InvalidGrantedScopes, granted_from_choice
from consentry.domain.scopes import OPENID, InvalidScopeToken, Scopes
from consentry.errors import AccessDeniedError, InvalidRequestError
from consentry.runtime import Runtime
from consentry.services.authorize import (
    ValidatedRequest,
    check_client,
    consent_decision,
    error_location,
    issue_code,
    parse,
    validate,
)
from consentry.services.consent_grants import consent_ttl, record_consent
from consentry.services.sessions import SignedIn
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.consents import ConsentRepository
from consentry.storage.users import UserRepository


@dataclass(frozen=True, slots=True)
class ConsentScreen:
    pending: ValidatedRequest
    decision: ConsentDecision
    descriptions: dict[str, str]
    signed_in_as: str = ""  # the person's email or phone, so that someone else can see it is not them
    resource_names: Mapping[str, str] = field(default_factory=dict)  # scope → the name of its API

    def grouped(self, scopes: Iterable[str]) -> list[tuple[str | None, list[str]]]:
        """Scopes by the API they are for (SPEC §7), the account's own first; sign-in first within it."""
        groups: dict[str | None, list[str]] = {}
        for scope in sorted(scopes, key=lambda name: (name != OPENID, name)):
            groups.setdefault(self.resource_names.get(scope), []).append(scope)
        return sorted(groups.items(), key=lambda group: (group[0] is not None, group[0] or ""))

    def as_json(self) -> dict[str, Any]:
        """SPEC §2's JSON shape of the pending request's consent information."""
        client, request = self.pending.client, self.pending.request
        return {
            "client": {
                "id": client.id,
                "name": client.name,
                "logo_uri": client.logo_uri,
                "client_uri": client.client_uri,
                "registered_itself_on": client.created_at.isoformat()
                if client.registered_itself and client.created_at
                else None,
                "verified_host": client.verified_host,
            },
            "scopes": request.scopes.as_list(),
            "new_scopes": self.decision.new_scopes.as_list(),
            "previously_granted_scopes": self.decision.previously_granted.as_list(),
            "scope_descriptions": {name: self.descriptions.get(name, name) for name in request.scopes},
            "redirect_uri": request.redirect_uri,
            "state": request.state,
            "reasons": list(self.decision.reasons),
            "policy_uri": client.policy_uri,
            "tos_uri": client.tos_uri,
            "policy_version": client.policy_version,
            "resources": list(request.resources),
        }

    def form_fields(self) -> dict[str, str]:
        """The pending request as hidden form fields, re-validated when the form comes back."""
        return self.pending.request.as_parameters()


async def consent_screen(
    runtime: Runtime, params: Mapping[str, str], signed_in: SignedIn, *, now: datetime
) -> ConsentScreen:
    """Raises :class:`az.UnredirectableError` / :class:`az.RedirectableError` for an invalid request."""
    pending = await validate(runtime, params, signed_in, now=now)
    async with runtime.database.read_only() as session:
        decision = await consent_decision(
            session, pending.client, pending.request, signed_in.user_id, now=now
        )
        person = await UserRepository(session).get_user(signed_in.user_id)
    catalogue = await runtime.clients.catalogue()
    descriptions = {name: scope.description for name, scope in catalogue.scopes.items()}
    resource_names = {
        name: owner.name
        for name, scope in catalogue.scopes.items()
        if scope.resource is not None and (owner := catalogue.resources.get(scope.resource)) is not None
    }
    signed_in_as = (person and (person.email or person.phone)) or ""
    return ConsentScreen(pending, decision, descriptions, signed_in_as, resource_names)


@dataclass(frozen=True, slots=True)
class ConsentSubmission:
    """The person's decision on a pending request (``request``: its parameters, as posted back)."""

    request: dict[str, str]
    approved: bool
    remember: bool = True
    granted_scopes: list[str] | None = None


async def submit_consent(
    runtime: Runtime,
    submission: ConsentSubmission,
    signed_in: SignedIn,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> str:
    """Apply the person's decision; returns where to send the browser (the client's redirect URI)."""
    params = submission.request
    client_, redirect_uri = await check_client(runtime, params, now=now)
    try:
        request = await parse(runtime, client_, params, signed_in)
    except az.RedirectableError as error:
        return error_location(runtime, redirect_uri, error.cause, params.get("state"))

    if not submission.approved:
        async with runtime.database.unit_of_work() as session:
            await AuditRepository(session).record(
                "authorization_denied",
                now=now,
                origin=origin,
                user_id=signed_in.user_id,
                client_id=client_.id,
                scopes=request.scopes,
            )
        denied = AccessDeniedError("the person declined to authorize this application")
        return error_location(runtime, request.redirect_uri, denied, request.state)

    try:
        ticked = None if submission.granted_scopes is None else Scopes(submission.granted_scopes)
        granted = granted_from_choice(request.scopes, ticked)
    except (InvalidGrantedScopes, InvalidScopeToken) as exc:
        raise InvalidRequestError(str(exc)) from exc
    if not granted:
        raise InvalidRequestError("no scope left ticked: deny the request instead")

    async with runtime.database.unit_of_work() as session:
        consent_id = None
        if submission.remember:
            consent_id = await record_consent(
                runtime,
                session,
                await ConsentRepository(session).get_active_for_update(signed_in.user_id, client_.id),
                user_id=signed_in.user_id,
                client=client_,
                requested=request.scopes,
                granted=granted,
                ttl=consent_ttl(client_, runtime.settings.consent_ttl_days),
                now=now,
                origin=origin,
            )
        return await issue_code(
            runtime, session, client_, request, signed_in, granted, consent_id, origin=origin, now=now
        )
