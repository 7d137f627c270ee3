"""Identifier-first sign-in and the session API (SPEC §3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import Response

from consentry.errors import InvalidRequestError, UnauthenticatedError
from consentry.http import answer_bodies as reply
from consentry.http.deps import (
    AdminDep,
    NowDep,
    OriginDep,
    RuntimeDep,
    SignedInOptional,
    bearer_token,
    documented_body,
    json_body,
    request_context,
    require_script_or_bearer,
)
from consentry.http.responses import JSONResponse
from consentry.http.schemas import RequestBody, answers
from consentry.runtime import Runtime
from consentry.services import registration, signin
from consentry.services.sessions import SESSION_COOKIE, end_session

router = APIRouter(prefix="/api/v1/auth", tags=["sign-in"])


class OAuth2Context(RequestBody):
    client_id: str = Field(max_length=2048)
    redirect_uri: str = Field(max_length=2048)
    scope: str = Field(max_length=2048)
    state: str | None = Field(default=None, max_length=2048)
    code_challenge: str | None = Field(default=None, max_length=128)
    code_challenge_method: str | None = Field(default=None, max_length=16)
    nonce: str | None = Field(default=None, max_length=512)


class SubmitIdentifierBody(RequestBody):
    identifier: str = Field(max_length=320)
    oauth2_context: OAuth2Context | None = None
    reset: bool = False  # "forgot my password": verify the identifier, then set a new password


class VerifyIdentifierBody(RequestBody):
    code: str = Field(max_length=16)


class SetPasswordBody(RequestBody):
    password: str = Field(max_length=1024)
    consent: bool = False
    oauth2_context: OAuth2Context | None = None


class LoginPasswordBody(RequestBody):
    password: str = Field(max_length=1024)
    oauth2_context: OAuth2Context | None = None


def _context(body: OAuth2Context | None) -> dict[str, Any] | None:
    return body.model_dump() if body is not None else None


def set_session_cookie(response: Response, runtime: Runtime, token: str, expires_at: datetime) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=runtime.settings.session_ttl,
        expires=expires_at,
        path="/",
        httponly=True,
        secure=not runtime.settings.is_development,
        samesite="lax",
    )


def completion_response(runtime: Runtime, completion: signin.Completion) -> JSONResponse:
    body: dict[str, Any] = {
        "user_id": str(completion.user_id),
        "session_token": completion.session.token,
        "expires_at": completion.session.expires_at.isoformat(),
    }
    if completion.redirect_url is not None:
        body["redirect_url"] = completion.redirect_url
    if completion.consent_info is not None:
        body["requires_consent"] = True
        body["consent_info"] = completion.consent_info
    response = JSONResponse(body, headers={"Cache-Control": "no-store"})
    set_session_cookie(response, runtime, completion.session.token, completion.session.expires_at)
    return response


def step_response(result: signin.StepResult) -> JSONResponse:
    return JSONResponse(
        {"flow_token": result.flow_token, "next": result.next, "identifier_type": result.identifier_type},
        headers={"Cache-Control": "no-store"},
    )


@router.post("/submit-identifier", responses=answers(400, 429), response_model=reply.SignInStep)
async def submit_identifier(
    body: SubmitIdentifierBody, runtime: RuntimeDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    result = await signin.submit_identifier(
        runtime, body.identifier, _context(body.oauth2_context), reset=body.reset, origin=origin, now=now
    )
    return step_response(result)


@router.post("/verify-identifier", responses=answers(400, 401, 429), response_model=reply.SignInStep)
async def verify_identifier(
    request: Request, body: VerifyIdentifierBody, runtime: RuntimeDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    result = await signin.verify_identifier(runtime, bearer_token(request), body.code, origin=origin, now=now)
    return step_response(result)


@router.post("/resend-code", responses=answers(401, 429), response_model=reply.SignInStep)
async def resend_code(request: Request, runtime: RuntimeDep, origin: OriginDep, now: NowDep) -> JSONResponse:
    return step_response(await signin.resend_code(runtime, bearer_token(request), origin=origin, now=now))


@router.post("/set-password", responses=answers(400, 401, 409), response_model=reply.SignedIn)
async def set_password(
    request: Request, body: SetPasswordBody, runtime: RuntimeDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    completion = await signin.set_password(
        runtime,
        bearer_token(request),
        body.password,
        accepted_terms=body.consent,
        context=_context(body.oauth2_context),
        origin=origin,
        now=now,
    )
    return completion_response(runtime, completion)


@router.post(
    "/login-password",
    openapi_extra=documented_body(LoginPasswordBody),
    responses=answers(400, 401, 429),
    response_model=reply.SignedIn,
)
async def login_password(request: Request) -> JSONResponse:
    # On the hot path (http/hot_path.py): a sign-in's event-loop work shares its core with argon2id, and
    # FastAPI's layers were ~40 % of it (py-spy); the password's verification is the cost that should remain.
    runtime, origin, now = request_context(request)
    body = await json_body(request, LoginPasswordBody)
    completion = await signin.login_password(
        runtime,
        bearer_token(request),
        body.password,
        context=_context(body.oauth2_context),
        origin=origin,
        now=now,
    )
    return completion_response(runtime, completion)


@router.post("/logout", status_code=204, responses=answers(401))
async def logout(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep) -> Response:
    """Ends the session. With cookie authentication only a JSON request is accepted (no cross-site forms)."""
    if signed_in is None:
        raise UnauthenticatedError()
    require_script_or_bearer(request)
    await end_session(runtime, signed_in, now=now)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


class Registration(RequestBody):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    password: str = Field(max_length=1024)
    consent: bool = False


class BulkRegistration(RequestBody):
    users: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


@router.post(
    "/register-sync", status_code=201, responses=answers(400, 409, 429), response_model=reply.Registered
)
async def register_sync(
    body: Registration, runtime: RuntimeDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    """Create the account now: 201, or 409 when the identifier is taken."""
    created = await registration.register_sync(runtime, body.model_dump(), origin=origin, now=now)
    return JSONResponse({k: v for k, v in created.items() if v is not None}, status_code=201)


@router.post(
    "/register-async", status_code=202, responses=answers(400, 429), response_model=reply.RegistrationQueued
)
async def register_async(
    body: Registration, runtime: RuntimeDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    """Queue the account; follow it at register-status/{request_id}."""
    ids, errors = await registration.register_async(runtime, [body.model_dump()], origin=origin, now=now)
    if errors:
        first = errors[0]["error_description"]
        raise InvalidRequestError(first)
    return JSONResponse(
        {"message": "registration queued", "request_id": str(ids[0]), "status": "processing"}, status_code=202
    )


@router.post(
    "/register-async-bulk",
    status_code=202,
    responses=answers(400, 401, 403),
    response_model=reply.RegistrationsQueued,
)
async def register_async_bulk(
    body: BulkRegistration, runtime: RuntimeDep, _admin: AdminDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    """Admins only: up to 10,000 at once; invalid entries are listed (by index), the valid ones queued."""
    ids, errors = await registration.register_async(runtime, body.users, origin=origin, bulk=True, now=now)
    return JSONResponse(
        {
            "message": f"{len(ids)} registrations queued",
            "request_ids": [str(i) for i in ids],
            "count": len(ids),
            "status": "processing",
            "errors": errors,
        },
        status_code=202,
    )


@router.get("/register-status/{request_id}", responses=answers(404), response_model=reply.RegistrationStatus)
async def register_status(request_id: str, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(await registration.registration_status(runtime, request_id))
