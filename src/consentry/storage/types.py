"""Column types shared by the tables: aware UTC datetimes, scope sets, portable JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from consentry.domain.scopes import Scopes

PortableJSON = JSON().with_variant(JSONB(), "postgresql")


def dumps_json(value: Any) -> str:
    """The engines' JSON encoder: orjson (scopes and audit details are encoded several times per token
    request, and orjson is an order of magnitude faster), the standard library for what orjson refuses (lone
    surrogates, integers past 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def loads_json(text: str | bytes) -> Any:
    """The engines' JSON decoder; the standard library reads back what only it could write. orjson reads an
    integer past 64 bits as a float, which the standard library wrote exactly: a text with a run of 19 digits
    or more goes to the standard library (strings holding such runs too, read no worse)."""
    long_digit_run = _LONG_DIGIT_RUN if isinstance(text, str) else _LONG_DIGIT_RUN_BYTES
    if long_digit_run.search(text):  # type: ignore[arg-type]
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


_LONG_DIGIT_RUN, _LONG_DIGIT_RUN_BYTES = re.compile(r"[0-9]{19}"), re.compile(rb"[0-9]{19}")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive; we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, :meth:`process_bind_param` and the dialect's text formatting in one step (a code
        exchange binds seven datetimes), used only if it gives the dialect's very text."""
        composed = super().bind_processor(dialect)
        if dialect.name == "sqlite" and composed is not None and composed(_PROBE) == _sqlite_text(_PROBE):
            return _sqlite_text
        return composed


_PROBE = datetime(2026, 1, 2, 3, 4, 5, 60708, tzinfo=timezone(timedelta(hours=-7)))


def _sqlite_text(value: datetime | None) -> str | None:
    """The text SQLite's DATETIME stores for an aware datetime, in UTC (``2026-01-02 10:04:05.060708``)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


class ScopeSet(TypeDecorator[Scopes]):
    """A :class:`Scopes` value stored as a sorted JSON array (never a space-joined string)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: Scopes | None, dialect: Dialect) -> list[str] | None:
        return None if value is None else sorted(value)

    def process_result_value(self, value: list[str] | None, dialect: Dialect) -> Scopes | None:
        return None if value is None else Scopes(value)


class StringList(TypeDecorator[list[str]]):
    """An ordered list of strings (redirect URIs, grant types) as a JSON array."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: list[str] | None, dialect: Dialect) -> list[str] | None:
        return None if value is None else list(value)

    def process_result_value(self, value: list[str] | None, dialect: Dialect) -> list[str] | None:
        return None if value is None else list(value)
