"""Membership in a JSON array column (scopes, audiences), in each database's own words."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB


def array_has(column: Any, value: str, dialect: str) -> ColumnElement[bool]:
    """``value`` is an element of the JSON array in ``column`` (PostgreSQL's ``@>``, SQLite's json_each)."""
    if dialect == "postgresql":
        return type_coerce(column, JSONB).contains([value])
    elements = func.json_each(column).table_valued("value")
    return select(literal(1)).select_from(elements).where(elements.c.value == value).exists()
