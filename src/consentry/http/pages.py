"""Server-rendered pages (Jinja2): no front-end build step, accessible, and CSRF-protected."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse, Response

from consentry.errors import ExpiredFormError
from consentry.http import i18n
from consentry.http.deps import form_values
from consentry.http.edge import SITE_CSP
from consentry.services.sessions import SignedIn

TEMPLATES = Jinja2Templates(directory=str(files("consentry") / "http" / "templates"))
TEMPLATES.env.add_extension("jinja2.ext.i18n")
TEMPLATES.env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
TEMPLATES.env.filters |= {"day": i18n.format_day, "moment": i18n.format_moment}


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query and request.method == "GET" else "")


def local_path(value: str | None, default: str = "/account") -> str:
    """``value`` when it is a path on this site (never ``//host`` or ``/\\host``, which browsers follow
    off-site), else ``default``: where a form may send the person back to."""
    if (
        value
        and value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and value.isprintable()
        and "\\" not in value
    ):
        return value
    return default


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    preference: str | None = None,
) -> HTMLResponse:
    """The page in the language ``i18n.page_locale`` chooses (``preference``: the person's saved one)."""
    locale = i18n.page_locale(request, preference)
    values = {**context, "locale": locale, "locales": i18n.LOCALES, "here": _here(request)}
    token = i18n.use_locale(locale)
    try:  # Starlette renders the template here, in the page's language
        response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    finally:
        i18n.reset_locale(token)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = locale
    if "ui_locales" in request.query_params:
        i18n.remember_ui_locales(
            response, request.query_params["ui_locales"], secure=request.url.scheme == "https"
        )
    return response


_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")


def allow_form_redirect_to(response: Response, redirect_uri: str) -> None:
    """The site's policy, with the client's redirect URI among the form's targets: browsers apply
    ``form-action`` to where a submitted form's answer redirects, and a sign-in or consent form ends at the
    client. Only the URI's origin is named (CSP ignores paths after a redirect), and only when it is a plain
    origin, or a native app's scheme."""
    parts = urlsplit(redirect_uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        source = f"{scheme}://{parts.netloc.lower()}"
        if not _ORIGIN.fullmatch(source) or "@" in parts.netloc:
            return
    elif scheme and _SCHEME.fullmatch(f"{scheme}:"):
        source = f"{scheme}:"
    else:
        return
    response.headers["Content-Security-Policy"] = SITE_CSP.replace(
        "form-action 'self'", f"form-action 'self' {source}"
    )


def error_page(
    request: Request,
    error: str,
    description: str,
    *,
    status_code: int = 400,
    expired_form: bool = False,
    values: Mapping[str, object] | None = None,
) -> HTMLResponse:
    """The page a person reads when a request cannot go on: ``description`` (a message, ``values`` filled in)
    in the page's language."""
    context = {
        "error": error,
        "description": i18n.lazy_gettext(description, **(values or {})),
        "status": status_code,
        "expired_form": expired_form,
    }
    return render(request, "error.html", context, status_code=status_code)


def csrf_token(key: bytes, session_id: uuid.UUID) -> str:
    """A token bound to the session: a cross-site form cannot know it (synchroniser token, HMAC-derived)."""
    return hmac.new(key, b"csrf:" + session_id.bytes, hashlib.sha256).hexdigest()


def csrf_valid(key: bytes, session_id: uuid.UUID, presented: str | None) -> bool:
    return presented is not None and same_secret(csrf_token(key, session_id), presented)


async def signed_in_form(request: Request, key: bytes, signed_in: SignedIn) -> dict[str, str]:
    """A signed-in person's form: it carries the token of their session, or it is refused as expired."""
    form = await form_values(request)
    if not csrf_valid(key, signed_in.session_id, form.get("csrf_token")):
        raise ExpiredFormError()
    return form


def page_redirect(location: str) -> RedirectResponse:
    """Where a page sends the browser next (never cached: it may follow a form)."""
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


def sign_in_first() -> RedirectResponse:
    """A page of a signed-in person, asked for by nobody signed in."""
    return page_redirect("/login")


def same_secret(expected: str, presented: str) -> bool:
    """Constant-time comparison of what a client sent (any text: ``compare_digest`` refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogateescape"))
