"""The person's consents (SPEC §4)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from starlette.responses import Response

from consentry.domain.scopes import InvalidScopeToken, Scopes
from consentry.errors import InvalidRequestError, InvalidScopeError
from consentry.http import answer_bodies as reply
from consentry.http.deps import NowDep, OriginDep, RuntimeDep, SignedInDep
from consentry.http.responses import JSONResponse
from consentry.http.schemas import RequestBody, answers
from consentry.services.connected_apps import connected_apps
from consentry.services.consent_endings import narrow_consent, revoke_consent
from consentry.services.declined_scopes import ask_again
from consentry.services.export import export_consents

router = APIRouter(prefix="/api/v1/oauth2/consents", tags=["consents"], responses=answers(401))


@router.get("", response_model=reply.ConnectedApps)
async def list_consents(runtime: RuntimeDep, signed_in: SignedInDep, now: NowDep) -> JSONResponse:
    consents = await connected_apps(runtime, signed_in.user_id, now=now)
    return JSONResponse(
        {"consents": [consent.as_json() for consent in consents]}, headers={"Cache-Control": "no-store"}
    )


@router.get("/export", response_model=reply.ConsentExport)
async def export(runtime: RuntimeDep, signed_in: SignedInDep, now: NowDep) -> JSONResponse:
    """Every consent record (active, revoked, expired), with history, signed receipts and audit events."""
    body = await export_consents(runtime, signed_in.user_id, now=now)
    filename = f"consentry-consents-{now.date().isoformat()}.json"
    return JSONResponse(
        body,
        headers={"Cache-Control": "no-store", "Content-Disposition": f'attachment; filename="{filename}"'},
    )


class ChangeBody(RequestBody):
    revoke_scopes: list[str] = Field(default_factory=list, max_length=64)
    ask_again_scopes: list[str] = Field(default_factory=list, max_length=64)


def _scopes(names: list[str]) -> Scopes:
    try:
        return Scopes(names)
    except InvalidScopeToken as exc:
        raise InvalidScopeError(str(exc)) from None


@router.patch("/{client_id:path}", responses=answers(400, 404), response_model=reply.ConsentChanged)
async def change(
    client_id: str,
    body: ChangeBody,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    origin: OriginDep,
    now: NowDep,
) -> JSONResponse:
    """Withdraw some scopes (``revoke_scopes``: tokens carrying one are revoked at once), or let the app ask
    again for scopes the person declined (``ask_again_scopes``)."""
    withdraw, ask = _scopes(body.revoke_scopes), _scopes(body.ask_again_scopes)
    if bool(withdraw) == bool(ask):
        raise InvalidRequestError("send either revoke_scopes or ask_again_scopes, with at least one scope")
    if ask:
        declined = await ask_again(runtime, signed_in.user_id, client_id, ask, origin=origin, now=now)
        return JSONResponse({"client_id": client_id, "declined_scopes": declined.as_list()})
    left = await narrow_consent(runtime, signed_in.user_id, client_id, withdraw, origin=origin, now=now)
    return JSONResponse({"client_id": client_id, "scopes": left.as_list(), "revoked": not left})


@router.delete("/{client_id:path}", status_code=204, responses=answers(404))
async def delete_consent(
    client_id: str, runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep
) -> Response:
    """Revoke the consent and, at once, every access and refresh token of this person for the client."""
    await revoke_consent(runtime, signed_in.user_id, client_id, origin=origin, now=now)
    return Response(status_code=204)
