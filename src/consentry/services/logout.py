"""RP-Initiated Logout 1.0 (SPEC §9): an app sends the person to ``end_session_endpoint`` to sign out.

The request is checked before anything ends: an ``id_token_hint`` must be one of our ID tokens (by its
signature; it may have expired), its audience the ``client_id`` if one is given, and a
``post_logout_redirect_uri`` must be registered by that client, exactly. A hint naming the session in use
ends it at once; anything less asks the person to confirm, so a link on another site cannot sign anyone out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

from joserfc.errors import JoseError

from consentry.domain.clients import RegisteredClient
from consentry.errors import InvalidRequestError
from consentry.runtime import Runtime
from consentry.services.sessions import SignedIn


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    id_token_hint: str | None = None
    client_id: str | None = None
    post_logout_redirect_uri: str | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True)
class LogoutPlan:
    """What a valid logout request leads to."""

    client: RegisteredClient | None
    redirect_to: str | None  # the post-logout redirect, with ``state``; None: our own "signed out" page
    names_this_session: bool  # the hint is for the session in use: end it without asking


async def plan_logout(
    runtime: Runtime, request: LogoutRequest, signed_in: SignedIn | None, *, now: datetime
) -> LogoutPlan:
    """Check the request; :class:`InvalidRequestError` if it is not one to follow (nothing is ended then)."""
    await runtime.keys.ensure_loaded(now=now)
    hint = _hint_claims(runtime, request.id_token_hint) if request.id_token_hint else None
    audience = hint.get("aud") if hint else None
    if isinstance(audience, list):
        audience = audience[0] if len(audience) == 1 else None
    if request.client_id and hint is not None and audience != request.client_id:
        raise InvalidRequestError("id_token_hint was not issued to this client_id")
    client_id = request.client_id or (audience if isinstance(audience, str) else None)
    client = await runtime.clients.get(client_id) if client_id else None
    if client_id and client is None:
        raise InvalidRequestError("unknown client_id")
    redirect_to = None
    if request.post_logout_redirect_uri:
        if client is None:
            raise InvalidRequestError("post_logout_redirect_uri needs a client_id or an id_token_hint")
        if request.post_logout_redirect_uri not in client.post_logout_redirect_uris:
            raise InvalidRequestError("post_logout_redirect_uri is not registered for this client")
        redirect_to = _with_state(request.post_logout_redirect_uri, request.state)
    names_this_session = (
        signed_in is not None
        and hint is not None
        and (
            hint.get("sid") == str(signed_in.session_id)
            if "sid" in hint
            else await _names_person(runtime, client, hint.get("sub"), signed_in, now=now)
        )
    )
    return LogoutPlan(client, redirect_to, names_this_session)


async def _names_person(
    runtime: Runtime, client: RegisteredClient | None, sub: object, signed_in: SignedIn, *, now: datetime
) -> bool:
    """A hint from before ID tokens carried ``sid``: does its ``sub`` (while a sector migrates, the new one or
    the previous) name the person signed in?"""
    if client is None or not isinstance(sub, str):
        return False
    if client.subject_type != "pairwise":
        return sub == str(signed_in.user_id)
    async with runtime.database.read_only() as session:
        return await runtime.subjects.resolve(session, client.sector, sub, now=now) == signed_in.user_id


def _hint_claims(runtime: Runtime, token: str) -> dict[str, object]:
    """One of our ID tokens, by signature and issuer; expired ones are accepted (RP-Initiated Logout §2)."""
    try:
        claims = runtime.keys.verify(token)
    except (JoseError, ValueError):
        raise InvalidRequestError("id_token_hint is not an ID token this provider issued") from None
    if claims.get("iss") != runtime.issuer:
        raise InvalidRequestError("id_token_hint is not an ID token this provider issued")
    return claims


def _with_state(uri: str, state: str | None) -> str:
    if not state:
        return uri
    parts = urlsplit(uri)
    query = f"{parts.query}&{urlencode({'state': state})}" if parts.query else urlencode({"state": state})
    return urlunsplit(parts._replace(query=query))
