"""The person's consents (SPEC §4)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from consentry.http.deps import NowDep, OriginDep, RuntimeDep, SignedInDep
from consentry.http.responses import JSONResponse
from consentry.services.consents import active_consents, revoke_consent

router = APIRouter(prefix="/api/v1/oauth2/consents", tags=["consents"])


@router.get("")
async def list_consents(runtime: RuntimeDep, signed_in: SignedInDep, now: NowDep) -> JSONResponse:
    consents = await active_consents(runtime, signed_in.user_id, now=now)
    return JSONResponse(
        {
            "consents": [
                {
                    "client_id": c.client_id,
                    "client_name": c.client_name,
                    "logo_uri": c.logo_uri,
                    "scopes": c.scopes.as_list(),
                    "granted_at": c.granted_at.isoformat(),
                    "last_used": c.last_used.isoformat() if c.last_used else None,
                    "expires_at": c.expires_at.isoformat(),
                }
                for c in consents
            ]
        },
        headers={"Cache-Control": "no-store"},
    )


@router.delete("/{client_id}", status_code=204)
async def delete_consent(
    client_id: str, runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep
) -> Response:
    """Revoke the consent and, at once, every access and refresh token of this person for the client."""
    await revoke_consent(runtime, signed_in.user_id, client_id, origin=origin, now=now)
    return Response(status_code=204)
