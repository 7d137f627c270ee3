"""The pages a person uses: /login (identifier → code → password), /account and /account/apps.

Forms work without JavaScript. Before sign-in they are protected by a double-submit CSRF cookie; after it,
by a token bound to the session.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

import orjson
from babel.support import LazyProxy
from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from consentry.domain import authorization as az
from consentry.domain.scopes import InvalidScopeToken, Scopes
from consentry.errors import ConsentryError, ExpiredFormError, InvalidRequestError
from consentry.http import i18n
from consentry.http.deps import NowDep, OriginDep, RuntimeDep, SignedInOptional, form_values, wants_html
from consentry.http.i18n import lazy_gettext, lazy_gettext_lowered
from consentry.http.pages import (
    allow_form_redirect_to,
    csrf_token,
    local_path,
    page_redirect,
    render,
    same_secret,
    sign_in_first,
    signed_in_form,
)
from consentry.http.responses import JSONResponse
from consentry.http.routers.auth import set_session_cookie
from consentry.runtime import Runtime
from consentry.services import signin
from consentry.services.connected_apps import connected_apps
from consentry.services.consent_endings import narrow_consent, revoke_consent
from consentry.services.declined_scopes import ask_again
from consentry.services.upstream_providers import enabled_upstreams

router = APIRouter(tags=["pages"], include_in_schema=False)

LOGIN_CSRF_COOKIE = "consentry_login_csrf"
# What the sign-in page says after the person signed out from their account page.
SIGNED_OUT = {
    "1": lazy_gettext("You are signed out on this device."),
    "everywhere": lazy_gettext("You are signed out on every device, and every app's access has ended."),
}
FAVICON = str(files("consentry") / "http" / "static" / "favicon.ico")


def _context_from(values: dict[str, str], prefix: str = "") -> dict[str, str]:
    context = {key: values[prefix + key] for key in az.PENDING_PARAMETERS if values.get(prefix + key)}
    return context if context.get("client_id") else {}


async def _login_page(
    request: Request,
    runtime: Runtime,
    *,
    step: str,
    csrf: str,
    context: dict[str, str],
    status_code: int = 200,
    **extra: Any,
) -> Response:
    client = await runtime.clients.get(context.get("client_id")) if context else None
    values = {
        "step": step, "csrf_token": csrf, "context": context, "client": client,
        "upstreams": await enabled_upstreams(runtime) if step == "identifier" else [],
        "upstream_context": orjson.dumps(context).decode() if context else None, **extra,
    }  # fmt: skip
    response = render(request, "login.html", values, status_code=status_code)
    redirect_uri = context.get("redirect_uri")
    if client is not None and redirect_uri in client.redirect_uris:  # the sign-in may end at the client
        allow_form_redirect_to(response, redirect_uri)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="lax",
        path="/login",
        secure=not runtime.settings.is_development,
    )
    return response


@router.get("/")
async def home(request: Request, runtime: RuntimeDep) -> Response:
    """A person lands on their account (or sign-in); a program is pointed at the discovery document."""
    if wants_html(request):
        return page_redirect("/account")
    discovery = f"{runtime.issuer}/.well-known/openid-configuration"
    return JSONResponse({"issuer": runtime.issuer, "openid_configuration": discovery})


@router.get("/favicon.ico")
async def favicon() -> Response:
    return FileResponse(
        FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/locale")
async def choose_locale(request: Request) -> Response:
    """The language switcher's links: the browser keeps the choice; back to the page it was chosen on."""
    query = request.query_params
    response = page_redirect(local_path(query.get("next")))
    if locale := i18n.supported(query.get("locale")):
        i18n.remember_locale(response, locale, secure=request.url.scheme == "https")
    return response


@router.get("/login")
async def login_form(request: Request, runtime: RuntimeDep) -> Response:
    query = dict(request.query_params)
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    return await _login_page(
        request,
        runtime,
        step="identifier",
        csrf=csrf,
        context=_context_from(query),
        identifier=query.get("login_hint", "")[:320],
        notice=SIGNED_OUT.get(query.get("signed_out", "")),
    )


@router.post("/login")
async def login_step(request: Request, runtime: RuntimeDep, origin: OriginDep, now: NowDep) -> Response:
    form = await form_values(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    csrf = form.get("csrf_token", "")
    if not cookie or not same_secret(cookie, csrf):
        raise ExpiredFormError()
    context = _context_from(form, "ctx_")
    step, action = form.get("step", ""), form.get("action", "")
    shown = form.get("identifier_shown") or form.get("identifier", "")
    flow_token = form.get("flow_token")
    page: dict[str, Any] = {"csrf": csrf, "context": context, "identifier": shown}
    try:
        if step == "identifier" or action == "forgot":
            result = await signin.submit_identifier(
                runtime, shown, context or None, reset=action == "forgot", origin=origin, now=now
            )
        elif step == "verify" and action == "resend":
            result = await signin.resend_code(runtime, flow_token, origin=origin, now=now)
            page["notice"] = lazy_gettext("We sent a new code.")
        elif step == "verify":
            result = await signin.verify_identifier(
                runtime, flow_token, form.get("code", ""), origin=origin, now=now
            )
        elif step == "password":
            completion = await signin.login_password(
                runtime, flow_token, form.get("password", ""), context=None, origin=origin, now=now
            )
            return finish_signin(runtime, completion)
        elif step == "set_password":
            completion = await signin.set_password(
                runtime,
                flow_token,
                form.get("password", ""),
                accepted_terms=form.get("terms") == "on",
                context=None,
                origin=origin,
                now=now,
            )
            return finish_signin(runtime, completion)
        else:
            raise InvalidRequestError("unknown step")
    except ConsentryError as error:
        restart = error.error == "invalid_flow"
        return await _login_page(
            request,
            runtime,
            step="identifier" if restart else (step or "identifier"),
            status_code=error.status_code,
            error=i18n.error_text(error),
            flow_token=None if restart else flow_token,
            identifier_type="email" if "@" in shown else "phone",
            purpose=form.get("purpose", ""),
            csrf=csrf,
            context=context,
            identifier=shown,
        )
    purpose = "reset" if action == "forgot" else form.get("purpose", "")
    return await _login_page(
        request,
        runtime,
        step=result.next,
        flow_token=result.flow_token,
        identifier_type=result.identifier_type,
        purpose=purpose,
        **page,
    )


def finish_signin(runtime: Runtime, completion: signin.Completion) -> Response:
    """Signed in: on to the app (code issued), to its consent screen, or to the account."""
    if completion.redirect_url is not None:
        location = completion.redirect_url
    elif completion.consent_info is not None and completion.request is not None:
        location = "/consent?" + urlencode(completion.request)
    else:
        location = "/account/apps"
    response = page_redirect(location)
    set_session_cookie(response, runtime, completion.session.token, completion.session.expires_at)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.get("/account/apps")
async def apps_page(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    if signed_in is None:
        return sign_in_first()
    apps = await connected_apps(runtime, signed_in.user_id, now=now)
    descriptions = await runtime.clients.scope_descriptions()
    context = {
        "apps": apps,
        "csrf_token": csrf_token(runtime.csrf_key, signed_in.session_id),
        "notice": await _notice(runtime, request.query_params, descriptions),
        "descriptions": descriptions,
    }
    return render(request, "apps.html", context)


@router.post("/account/apps/{client_id:path}/revoke")
async def revoke_form(
    request: Request,
    client_id: str,
    runtime: RuntimeDep,
    signed_in: SignedInOptional,
    origin: OriginDep,
    now: NowDep,
) -> Response:
    """The Revoke button: the same use case as the consent API's DELETE."""
    if signed_in is None:
        return sign_in_first()
    await signed_in_form(request, runtime.csrf_key, signed_in)
    await revoke_consent(runtime, signed_in.user_id, client_id, origin=origin, now=now)
    return page_redirect(f"/account/apps?{urlencode({'revoked': client_id})}")


@router.post("/account/apps/{client_id:path}/scopes")
async def change_scopes_form(
    request: Request,
    client_id: str,
    runtime: RuntimeDep,
    signed_in: SignedInOptional,
    origin: OriginDep,
    now: NowDep,
) -> Response:
    """Withdraw one scope, or let the app ask again for one the person declined: the consent API's PATCH."""
    if signed_in is None:
        return sign_in_first()
    form = await signed_in_form(request, runtime.csrf_key, signed_in)
    try:
        if "withdraw" in form:
            scope = Scopes([form["withdraw"]])
            await narrow_consent(runtime, signed_in.user_id, client_id, scope, origin=origin, now=now)
            done = "withdrawn"
        elif "ask_again" in form:
            scope = Scopes([form["ask_again"]])
            await ask_again(runtime, signed_in.user_id, client_id, scope, origin=origin, now=now)
            done = "asked_again"
        else:
            raise InvalidRequestError("say which scope to withdraw or to let the app ask for again")
    except InvalidScopeToken as exc:
        raise InvalidRequestError(str(exc)) from None
    return page_redirect(f"/account/apps?{urlencode({done: client_id, 'scope': scope.format()})}")


async def _notice(
    runtime: Runtime, query: Mapping[str, str], descriptions: dict[str, str]
) -> LazyProxy | None:
    """The page's own words about what it just did; nothing a link carries is shown as text: only a known
    app's name and a known scope's description."""
    for done in ("revoked", "withdrawn", "asked_again"):
        client = await runtime.clients.get(query[done]) if query.get(done) else None
        if client is None:
            continue
        if done == "revoked":
            return lazy_gettext("%(name)s can no longer see your account.", name=client.name)
        description = descriptions.get(query.get("scope", ""))
        if description is None:
            return None
        what = lazy_gettext_lowered(description)
        if done == "withdrawn":
            return lazy_gettext("%(name)s can no longer %(what)s.", name=client.name, what=what)
        return lazy_gettext(
            "%(name)s may ask again to %(what)s; nothing is shared until you allow it.",
            name=client.name,
            what=what,
        )
    return None
