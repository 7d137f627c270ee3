"""UserInfo (OIDC Core §5.3) with Bearer tokens (RFC 6750 §2.1, §2.2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from consentry.errors import InvalidRequestError, InvalidTokenError
from consentry.http.deps import NowDep, RuntimeDep, bearer_token, form_values
from consentry.http.openapi import form_body, json_content
from consentry.http.responses import JSONResponse, error_response
from consentry.http.schemas import answers
from consentry.services.userinfo import userinfo

router = APIRouter(tags=["userinfo"])
CLAIMS = {"type": "object", "required": ["sub"], "properties": {"sub": {"type": "string"}}}
DOCUMENTED: dict[str, Any] = {
    "responses": {200: {"content": json_content(CLAIMS)}, **answers(401, 403)},
    "openapi_extra": {"security": [{"accessToken": []}, {}]},
}


async def _answer(runtime: RuntimeDep, token: str | None, now: NowDep) -> Response:
    if not token:
        # RFC 6750 §3.1: no error code in the challenge when the request carried no credentials.
        return error_response(
            401,
            InvalidTokenError.error,
            "a Bearer access token is required",
            {"WWW-Authenticate": 'Bearer realm="consentry"'},
        )
    return JSONResponse(await userinfo(runtime, token, now=now), headers={"Cache-Control": "no-store"})


@router.get("/oauth2/userinfo", **DOCUMENTED)
async def userinfo_get(request: Request, runtime: RuntimeDep, now: NowDep) -> Response:
    return await _answer(runtime, bearer_token(request), now)


@router.post(
    "/oauth2/userinfo",
    responses={**DOCUMENTED["responses"], **answers(400)},
    openapi_extra={
        **DOCUMENTED["openapi_extra"],
        "requestBody": {**form_body("access_token"), "required": False},
    },
)
async def userinfo_post(request: Request, runtime: RuntimeDep, now: NowDep) -> Response:
    header_token = bearer_token(request)
    body_token = None
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body_token = (await form_values(request)).get("access_token")
    if header_token and body_token:
        raise InvalidRequestError("send the access token once, not in the header and the body")
    return await _answer(runtime, header_token or body_token, now)
