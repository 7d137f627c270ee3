"""Request bodies: pydantic models that refuse what no legitimate client sends."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


class RequestBody(BaseModel):
    """Base of every JSON body: unknown fields are ignored, NUL characters refused (PostgreSQL text cannot
    hold them, and no legitimate value contains one)."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        if _contains_nul(data):
            raise ValueError("values must not contain NUL characters")
        return data


class ErrorBody(BaseModel):
    """SPEC §5: every error, with an RFC 6749 code where one applies."""

    error: str
    error_description: str | None = None


_MEANINGS = {
    302: "A redirect (Location)",
    400: "The request is invalid (invalid_request, or the protocol's own code)",
    401: "No valid session, client credentials or token",
    403: "Signed in, but not allowed",
    404: "No such resource",
    409: "Conflicts with what exists",
    429: "Too many attempts; Retry-After says when to try again",
}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error statuses it can answer besides its success (the document's
    cross-cutting ones, 408/413/503, are added for every operation by http/openapi.py)."""
    return {status: {"model": ErrorBody, "description": _MEANINGS[status]} for status in statuses}
