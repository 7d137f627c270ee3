"""``end_session_endpoint`` (OpenID Connect RP-Initiated Logout 1.0, SPEC §9)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from consentry.errors import ExpiredFormError, InvalidRequestError
from consentry.http.deps import NowDep, RuntimeDep, SignedInOptional, form_values
from consentry.http.openapi import HTML, form_body, query_parameters
from consentry.http.pages import (
    allow_form_redirect_to,
    csrf_token,
    csrf_valid,
    error_page,
    page_redirect,
    render,
)
from consentry.http.schemas import answers
from consentry.runtime import Runtime
from consentry.services.logout import LogoutPlan, LogoutRequest, plan_logout
from consentry.services.sessions import SESSION_COOKIE, SignedIn, end_session

router = APIRouter(tags=["sign-in"])

PARAMETERS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")


PAGES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The confirmation, or the signed-out page", "content": HTML},
    **answers(302),
    400: {"description": "A request that does not check out (nothing is ended)", "content": HTML},
    403: {"description": "An expired confirmation form", "content": HTML},
}


@router.get("/oauth2/logout", responses=PAGES, openapi_extra={"parameters": query_parameters(*PARAMETERS)})
async def logout(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep) -> Response:
    """A valid ``id_token_hint`` for the session in use signs out at once; otherwise the person confirms.
    Either way the browser then goes to the registered ``post_logout_redirect_uri`` (with ``state``)."""
    return await _logout(request, runtime, signed_in, now)


@router.post(
    "/oauth2/logout",
    responses=PAGES,
    openapi_extra={"requestBody": form_body(*PARAMETERS, "confirm", "csrf_token")},
)
async def logout_form(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    """The same request as a form: the page's confirmation, or an app's POST."""
    return await _logout(request, runtime, signed_in, now)


async def _logout(request: Request, runtime: Runtime, signed_in: SignedIn | None, now: datetime) -> Response:
    values: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        try:
            values |= await form_values(request)
        except InvalidRequestError as error:  # a page answers with a page
            return error_page(request, error.error, error.message, values=error.values)
    asked = LogoutRequest(
        id_token_hint=values.get("id_token_hint") or None,
        client_id=values.get("client_id") or None,
        post_logout_redirect_uri=values.get("post_logout_redirect_uri") or None,
        state=values.get("state") or None,
    )
    try:
        plan = await plan_logout(runtime, asked, signed_in, now=now)
    except InvalidRequestError as error:
        return error_page(request, error.error, error.message, values=error.values)
    if signed_in is None:
        return _signed_out(request, plan)
    confirmed = request.method == "POST" and values.get("confirm") == "yes"
    if confirmed and not csrf_valid(runtime.csrf_key, signed_in.session_id, values.get("csrf_token")):
        raise ExpiredFormError()
    if plan.names_this_session or confirmed:
        await end_session(runtime, signed_in, now=now)
        response = _signed_out(request, plan)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    context = {
        "client": plan.client,
        "fields": {key: values[key] for key in PARAMETERS if values.get(key)},
        "csrf_token": csrf_token(runtime.csrf_key, signed_in.session_id),
    }
    page = render(request, "logout.html", context)
    if plan.redirect_to:
        allow_form_redirect_to(page, plan.redirect_to)
    return page


def _signed_out(request: Request, plan: LogoutPlan) -> Response:
    if plan.redirect_to:
        return page_redirect(plan.redirect_to)
    return render(request, "logout.html", {"signed_out": True, "client": plan.client})
