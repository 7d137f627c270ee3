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
