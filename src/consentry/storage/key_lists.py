"""Statements over a batch's keys, built two ways: an expanding ``IN`` list, and one array for PostgreSQL.

An expanding list is rendered anew at each execution, a placeholder per key, and on PostgreSQL every list
length is a statement of its own for asyncpg to prepare; ``key = ANY($1)`` is one prepared statement for every
batch size, and costs the client less CPU for a batched token read. SQLite has no
arrays, so it keeps the list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeEngine


@dataclass(frozen=True, slots=True)
class ByKeys:
    """One statement over the parameter ``keys``: as an expanding ``IN`` list, and as one array of
    ``key_type`` values."""

    expanding: Executable
    array: Executable
    key_type: TypeEngine[Any]

    def for_dialect(self, dialect: str) -> Executable:
        return self.array if dialect == "postgresql" else self.expanding


def one_of(
    key: ColumnElement[Any] | InstrumentedAttribute[Any], values: list[Any] | None = None, *, array: bool
) -> ColumnElement[bool]:
    """``key`` among ``values``, or among the parameter ``keys`` given at each execution when None: as one
    array parameter (``array``, for PostgreSQL) or as an expanding ``IN`` list. A registration batch's
    thousand values as a list are each rendered, and PostgreSQL parses and plans each of them."""
    if array:
        return key == any_(bindparam("keys" if values is None else None, values, type_=ARRAY(key.type)))
    return key.in_(bindparam("keys") if values is None else values)


def by_keys(key: Any, build: Callable[[ColumnElement[bool]], Executable]) -> ByKeys:
    """The statement ``build`` makes around the condition that ``key`` is among the keys, both ways."""
    return ByKeys(
        expanding=build(one_of(key, array=False)), array=build(one_of(key, array=True)), key_type=key.type
    )
