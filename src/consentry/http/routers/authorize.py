"""The authorization endpoint and the consent screen (SPEC §2)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import Field, ValidationError
from starlette.responses import Response

from consentry.domain import authorization as az
from consentry.errors import ConsentryError, ExpiredFormError, InvalidRequestError, UnauthenticatedError
from consentry.http.deps import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    NowDep,
    OriginDep,
    RuntimeDep,
    SignedInOptional,
    documented_body,
    json_body,
    media_type,
    request_context,
    signed_in_from,
    single_query_values,
    wants_html,
)
from consentry.http.i18n import remember_ui_locales
from consentry.http.openapi import ANY_OBJECT, ERROR_REF, HTML, form_body, json_content, query_parameters
from consentry.http.pages import (
    allow_form_redirect_to,
    csrf_token,
    csrf_valid,
    error_page,
    page_redirect,
    render,
)
from consentry.http.responses import JSONResponse, error_response
from consentry.http.schemas import RequestBody, answers
from consentry.services.authorize import authorize
from consentry.services.consent_screen import ConsentSubmission, consent_screen, submit_consent
from consentry.services.sessions import SESSION_COOKIE, end_session

router = APIRouter(tags=["authorization"])
AUTHORIZATION_REQUEST = query_parameters(*az.REQUEST_PARAMETERS, "request", "request_uri")
SESSION: list[dict[str, list[str]]] = [{"session": []}, {"sessionCookie": []}, {}]
PAGE_OR_JSON = {
    "description": "Refused (a page for browsers)",
    "content": {**json_content(ERROR_REF), **HTML},
}


def _refusal(request: Request, error: ConsentryError) -> Response:
    if wants_html(request):
        return error_page(request, error.error, error.message, values=error.values)
    return error_response(400, error.error, error.description)


@router.get(
    "/oauth2/authorize",
    responses={
        200: {"description": "Not answered: see 302", "content": {}},
        **answers(302),
        400: {
            "description": "Unknown client or redirect URI",
            "content": {**json_content(ERROR_REF), **HTML},
        },
    },
    openapi_extra={"parameters": AUTHORIZATION_REQUEST, "security": SESSION},
)
async def authorize_endpoint(request: Request) -> Response:
    runtime, origin, now = request_context(request)
    signed_in = await signed_in_from(request, runtime, now=now)
    try:
        params, repeated = single_query_values(request)
        outcome = await authorize(runtime, params, signed_in, repeated=repeated, origin=origin, now=now)
    except az.UnredirectableError as error:
        return _refusal(request, error.cause)
    except InvalidRequestError as error:
        return _refusal(request, error)
    response = page_redirect(outcome.location)
    if "ui_locales" in params:  # OIDC Core §3.1.2.1: the pages that follow speak the language asked for
        remember_ui_locales(response, params["ui_locales"], secure=request.url.scheme == "https")
    return response


async def _show_consent(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep, *, as_json: bool
) -> Response:
    params, _ = single_query_values(request)
    if signed_in is None:
        if as_json:
            return error_response(401, UnauthenticatedError.error, UnauthenticatedError.default_description)
        return page_redirect(f"/login?{request.url.query}")
    try:
        screen = await consent_screen(runtime, params, signed_in, now=now)
    except (az.UnredirectableError, az.RedirectableError) as error:
        if as_json:
            return error_response(400, error.error, error.description)
        return error_page(request, error.error, error.cause.message, values=error.cause.values)
    info = screen.as_json()
    if as_json:
        return JSONResponse(info, headers={"Cache-Control": "no-store"})
    client = screen.pending.client
    context: dict[str, Any] = {
        "client": client,
        "info": info,
        # Granted before and still wanted: shown apart, not asked again (SPEC §6); grouped by API (SPEC §7).
        "already": screen.grouped(screen.decision.previously_granted),
        "asked": screen.grouped(screen.decision.new_scopes),
        "signed_in_as": screen.signed_in_as,
        "fields": screen.form_fields(),
        "csrf_token": csrf_token(runtime.csrf_key, signed_in.session_id),
        "ttl_days": client.consent_ttl_days or runtime.settings.consent_ttl_days,
    }
    response = render(request, "consent.html", context)
    allow_form_redirect_to(response, screen.pending.request.redirect_uri)
    return response


@router.get(
    "/oauth2/consent",
    responses={
        200: {"content": {**json_content(ANY_OBJECT), **HTML}},
        **answers(302, 401),
        400: PAGE_OR_JSON,
    },
    openapi_extra={"parameters": AUTHORIZATION_REQUEST, "security": SESSION},
)
async def consent_info(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    """The pending request's consent information: JSON for ``Accept: application/json``, else the page."""
    as_json = "application/json" in request.headers.get("accept", "") and not wants_html(request)
    return await _show_consent(request, runtime, signed_in, now, as_json=as_json)


@router.get(
    "/consent",
    responses={200: {"content": HTML}, **answers(302), 400: PAGE_OR_JSON},
    openapi_extra={"parameters": AUTHORIZATION_REQUEST, "security": SESSION},
)
async def consent_page(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    return await _show_consent(request, runtime, signed_in, now, as_json=False)


class ConsentDecisionBody(RequestBody):
    """SPEC §2's POST /oauth2/consent body; every value is validated again against the registered client."""

    client_id: str = Field(max_length=2048)
    redirect_uri: str = Field(max_length=2048)
    scope: str = Field(max_length=2048)
    approved: bool
    remember: bool = True
    state: str | None = Field(default=None, max_length=az.MAX_STATE)
    nonce: str | None = Field(default=None, max_length=az.MAX_NONCE)
    code_challenge: str | None = Field(default=None, max_length=128)
    code_challenge_method: str | None = Field(default=None, max_length=16)
    granted_scopes: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=64)] | None = None
    # RFC 8707 (SPEC §7): one resource, or several.
    resource: (
        Annotated[str, Field(max_length=2048)]
        | Annotated[list[Annotated[str, Field(max_length=2048)]], Field(min_length=1, max_length=10)]
        | None
    ) = None

    def submission(self) -> ConsentSubmission:
        return ConsentSubmission(
            az.pending_request(self.model_dump()), self.approved, self.remember, self.granted_scopes
        )


@router.post(
    "/oauth2/consent",
    responses={
        200: {
            "content": json_content({"type": "object", "properties": {"redirect_url": {"type": "string"}}})
        },
        **answers(302, 403),
        400: PAGE_OR_JSON,
        401: PAGE_OR_JSON,
    },
    openapi_extra={
        "security": SESSION,
        "requestBody": {
            "required": True,
            "content": {
                **documented_body(ConsentDecisionBody)["requestBody"]["content"],
                **form_body("client_id", "redirect_uri", "scope", "state", "decision", "csrf_token")[
                    "content"
                ],
            },
        },
    },
)
async def consent_decision(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, origin: OriginDep, now: NowDep
) -> Response:
    content_type = media_type(request)
    if content_type == JSON_CONTENT_TYPE:
        if signed_in is None:
            raise UnauthenticatedError()
        body = await json_body(request, ConsentDecisionBody)
        try:
            location = await submit_consent(runtime, body.submission(), signed_in, origin=origin, now=now)
        except az.UnredirectableError as error:
            return error_response(400, error.error, error.description)
        return JSONResponse({"redirect_url": location}, headers={"Cache-Control": "no-store"})

    form = await _consent_form(request)
    if signed_in is None:
        return error_page(
            request, "unauthenticated", "your session has ended; sign in again", status_code=401
        )
    if not csrf_valid(runtime.csrf_key, signed_in.session_id, form.get("csrf_token")):
        raise ExpiredFormError()
    if form.get("decision") == "switch_account":  # "Not you?": sign out, and sign in again for this request
        await end_session(runtime, signed_in, now=now)
        response = page_redirect(f"/login?{urlencode(az.pending_request(form))}")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    try:
        body = ConsentDecisionBody.model_validate(
            {
                **{k: v for k, v in form.items() if k not in ("granted_scopes", "remember", "decision")},
                "approved": form.get("decision") == "allow",
                "remember": form.get("remember") == "on",
                "granted_scopes": form.getlist("granted_scopes") if form.get("scope_choice") else None,
            }
        )
    except ValidationError:
        return error_page(request, "invalid_request", "the consent form was incomplete")
    try:
        location = await submit_consent(runtime, body.submission(), signed_in, origin=origin, now=now)
    except az.UnredirectableError as error:
        return error_page(request, error.error, error.cause.message, values=error.cause.values)
    return page_redirect(location)  # SPEC §2: 302 for the form


class _Form(dict[str, str]):
    """A form with single values, except the multi-valued ``granted_scopes``."""

    def __init__(self, values: dict[str, str], multi: dict[str, list[str]]) -> None:
        super().__init__(values)
        self._multi = multi

    def getlist(self, name: str) -> list[str]:
        return self._multi.get(name, [])


async def _consent_form(request: Request) -> _Form:
    content_type = media_type(request)
    if content_type != FORM_CONTENT_TYPE:
        raise InvalidRequestError("send JSON (application/json) or the consent form")
    form = await request.form()
    values: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise InvalidRequestError("file uploads are not accepted here")
        if name == "granted_scopes":
            multi.setdefault(name, []).append(value)
        elif name in values:
            raise InvalidRequestError(f"repeated parameter: {name}")
        else:
            values[name] = value
    return _Form(values, multi)
