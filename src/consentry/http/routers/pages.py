"""The pages a person uses: /login (identifier → code → password), /account and /account/apps.

Forms work without JavaScript. Before sign-in they are protected by a double-submit CSRF cookie; after it,
by a token bound to the session.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from consentry.domain import authorization as az
from consentry.errors import ConsentryError, ForbiddenError, InvalidRequestError
from consentry.http.deps import NowDep, OriginDep, RuntimeDep, SignedInOptional, form_values
from consentry.http.pages import allow_form_redirect_to, csrf_token, csrf_valid, render, same_secret
from consentry.http.routers.auth import set_session_cookie
from consentry.runtime import Runtime
from consentry.services import signin
from consentry.services.connected_apps import connected_apps
from consentry.services.consent_endings import revoke_consent
from consentry.services.sessions import (
    SESSION_COOKIE,
    SignedIn,
    account_overview,
    end_own_session,
    end_session,
)

router = APIRouter(tags=["pages"], include_in_schema=False)

LOGIN_CSRF_COOKIE = "consentry_login_csrf"


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


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
    values = {"step": step, "csrf_token": csrf, "context": context, "client": client, **extra}
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
    )


@router.post("/login")
async def login_step(request: Request, runtime: RuntimeDep, origin: OriginDep, now: NowDep) -> Response:
    form = await form_values(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    csrf = form.get("csrf_token", "")
    if not cookie or not same_secret(cookie, csrf):
        raise ForbiddenError("the form has expired or did not come from this site; reload the page")
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
            page["notice"] = "We sent a new code."
        elif step == "verify":
            result = await signin.verify_identifier(
                runtime, flow_token, form.get("code", ""), origin=origin, now=now
            )
        elif step == "password":
            completion = await signin.login_password(
                runtime, flow_token, form.get("password", ""), context=None, origin=origin, now=now
            )
            return _finish(runtime, completion, context)
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
            return _finish(runtime, completion, context)
        else:
            raise InvalidRequestError("unknown step")
    except ConsentryError as error:
        restart = error.error == "invalid_flow"
        return await _login_page(
            request,
            runtime,
            step="identifier" if restart else (step or "identifier"),
            status_code=error.status_code,
            error=error.description,
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


def _finish(runtime: Runtime, completion: signin.Completion, context: dict[str, str]) -> Response:
    """Signed in: on to the app (code issued), to its consent screen, or to the account."""
    if completion.redirect_url is not None:
        location = completion.redirect_url
    elif completion.consent_info is not None:
        location = "/consent?" + urlencode({"response_type": "code", **context})
    else:
        location = "/account/apps"
    response = _redirect(location)
    set_session_cookie(response, runtime, completion.session.token, completion.session.expires_at)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _need_sign_in() -> Response:
    return _redirect("/login")


@router.get("/account")
async def account_page(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    if signed_in is None:
        return _need_sign_in()
    user, sessions = await account_overview(runtime.database, signed_in.user_id, now=now)
    context = {
        "user": user,
        "sessions": sessions,
        "current_session": signed_in.session_id,
        "csrf_token": csrf_token(runtime.csrf_key, signed_in.session_id),
    }
    return render(request, "account.html", context)


def _check_form_csrf(runtime: Runtime, signed_in: SignedIn, form: dict[str, str]) -> None:
    if not csrf_valid(runtime.csrf_key, signed_in.session_id, form.get("csrf_token")):
        raise ForbiddenError("the form has expired or did not come from this site; reload the page")


@router.post("/account/sessions/{session_id}/end")
async def end_session_form(
    request: Request, session_id: str, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    if signed_in is None:
        return _need_sign_in()
    _check_form_csrf(runtime, signed_in, await form_values(request))
    try:
        target = uuid.UUID(session_id)
    except ValueError:
        raise InvalidRequestError("unknown session") from None
    if target == signed_in.session_id:
        await end_session(runtime, signed_in, now=now)
        response = _redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    await end_own_session(runtime, signed_in.user_id, target, now=now)
    return _redirect("/account")


@router.get("/account/apps")
async def apps_page(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    if signed_in is None:
        return _need_sign_in()
    apps = await connected_apps(runtime, signed_in.user_id, now=now)
    catalogue = await runtime.clients.scope_catalogue()
    context = {
        "apps": apps,
        "csrf_token": csrf_token(runtime.csrf_key, signed_in.session_id),
        "notice": await _revoked_notice(runtime, request.query_params.get("revoked")),
        "descriptions": {name: scope.description for name, scope in catalogue.items()},
    }
    response = render(request, "apps.html", context)
    return response


@router.post("/account/apps/{client_id}/revoke")
async def revoke_form(
    request: Request,
    client_id: str,
    runtime: RuntimeDep,
    signed_in: SignedInOptional,
    origin: OriginDep,
    now: NowDep,
) -> Response:
    """The no-JavaScript path of the Revoke button: the same use case as the consent API's DELETE."""
    if signed_in is None:
        return _need_sign_in()
    _check_form_csrf(runtime, signed_in, await form_values(request))
    await revoke_consent(runtime, signed_in.user_id, client_id, origin=origin, now=now)
    return _redirect(f"/account/apps?{urlencode({'revoked': client_id})}")


async def _revoked_notice(runtime: Runtime, client_id: str | None) -> str | None:
    """The page's own words about an app it just revoked; nothing a link could carry is shown as text."""
    client = await runtime.clients.get(client_id) if client_id else None
    return f"{client.name} can no longer see your account." if client is not None else None
