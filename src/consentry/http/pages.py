"""Server-rendered pages (Jinja2): no front-end build step, accessible, and CSRF-protected."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from importlib.resources import files
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

TEMPLATES = Jinja2Templates(directory=str(files("consentry") / "http" / "templates"))


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: Request, error: str, description: str, *, status_code: int = 400) -> HTMLResponse:
    return render(
        request, "error.html", {"error": error, "description": description}, status_code=status_code
    )


def csrf_token(key: bytes, session_id: uuid.UUID) -> str:
    """A token bound to the session: a cross-site form cannot know it (synchroniser token, HMAC-derived)."""
    return hmac.new(key, b"csrf:" + session_id.bytes, hashlib.sha256).hexdigest()


def csrf_valid(key: bytes, session_id: uuid.UUID, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(key, session_id), presented)
