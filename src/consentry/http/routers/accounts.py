"""The person's own account (SPEC §4)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import Response

from consentry.domain.profile import PROFILE_LIMITS
from consentry.http import answer_bodies as reply
from consentry.http.deps import NowDep, OriginDep, RuntimeDep, SignedInDep, require_script_or_bearer
from consentry.http.responses import JSONResponse
from consentry.http.routers.upstreams import BROWSER_COOKIE, set_browser_cookie
from consentry.http.schemas import RequestBody, answers
from consentry.services import accounts, sessions, upstream_signin
from consentry.services.cascades import delete_account
from consentry.services.linked_accounts import list_linked_accounts, unlink
from consentry.services.sessions import SESSION_COOKIE

router = APIRouter(prefix="/api/v1/users/me", tags=["account"], responses=answers(401))


class ProfileChanges(RequestBody):
    name: str | None = Field(default=None, max_length=PROFILE_LIMITS["name"])
    given_name: str | None = Field(default=None, max_length=PROFILE_LIMITS["given_name"])
    family_name: str | None = Field(default=None, max_length=PROFILE_LIMITS["family_name"])
    preferred_username: str | None = Field(default=None, max_length=PROFILE_LIMITS["preferred_username"])
    picture: str | None = Field(
        default=None, max_length=PROFILE_LIMITS["picture"], description="An http or https address."
    )
    locale: str | None = Field(
        default=None, max_length=PROFILE_LIMITS["locale"], description="A BCP 47 language tag, e.g. id-ID."
    )
    zoneinfo: str | None = Field(
        default=None,
        max_length=PROFILE_LIMITS["zoneinfo"],
        description="An IANA time zone, e.g. Asia/Jakarta.",
    )
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    current_password: str | None = Field(default=None, max_length=1024)
    new_password: str | None = Field(default=None, max_length=1024)


class ConfirmIdentifier(RequestBody):
    flow_token: str = Field(max_length=1024)
    code: str = Field(max_length=16)


@router.get("", response_model=reply.Account)
async def me(runtime: RuntimeDep, signed_in: SignedInDep) -> JSONResponse:
    return JSONResponse(await accounts.read_me(runtime, signed_in), headers={"Cache-Control": "no-store"})


@router.patch("", responses=answers(400, 409, 429), response_model=reply.AccountChanged)
async def update_me(
    body: ProfileChanges, runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    """Profile fields at once; a new email/phone after its code (``verification``); a new password with the
    current one (the last five are refused; every other session ends)."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    result = await accounts.update_me(runtime, signed_in, changes, origin=origin, now=now)
    status = 202 if "verification" in result else 200
    return JSONResponse(result, status_code=status, headers={"Cache-Control": "no-store"})


@router.post("/verify-identifier", responses=answers(400, 409), response_model=reply.AccountChanged)
async def confirm_identifier(
    body: ConfirmIdentifier, runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    user = await accounts.confirm_change(
        runtime, signed_in, body.flow_token, body.code, origin=origin, now=now
    )
    return JSONResponse({"user": user}, headers={"Cache-Control": "no-store"})


@router.delete("", responses=answers(403), response_model=reply.AccountDeleted)
async def delete_me(runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep) -> Response:
    """Soft delete: every app loses access now; signing in before ``purge_after`` restores the account."""
    grace = timedelta(days=runtime.settings.account_deletion_grace_days)
    purge_after = await delete_account(runtime, signed_in.user_id, grace=grace, origin=origin, now=now)
    response = JSONResponse(
        {"status": "deleted", "deleted_at": now.isoformat(), "purge_after": purge_after.isoformat()}
    )
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/sign-out-everywhere", status_code=204)
async def sign_out_everywhere(
    request: Request, runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep
) -> Response:
    """Every session ends, here and elsewhere, and every app's codes and tokens die (``offline_access``
    included); consents stay, so apps may ask again without a new consent screen."""
    require_script_or_bearer(request)
    await sessions.sign_out_everywhere(runtime, signed_in.user_id, origin=origin, now=now)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/linked-accounts", response_model=list[reply.LinkedAccount])
async def linked_accounts(runtime: RuntimeDep, signed_in: SignedInDep) -> JSONResponse:
    """The upstream accounts linked to this one (SPEC §10)."""
    listed = await list_linked_accounts(runtime, signed_in.user_id)
    return JSONResponse(listed, headers={"Cache-Control": "no-store"})


@router.post("/linked-accounts/{provider}", responses=answers(400, 404), response_model=reply.RedirectTo)
async def link_account(
    request: Request, provider: str, runtime: RuntimeDep, signed_in: SignedInDep, now: NowDep
) -> JSONResponse:
    """Where to send the person to link their account at ``provider``; the provider sends them back to
    ``/auth/upstream/{provider}/callback`` in the same browser (the cookie set here ties the trip to it)."""
    require_script_or_bearer(request)
    departure = await upstream_signin.start(
        runtime,
        provider,
        context=None,
        browser_token=request.cookies.get(BROWSER_COOKIE),
        link_user=signed_in.user_id,
        now=now,
    )
    response = JSONResponse({"redirect_url": departure.redirect_url}, headers={"Cache-Control": "no-store"})
    set_browser_cookie(response, runtime, departure.browser_token)
    return response


@router.delete("/linked-accounts/{provider}", status_code=204, responses=answers(404, 409))
async def unlink_account(
    provider: str, runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep
) -> Response:
    """Unlink, dropping the provider's tokens; 409 when it is the only way left to sign in."""
    await unlink(runtime, signed_in.user_id, provider, origin=origin, now=now)
    return Response(status_code=204)
