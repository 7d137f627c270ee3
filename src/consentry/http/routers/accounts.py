"""The person's own account (SPEC §4)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from starlette.responses import Response

from consentry.http.deps import NowDep, OriginDep, RuntimeDep, SignedInDep
from consentry.http.responses import JSONResponse
from consentry.services.cascades import delete_account
from consentry.services.sessions import SESSION_COOKIE

router = APIRouter(prefix="/api/v1", tags=["accounts"])


@router.delete("/users/me")
async def delete_me(runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep) -> Response:
    """Soft delete: every app loses access now; the account can be restored until ``purge_after``."""
    grace = timedelta(days=runtime.settings.account_deletion_grace_days)
    purge_after = await delete_account(runtime, signed_in.user_id, grace=grace, origin=origin, now=now)
    response = JSONResponse(
        {"status": "deleted", "deleted_at": now.isoformat(), "purge_after": purge_after.isoformat()}
    )
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
