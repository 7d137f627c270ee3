"""UTC datetimes bind on SQLite in one step, to exactly the text SQLAlchemy's two steps would store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator

from consentry.runtime import Runtime
from consentry.storage.tables import AuditEvent
from consentry.storage.types import UTCDateTime

SQLITE = sqlite.dialect()
IN_SQLITE = UTCDateTime().dialect_impl(SQLITE)  # as SQLAlchemy binds it (its impl is SQLite's DATETIME)
fused = IN_SQLITE.bind_processor(SQLITE)
composed = TypeDecorator.bind_processor(IN_SQLITE, SQLITE)  # process_bind_param, then DATETIME's format

offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC) | offsets
)


@given(aware)
def test_the_one_step_text_is_sqlalchemys_text(value: datetime) -> None:
    assert fused is not None and composed is not None
    assert fused.__module__ == "consentry.storage.types"  # the one-step processor is the one in use
    assert fused(value) == composed(value)


def test_none_and_naive_values_behave_as_before() -> None:
    assert fused is not None and composed is not None
    assert fused(None) is composed(None) is None
    for processor in (fused, composed):
        with pytest.raises(ValueError, match="naive"):
            processor(datetime(2026, 1, 1))


def test_other_dialects_keep_sqlalchemys_processing() -> None:
    dialect = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]
    processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    value = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    bound: Any = processor(value) if processor else UTCDateTime().process_bind_param(value, dialect)
    assert bound == value and bound.tzinfo is not None


async def test_a_bound_datetime_reads_back_and_compares_in_sql(runtime: Runtime) -> None:
    """Stored by the ORM through the one-step processor; found again by a comparison bound the same way."""
    moment = datetime(2026, 3, 4, 5, 6, 7, 0, tzinfo=timezone(timedelta(hours=-5)))
    async with runtime.database.unit_of_work() as session:
        session.add(AuditEvent(event_type="t", occurred_at=moment, actor="system"))
    async with runtime.database.read_only() as session:
        found = await session.scalar(select(AuditEvent.occurred_at).where(AuditEvent.occurred_at == moment))
        later = await session.scalar(
            select(AuditEvent.occurred_at).where(AuditEvent.occurred_at > moment - timedelta(microseconds=1))
        )
    assert found == later == moment and found is not None and found.tzinfo is UTC
