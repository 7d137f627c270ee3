"""Signing in with an upstream identity provider (SPEC §10): the providers offered, the trip there and back,
and the terms page for someone new.

The trip is tied to the browser that began it by a cookie (``consentry_upstream``, only sent to these paths):
a callback URL carried to another browser, the login CSRF of RFC 6749 §10.12, signs nobody in there. A browser
is answered with pages and redirects; a program asking for JSON gets §3's completion body.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from consentry.errors import InvalidRequestError, UnauthenticatedError
from consentry.http import answer_bodies as reply
from consentry.http.deps import NowDep, OriginDep, RuntimeDep, SignedInOptional, form_values, wants_html
from consentry.http.pages import csrf_valid, page_redirect, render
from consentry.http.responses import JSONResponse
from consentry.http.routers.auth import completion_response
from consentry.http.routers.pages import finish_signin
from consentry.http.schemas import answers
from consentry.runtime import Runtime
from consentry.services import upstream_signin
from consentry.services.signin import Completion
from consentry.services.upstream_providers import enabled_upstreams

router = APIRouter(tags=["upstream sign-in"])

BROWSER_COOKIE = "consentry_upstream"
BROWSER_COOKIE_PATH = "/auth/upstream"


def set_browser_cookie(response: Response, runtime: Runtime, token: str) -> None:
    response.set_cookie(
        BROWSER_COOKIE,
        token,
        max_age=int(upstream_signin.TRIP_TTL.total_seconds()),
        path=BROWSER_COOKIE_PATH,
        httponly=True,
        secure=not runtime.settings.is_development,
        samesite="lax",  # sent on the provider's top-level redirect back to us
    )


@router.get("/api/v1/auth/upstreams", response_model=list[reply.Upstream])
async def upstreams(runtime: RuntimeDep) -> JSONResponse:
    """The enabled providers, for "Continue with …" buttons."""
    return JSONResponse(await enabled_upstreams(runtime))


def _context(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        context = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequestError("oauth2_context must be a JSON object") from None
    if not isinstance(context, dict) or not all(isinstance(v, str | None) for v in context.values()):
        raise InvalidRequestError("oauth2_context must be a JSON object of strings")
    return context


@router.get("/auth/upstream/{name}/start", responses=answers(302, 400, 401, 404))
async def start(
    request: Request,
    name: str,
    runtime: RuntimeDep,
    signed_in: SignedInOptional,
    now: NowDep,
    oauth2_context: Annotated[str | None, Query(max_length=8192)] = None,
    link: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """302 to the provider. ``link`` (the account page's form token) links the provider's account to the
    signed-in person instead of signing in."""
    link_user = None
    if link is not None:
        if signed_in is None or not csrf_valid(runtime.csrf_key, signed_in.session_id, link):
            raise UnauthenticatedError("sign in to link an account, then try again from your account page")
        link_user = signed_in.user_id
    departure = await upstream_signin.start(
        runtime,
        name,
        context=_context(oauth2_context),
        browser_token=request.cookies.get(BROWSER_COOKIE),
        link_user=link_user,
        now=now,
    )
    response = page_redirect(departure.redirect_url)
    set_browser_cookie(response, runtime, departure.browser_token)
    return response


@router.get("/auth/upstream/{name}/callback", responses=answers(302, 400, 404, 409))
async def callback(
    request: Request, name: str, runtime: RuntimeDep, origin: OriginDep, now: NowDep
) -> Response:
    """The provider's answer: signed in (302 on, or §3's JSON), the terms page for someone new, a page saying
    an account has this email, or back to the account page once linked."""
    arrival = await upstream_signin.callback(
        runtime,
        name,
        dict(request.query_params),
        browser_token=request.cookies.get(BROWSER_COOKIE),
        origin=origin,
        now=now,
    )
    browser = wants_html(request)
    if isinstance(arrival, Completion):
        return finish_signin(runtime, arrival) if browser else completion_response(runtime, arrival)
    if isinstance(arrival, upstream_signin.Linked):
        if browser:
            return page_redirect(f"/account?linked={arrival.provider}")
        return JSONResponse({"linked": arrival.provider}, headers={"Cache-Control": "no-store"})
    if isinstance(arrival, upstream_signin.EmailTaken):
        description = (
            f"An account with {arrival.email} exists. Sign in to it, then link {arrival.display_name}"
            " from your account page."
        )
        if browser:
            return render(
                request,
                "upstream.html",
                {"step": "email_taken", "email": arrival.email, "display_name": arrival.display_name},
                status_code=409,
            )
        return JSONResponse({"error": "account_exists", "error_description": description}, status_code=409)
    values = {"step": "terms", "ticket": arrival.ticket, "provider": arrival.provider,
              "display_name": arrival.display_name, "email": arrival.email}  # fmt: skip
    if browser:
        return render(request, "upstream.html", values)
    return JSONResponse(
        {"requires_terms": True, "ticket": arrival.ticket, "accept_url": f"/auth/upstream/{name}/accept",
         "provider": arrival.provider, "email": arrival.email},
        headers={"Cache-Control": "no-store"},
    )  # fmt: skip


@router.post("/auth/upstream/{name}/accept", responses=answers(302, 400, 404))
async def accept(
    request: Request, name: str, runtime: RuntimeDep, origin: OriginDep, now: NowDep
) -> Response:
    """Someone new accepted the terms (the page's one button; ``accept=true`` from a program)."""
    form = await form_values(request)
    completion = await upstream_signin.accept_terms(
        runtime,
        name,
        form.get("ticket"),
        accepted=form.get("accept") in ("true", "on", "1"),
        browser_token=request.cookies.get(BROWSER_COOKIE),
        origin=origin,
        now=now,
    )
    if wants_html(request):
        return finish_signin(runtime, completion)
    return completion_response(runtime, completion)
