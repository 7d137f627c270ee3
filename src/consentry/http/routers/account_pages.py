"""The person's account pages (SPEC §4, §9, §10): profile, email and phone, password, sessions, linked
accounts, activity, export and deletion. Server-rendered forms that work without JavaScript, each protected by
a token bound to the session; what changes how one signs in asks for the password first.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from consentry.domain.profile import PROFILE_FIELDS, PROFILE_LIMITS
from consentry.errors import N_, ConflictError, ConsentryError, InvalidRequestError
from consentry.http import i18n
from consentry.http.deps import NowDep, OriginDep, RuntimeDep, SignedInOptional
from consentry.http.devices import device_names
from consentry.http.i18n import lazy_gettext
from consentry.http.pages import csrf_token, page_redirect, render, sign_in_first, signed_in_form
from consentry.runtime import Runtime
from consentry.services import accounts
from consentry.services.admin import audit_trail
from consentry.services.export import export_consents
from consentry.services.linked_accounts import list_linked_accounts, unlink
from consentry.services.sessions import (
    SESSION_COOKIE,
    SignedIn,
    end_own_session,
    end_session,
    live_sessions,
    sign_out_everywhere,
)
from consentry.services.upstream_providers import enabled_upstreams

router = APIRouter(tags=["pages"], include_in_schema=False)

ACTIVITY_PAGE = 25
MAX_ACTIVITY_PAGE = 100_000  # an offset the databases take (a bigger one is a typo or a probe)
# What the activity page shows, in the person's words; other audit events (each token issued, say) are for
# operators.
ACTIVITY = {
    "login_succeeded": N_("Signed in"),
    "login_failed": N_("A sign-in failed"),
    "user_registered": N_("Account created"),
    "sign_up": N_("Account created"),
    "consent_granted": N_("Allowed an app"),
    "consent_updated": N_("Changed what an app may do"),
    "consent_revoked": N_("Revoked an app's access"),
    "consent_expired": N_("An app's access expired"),
    "authorization_denied": N_("Denied an app"),
    "refresh_token_reuse_detected": N_("A stolen token was stopped; the app was signed out"),
    "password_changed": N_("Password changed"),
    "profile_updated": N_("Profile updated"),
    "identifier_changed": N_("Email or phone changed"),
    "account_linked": N_("Linked an account"),
    "account_unlinked": N_("Unlinked an account"),
    "signed_out_everywhere": N_("Signed out everywhere"),
    "user_deleted": N_("Account deleted"),
    "user_restored": N_("Account restored"),
}
# The page's own words after an action (a link names which; nothing it carries is shown as text).
DONE = {
    "profile": lazy_gettext("Your profile is saved."),
    "password": lazy_gettext(
        "Your password is changed. Every other device was signed out, and apps must ask again."
    ),
    "email": lazy_gettext("Your email address is changed and verified."),
    "phone": lazy_gettext("Your phone number is changed and verified."),
    "session_ended": lazy_gettext("That device is signed out."),
}
UNLINK_REFUSED = lazy_gettext(
    "You cannot unlink the only way left to sign in: add an email address or link another account first."
)


async def _page(
    request: Request,
    runtime: Runtime,
    signed_in: SignedIn,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    """An account page, in the person's saved language unless the request names another."""
    me = await accounts.read_me(runtime, signed_in)
    values = {"me": me, "csrf_token": csrf_token(runtime.csrf_key, signed_in.session_id), **context}
    return render(request, template, values, status_code=status_code, preference=me["locale"])


@router.get("/account")
async def account_page(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    if signed_in is None:
        return sign_in_first()
    sessions = await live_sessions(runtime.database, signed_in.user_id, now=now)
    linked = {link["provider"]: link for link in await list_linked_accounts(runtime, signed_in.user_id)}
    query = request.query_params
    devices = await run_in_threadpool(device_names, [s.user_agent for s in sessions])
    notice: Any = None
    if query.get("linked") in linked:
        notice = lazy_gettext("Linked %(provider)s.", provider=query["linked"])
    elif query.get("done") in DONE:
        notice = DONE[query["done"]]
    context = {
        "sessions": list(zip(sessions, devices, strict=True)),
        "current_session": signed_in.session_id,
        "providers": await enabled_upstreams(runtime),
        "linked": linked,
        "notice": notice,
        "error": UNLINK_REFUSED if query.get("refused") else None,
    }
    return await _page(request, runtime, signed_in, "account.html", context)


@router.post("/account/linked-accounts/{provider}/unlink")
async def unlink_form(
    request: Request,
    provider: str,
    runtime: RuntimeDep,
    signed_in: SignedInOptional,
    origin: OriginDep,
    now: NowDep,
) -> Response:
    if signed_in is None:
        return sign_in_first()
    await signed_in_form(request, runtime.csrf_key, signed_in)
    try:
        await unlink(runtime, signed_in.user_id, provider, origin=origin, now=now)
    except ConflictError:
        return page_redirect(f"/account?refused={quote(provider)}")
    return page_redirect("/account")


@router.post("/account/sessions/{session_id}/end")
async def end_session_form(
    request: Request, session_id: str, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    if signed_in is None:
        return sign_in_first()
    await signed_in_form(request, runtime.csrf_key, signed_in)
    try:
        target = uuid.UUID(session_id)
    except ValueError:
        raise InvalidRequestError("unknown session") from None
    if target == signed_in.session_id:
        await end_session(runtime, signed_in, now=now)
        return _signed_out(page_redirect("/login?signed_out=1"))
    await end_own_session(runtime, signed_in.user_id, target, now=now)
    return page_redirect("/account?done=session_ended")


def _signed_out(response: Response) -> Response:
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/account/sign-out-everywhere")
async def sign_out_everywhere_form(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, origin: OriginDep, now: NowDep
) -> Response:
    """Every session ends and every app's codes and tokens die (SPEC §9); consents stay."""
    if signed_in is None:
        return sign_in_first()
    await signed_in_form(request, runtime.csrf_key, signed_in)
    await sign_out_everywhere(runtime, signed_in.user_id, origin=origin, now=now)
    return _signed_out(page_redirect("/login?signed_out=everywhere"))


@router.get("/account/profile")
async def profile_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    if signed_in is None:
        return sign_in_first()
    return await _page(request, runtime, signed_in, "account_profile.html", {"limits": PROFILE_LIMITS})


@router.post("/account/profile")
async def save_profile(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, origin: OriginDep, now: NowDep
) -> Response:
    if signed_in is None:
        return sign_in_first()
    form = await signed_in_form(request, runtime.csrf_key, signed_in)
    changes = {field: form.get(field, "").strip() for field in PROFILE_FIELDS}
    try:
        await accounts.update_me(runtime, signed_in, changes, origin=origin, now=now)
    except ConsentryError as error:  # the page again, with what was typed
        context = {"error": i18n.error_text(error), "typed": changes, "limits": PROFILE_LIMITS}
        return await _page(
            request, runtime, signed_in, "account_profile.html", context, status_code=error.status_code
        )
    response = page_redirect("/account?done=profile")
    # The saved language applies at once, on this browser too: the pages' own that its tag names, if any (a
    # tag the pages do not speak, say one an app or a provider set, is kept for the apps).
    if locale := i18n.supported(changes["locale"]):
        i18n.remember_locale(response, locale, secure=request.url.scheme == "https")
    else:
        response.delete_cookie(i18n.LOCALE_COOKIE, path="/")
    return response


@router.get("/account/password")
async def password_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    if signed_in is None:
        return sign_in_first()
    return await _page(request, runtime, signed_in, "account_password.html", {})


@router.post("/account/password")
async def change_password_form(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, origin: OriginDep, now: NowDep
) -> Response:
    if signed_in is None:
        return sign_in_first()
    form = await signed_in_form(request, runtime.csrf_key, signed_in)
    changes = {"current_password": form.get("current_password", ""), "new_password": form.get("password", "")}
    try:
        await accounts.update_me(runtime, signed_in, changes, origin=origin, now=now)
    except ConsentryError as error:
        context = {"error": i18n.error_text(error)}
        return await _page(
            request, runtime, signed_in, "account_password.html", context, status_code=error.status_code
        )
    return page_redirect("/account?done=password")


@router.get("/account/email")
@router.get("/account/phone")
async def identifier_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    kind = request.url.path.rsplit("/", 1)[1]
    if signed_in is None:
        return sign_in_first()
    return await _page(request, runtime, signed_in, "account_identifier.html", {"kind": kind, "step": "new"})


@router.post("/account/email")
@router.post("/account/phone")
async def change_identifier_form(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, origin: OriginDep, now: NowDep
) -> Response:
    """Step one: the new email or phone and the password; a code goes to the new one. Step two: the code."""
    kind = request.url.path.rsplit("/", 1)[1]
    if signed_in is None:
        return sign_in_first()
    form = await signed_in_form(request, runtime.csrf_key, signed_in)
    value = form.get("value", "").strip()[:320]
    context: dict[str, Any] = {"kind": kind, "value": value}
    try:
        if form.get("step") == "code":
            context |= {"step": "code", "flow_token": form.get("flow_token", "")[:1024]}
            await accounts.confirm_change(
                runtime, signed_in, context["flow_token"], form.get("code", "")[:16], origin=origin, now=now
            )
            return page_redirect(f"/account?done={kind}")
        context["step"] = "new"
        changes = {kind: value, "current_password": form.get("current_password", "")}
        result = await accounts.update_me(
            runtime, signed_in, changes, origin=origin, now=now, confirm_identity=True
        )
    except ConsentryError as error:
        context["error"] = i18n.error_text(error)
        return await _page(
            request, runtime, signed_in, "account_identifier.html", context, status_code=error.status_code
        )
    context |= {"step": "code", "flow_token": result["verification"]["flow_token"]}
    return await _page(request, runtime, signed_in, "account_identifier.html", context)


@router.get("/account/activity")
async def activity_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    if signed_in is None:
        return sign_in_first()
    try:
        page = min(max(int(request.query_params.get("page", "1")), 1), MAX_ACTIVITY_PAGE)
    except ValueError:
        page = 1
    trail = await audit_trail(
        runtime,
        event_types=tuple(ACTIVITY),
        user_id=signed_in.user_id,
        client_id=None,
        limit=ACTIVITY_PAGE,
        offset=(page - 1) * ACTIVITY_PAGE,
    )
    events = trail["events"]
    devices = await run_in_threadpool(device_names, [event["user_agent"] for event in events])
    context = {
        "events": [
            (event, ACTIVITY[event["event_type"]], device)
            for event, device in zip(events, devices, strict=True)
        ],
        "page": page,
        "more": trail["total"] > page * ACTIVITY_PAGE,
    }
    return await _page(request, runtime, signed_in, "account_activity.html", context)


@router.get("/account/export")
async def export_download(runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep) -> Response:
    """The GDPR export (SPEC §4) as a file to keep: every consent, its history and signed receipt."""
    if signed_in is None:
        return sign_in_first()
    exported = await export_consents(runtime, signed_in.user_id, now=now)
    name = f"consentry-export-{now:%Y-%m-%d}.json"
    return Response(
        orjson.dumps(exported, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.get("/account/delete")
async def delete_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    if signed_in is None:
        return sign_in_first()
    context = {"grace_days": runtime.settings.account_deletion_grace_days}
    return await _page(request, runtime, signed_in, "account_delete.html", context)


@router.post("/account/delete")
async def delete_form(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, origin: OriginDep, now: NowDep
) -> Response:
    if signed_in is None:
        return sign_in_first()
    form = await signed_in_form(request, runtime.csrf_key, signed_in)
    grace_days = runtime.settings.account_deletion_grace_days
    try:
        purge_after = await accounts.delete_me(
            runtime,
            signed_in,
            password=form.get("current_password"),
            grace=timedelta(days=grace_days),
            origin=origin,
            now=now,
        )
    except ConsentryError as error:
        context = {"grace_days": grace_days, "error": i18n.error_text(error)}
        return await _page(
            request, runtime, signed_in, "account_delete.html", context, status_code=error.status_code
        )
    page = render(request, "account_deleted.html", {"purge_after": purge_after})
    return _signed_out(page)
