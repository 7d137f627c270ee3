"""The admin console at /admin (administrators only): statistics as charts with their numbers, clients, users,
scopes and resources, the audit trail, webhooks. Server-rendered forms over the same services as the admin
API; each form carries the session's CSRF token, and what a secret is shown once stays on that one page.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from consentry.domain.accounts import BulkAction
from consentry.domain.clients import ClientRegistration
from consentry.domain.webhooks import OutboxStatus
from consentry.errors import N_, ConsentryError, ForbiddenError, InvalidRequestError
from consentry.http import charts, i18n
from consentry.http.deps import NowDep, OriginDep, RuntimeDep, SignedInOptional
from consentry.http.devices import device_names
from consentry.http.i18n import lazy_gettext
from consentry.http.pages import csrf_token, page_redirect, render, sign_in_first, signed_in_form
from consentry.runtime import Runtime
from consentry.services import admin as admin_service
from consentry.services.cascades import delete_client
from consentry.services.client_management import (
    all_clients,
    create_client,
    read_client,
    regenerate_secret,
    update_client,
)
from consentry.services.consent_endings import revoke_consent
from consentry.services.resources import create_resource, delete_resource, list_resources
from consentry.services.scopes import ScopeSpec, create_scope, delete_scope, list_scopes, update_scope
from consentry.services.sessions import SignedIn

router = APIRouter(prefix="/admin", tags=["pages"], include_in_schema=False)

PAGE = 50
SECTIONS = (
    ("/admin", N_("Overview")),
    ("/admin/clients", N_("Clients")),
    ("/admin/users", N_("Users")),
    ("/admin/scopes", N_("Scopes and resources")),
    ("/admin/audit", N_("Audit trail")),
    ("/admin/webhooks", N_("Webhooks")),
)
# The client form's text fields and how a list among them is written (one per line).
CLIENT_FIELDS = ("client_name", "client_uri", "logo_uri", "scope", "policy_uri", "tos_uri", "webhook_url")
CLIENT_LISTS = ("redirect_uris", "post_logout_redirect_uris")
DONE = {
    "client_updated": lazy_gettext("The client is saved."),
    "client_deleted": lazy_gettext("The client is deleted; every token it held is revoked."),
    "user_deleted": lazy_gettext("The account is deleted; it can be restored during the grace period."),
    "user_restored": lazy_gettext("The account is restored."),
    "consent_revoked": lazy_gettext("The consent is revoked; the app was told."),
    "scope_created": lazy_gettext("The scope is created."),
    "scope_updated": lazy_gettext("The scope is saved."),
    "scope_deleted": lazy_gettext("The scope is deleted."),
    "resource_deleted": lazy_gettext("The resource is deleted."),
}


def _admin(signed_in: SignedIn | None) -> SignedIn | None:
    """The administrator, None when nobody is signed in (they sign in first); anyone else is refused."""
    if signed_in is not None and not signed_in.is_admin:
        raise ForbiddenError("this needs an administrator")
    return signed_in


def _page(
    request: Request,
    runtime: Runtime,
    admin: SignedIn,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    done = request.query_params.get("done")
    values = {
        "sections": SECTIONS,
        "csrf_token": csrf_token(runtime.csrf_key, admin.session_id),
        "notice": DONE.get(done or ""),
        **context,
    }
    return render(request, template, values, status_code=status_code)


@router.get("")
async def overview(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    """SPEC §5's statistics: sign-ins and consents per day (30 days), top apps, refresh rate (7 days)."""
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    figures = await admin_service.statistics(runtime, now=now)
    days = charts.days_ending(now.date(), 30)
    activity = figures["activity_by_day"]
    context = {
        "signins": charts.by_day(activity, ("login_succeeded",), days),
        "consents": charts.by_day(activity, ("consent_granted", "consent_revoked"), days),
        "top": charts.by_app([(row["client_name"], row["users"]) for row in figures["top_clients"]]),
        "refresh": charts.by_app(
            [(row["client_id"], row["refreshes_per_issue"]) for row in figures["refresh_rate_by_client"]]
        ),
        "figures": figures,
    }
    return _page(request, runtime, admin, "admin_overview.html", context)


@router.get("/clients")
async def clients_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    registered_by = request.query_params.get("registered_by")
    chosen = (
        ClientRegistration(registered_by) if registered_by in {r.value for r in ClientRegistration} else None
    )
    offset = _offset(request)
    listed = await all_clients(runtime, registered_by=chosen, limit=PAGE + 1, offset=offset)
    context = {
        "clients": listed[:PAGE],
        "registered_by": chosen,
        "offset": offset,
        "more": len(listed) > PAGE,
    }
    return _page(request, runtime, admin, "admin_clients.html", context)


@router.get("/clients/new")
async def new_client_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    blank = {"scope": "openid profile email", "token_endpoint_auth_method": "client_secret_basic"}
    return _page(request, runtime, admin, "admin_client.html", {"client": blank, "new": True})


@router.post("/clients/new")
async def create_client_form(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, origin: OriginDep, now: NowDep
) -> Response:
    """The secret is shown on the page this answers, once; it is stored only as a hash."""
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    form = await signed_in_form(request, runtime.csrf_key, admin)
    values = _client_values(form)
    if form.get("public") == "on":
        values["token_endpoint_auth_method"] = "none"
    try:
        created = await create_client(runtime, admin, values, origin=origin, now=now)
    except ConsentryError as error:
        context = {"client": {**values, **form}, "new": True, "error": i18n.error_text(error)}
        return _page(request, runtime, admin, "admin_client.html", context, status_code=error.status_code)
    issued = created.issued
    context = {
        "client": created.client,
        "secret": issued.client_secret,
        "webhook_secret": issued.webhook_secret,
        "created": True,
    }
    return _page(request, runtime, admin, "admin_client.html", context, status_code=201)


def _client_values(form: dict[str, str]) -> dict[str, Any]:
    """The form's client metadata; a field left empty is none (the scope stays as it was)."""
    values: dict[str, Any] = {field: form.get(field, "").strip() or None for field in CLIENT_FIELDS}
    if not values["scope"]:
        del values["scope"]
    for field in CLIENT_LISTS:
        values[field] = [line.strip() for line in form.get(field, "").splitlines() if line.strip()]
    values["trusted"] = form.get("trusted") == "on"
    return values


@router.get("/clients/{client_id:path}")
async def client_page(
    request: Request, client_id: str, runtime: RuntimeDep, signed_in: SignedInOptional
) -> Response:
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    client = await read_client(runtime, client_id, admin)
    return _page(request, runtime, admin, "admin_client.html", {"client": client})


@router.post("/clients/{client_id:path}")
async def change_client_form(
    request: Request,
    client_id: str,
    runtime: RuntimeDep,
    signed_in: SignedInOptional,
    origin: OriginDep,
    now: NowDep,
) -> Response:
    """Save, regenerate the secret (shown once), or delete (every token it holds is revoked)."""
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    form = await signed_in_form(request, runtime.csrf_key, admin)
    action = form.get("action", "save")
    if action == "delete":
        await delete_client(runtime, client_id, admin, actor="admin", origin=origin, now=now)
        return page_redirect("/admin/clients?done=client_deleted")
    if action == "secret":
        secret = await regenerate_secret(runtime, client_id, admin, origin=origin, now=now)
        client = await read_client(runtime, client_id, admin)
        return _page(request, runtime, admin, "admin_client.html", {"client": client, "secret": secret})
    values = _client_values(form)
    try:
        _, webhook_secret = await update_client(runtime, client_id, admin, values, origin=origin, now=now)
    except ConsentryError as error:
        client = {**await read_client(runtime, client_id, admin), **values}
        context = {"client": client, "error": i18n.error_text(error)}
        return _page(request, runtime, admin, "admin_client.html", context, status_code=error.status_code)
    if webhook_secret is not None:
        client = await read_client(runtime, client_id, admin)
        return _page(
            request, runtime, admin, "admin_client.html", {"client": client, "webhook_secret": webhook_secret}
        )
    return page_redirect(f"/admin/clients/{quote(client_id, safe=':/')}?done=client_updated")


@router.get("/users")
async def users_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    """Every account, newest first, or those found by email, phone or id."""
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    query = request.query_params.get("q", "").strip()[:320]
    offset = _offset(request)
    error = None
    try:
        if query:
            user_id = _uuid(query)
            found = await admin_service.look_up_users(
                runtime, identifier=None if user_id else query, user_id=user_id
            )
            more = False
        else:
            found = await admin_service.list_users(runtime, limit=PAGE + 1, offset=offset)
            found, more = found[:PAGE], len(found) > PAGE
    except ConsentryError as refused:
        found, more, error = [], False, i18n.error_text(refused)
    context = {"users": found, "q": query, "offset": offset, "more": more, "error": error}
    return _page(request, runtime, admin, "admin_users.html", context)


@router.get("/users/{user_id}")
async def user_page(
    request: Request, user_id: uuid.UUID, runtime: RuntimeDep, signed_in: SignedInOptional, now: NowDep
) -> Response:
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    user = await admin_service.user_overview(runtime, user_id, now=now)
    devices = await run_in_threadpool(device_names, [s["user_agent"] for s in user["sessions"]])
    context = {"user": user, "sessions": list(zip(user["sessions"], devices, strict=True))}
    return _page(request, runtime, admin, "admin_user.html", context)


@router.post("/users/{user_id}")
async def change_user_form(
    request: Request,
    user_id: uuid.UUID,
    runtime: RuntimeDep,
    signed_in: SignedInOptional,
    origin: OriginDep,
    now: NowDep,
) -> Response:
    """Soft delete or restore the account, or end one of its consents (actor ``admin``, SPEC §9)."""
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    form = await signed_in_form(request, runtime.csrf_key, admin)
    action = form.get("action")
    done: str
    if action in ("soft_delete", "restore"):
        bulk: BulkAction = "soft_delete" if action == "soft_delete" else "restore"
        await admin_service.bulk_users(runtime, bulk, [user_id], admin=admin.user_id, origin=origin, now=now)
        done = "user_deleted" if action == "soft_delete" else "user_restored"
    elif action == "revoke_consent" and form.get("client_id"):
        await revoke_consent(runtime, user_id, form["client_id"], actor="admin", origin=origin, now=now)
        done = "consent_revoked"
    else:
        raise InvalidRequestError("say what to do: soft_delete, restore or revoke_consent")
    return page_redirect(f"/admin/users/{user_id}?done={done}")


@router.get("/scopes")
async def scopes_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    return _page(request, runtime, admin, "admin_scopes.html", await _catalogue(runtime))


async def _catalogue(runtime: Runtime) -> dict[str, Any]:
    return {"scopes": await list_scopes(runtime), "resources": await list_resources(runtime)}


@router.post("/scopes")
async def change_scopes_form(
    request: Request, runtime: RuntimeDep, signed_in: SignedInOptional, origin: OriginDep, now: NowDep
) -> Response:
    """Create, describe anew or delete a scope; create (its credentials shown once) or delete a resource."""
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    form = await signed_in_form(request, runtime.csrf_key, admin)
    action = form.get("action")
    try:
        if action == "create_scope":
            spec = ScopeSpec(
                form.get("name", "").strip(),
                form.get("description", "").strip(),
                form.get("restricted") == "on",
            )
            await create_scope(
                runtime,
                spec,
                resource=form.get("resource") or None,
                admin=admin.user_id,
                origin=origin,
                now=now,
            )
            return page_redirect("/admin/scopes?done=scope_created")
        if action == "update_scope":
            changes = {
                "description": form.get("description", ""),
                "restricted": form.get("restricted") == "on",
            }
            await update_scope(
                runtime, form.get("name", ""), changes, admin=admin.user_id, origin=origin, now=now
            )
            return page_redirect("/admin/scopes?done=scope_updated")
        if action == "delete_scope":
            await delete_scope(runtime, form.get("name", ""), admin=admin.user_id, origin=origin, now=now)
            return page_redirect("/admin/scopes?done=scope_deleted")
        if action == "delete_resource":
            await delete_resource(
                runtime, form.get("resource_id", ""), admin=admin.user_id, origin=origin, now=now
            )
            return page_redirect("/admin/scopes?done=resource_deleted")
        if action == "create_resource":
            issued = await create_resource(
                runtime,
                identifier=form.get("identifier", "").strip(),
                name=form.get("name", "").strip(),
                token_format=form.get("token_format", "opaque"),
                admin=admin.user_id,
                origin=origin,
                now=now,
            )
            context = await _catalogue(runtime) | {"issued": issued}
            return _page(request, runtime, admin, "admin_scopes.html", context, status_code=201)
        raise InvalidRequestError("say what to do with the scope or resource")
    except ConsentryError as error:
        context = await _catalogue(runtime) | {"error": i18n.error_text(error), "form": form}
        return _page(request, runtime, admin, "admin_scopes.html", context, status_code=error.status_code)


@router.get("/audit")
async def audit_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    """The audit trail, newest first; the filters (event type, user, client) combine."""
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    query = request.query_params
    filters = {
        "event_type": query.get("event_type", "").strip()[:48],
        "user_id": query.get("user_id", "").strip()[:36],
        "client_id": query.get("client_id", "").strip()[:2048],
    }
    offset = _offset(request)
    trail = await admin_service.audit_trail(
        runtime,
        event_types=(filters["event_type"],) if filters["event_type"] else (),
        user_id=_uuid(filters["user_id"]),
        client_id=filters["client_id"] or None,
        limit=PAGE,
        offset=offset,
    )
    kept = {key: value for key, value in filters.items() if value}
    context = {
        "events": trail["events"],
        "total": trail["total"],
        "filters": filters,
        "offset": offset,
        "older": urlencode({**kept, "offset": offset + PAGE}) if trail["total"] > offset + PAGE else None,
        "newer": urlencode({**kept, "offset": max(offset - PAGE, 0)}) if offset else None,
        "user_id_invalid": bool(filters["user_id"]) and _uuid(filters["user_id"]) is None,
    }
    return _page(request, runtime, admin, "admin_audit.html", context)


@router.get("/webhooks")
async def webhooks_page(request: Request, runtime: RuntimeDep, signed_in: SignedInOptional) -> Response:
    """Webhook deliveries by state: ``dead`` ones (the dead letters) gave up after their retries."""
    if (admin := _admin(signed_in)) is None:
        return sign_in_first()
    chosen = request.query_params.get("status", "dead")
    status = OutboxStatus(chosen) if chosen in ("pending", "delivered", "dead") else OutboxStatus.DEAD
    deliveries = await admin_service.webhook_deliveries(runtime, status, limit=PAGE)
    return _page(
        request, runtime, admin, "admin_webhooks.html", {"deliveries": deliveries, "status": status.value}
    )


def _offset(request: Request) -> int:
    try:
        return min(max(int(request.query_params.get("offset", "0")), 0), 10_000_000)
    except ValueError:
        return 0


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
