"""Server-rendered pages (Jinja2): no front-end build step, accessible, and CSRF-protected."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, Response

from consentry.http.edge import SITE_CSP

TEMPLATES = Jinja2Templates(directory=str(files("consentry") / "http" / "templates"))


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
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
    request: Request, error: str, description: str, *, status_code: int = 400, expired_form: bool = False
) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"error": error, "description": description, "status": status_code, "expired_form": expired_form},
        status_code=status_code,
    )


def csrf_token(key: bytes, session_id: uuid.UUID) -> str:
    """A token bound to the session: a cross-site form cannot know it (synchroniser token, HMAC-derived)."""
    return hmac.new(key, b"csrf:" + session_id.bytes, hashlib.sha256).hexdigest()


def csrf_valid(key: bytes, session_id: uuid.UUID, presented: str | None) -> bool:
    return presented is not None and same_secret(csrf_token(key, session_id), presented)


def same_secret(expected: str, presented: str) -> bool:
    """Constant-time comparison of what a client sent (any text: ``compare_digest`` refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogateescape"))
