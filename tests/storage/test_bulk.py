"""Rows inserted through the driver read back as SQLAlchemy's own executemany would have written them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, select

from consentry.runtime import Runtime, utcnow
from consentry.storage.bulk import encoded_rows, insert_rows, repeats_once
from consentry.storage.tables import AuditEvent, User, UserStatus


async def test_rows_read_back_with_their_types_and_python_defaults(runtime: Runtime) -> None:
    now = utcnow()
    rows = [
        {"email": f"bulk{i}@example.com", "created_at": now, "updated_at": now + timedelta(seconds=i)}
        for i in range(3)
    ]
    async with runtime.database.engine.begin() as connection:
        await connection.run_sync(insert_rows, User.__table__, rows)
    async with runtime.database.read_only() as session:
        users = (await session.scalars(select(User).order_by(User.email))).all()
    assert [u.email for u in users] == ["bulk0@example.com", "bulk1@example.com", "bulk2@example.com"]
    assert len({u.id for u in users}) == 3  # a callable default is called per row
    assert all(u.status is UserStatus.ACTIVE and u.is_admin is False for u in users)  # constants
    assert [u.updated_at for u in users] == [now + timedelta(seconds=i) for i in range(3)]
    assert all(u.created_at == now and u.created_at.tzinfo is not None for u in users)


async def test_json_and_enum_columns_match_sqlalchemys_own_insert(runtime: Runtime) -> None:
    now = utcnow()
    details: dict[str, Any] = {"scope": ["openid", "email"], "note": "Zoë", "nested": {"n": 1}}
    row = {"event_type": "bulk", "occurred_at": now, "actor": "client", "user_id": None, "details": details}
    table = AuditEvent.__table__
    async with runtime.database.engine.begin() as connection:
        await connection.run_sync(insert_rows, table, [row])
        await connection.execute(table.insert(), [row | {"event_type": "core"}])
    async with runtime.database.read_only() as session:
        read = {e.event_type: e for e in await session.scalars(select(AuditEvent))}
    assert read["bulk"].details == read["core"].details == details
    assert read["bulk"].occurred_at == read["core"].occurred_at == now


def test_a_value_repeated_from_the_row_before_is_encoded_once() -> None:
    calls: list[object] = []

    def encoder(value: object) -> object:
        calls.append(value)
        return f"<{value}>"

    same, other = object(), object()
    encode = repeats_once(encoder)
    encoded = [encode(v) for v in (same, same, other, same)]
    assert encoded == [f"<{same}>", f"<{same}>", f"<{other}>", f"<{same}>"]
    assert calls == [same, other, same]


def test_a_sql_expression_default_must_be_given() -> None:
    table = Table("t", MetaData(), Column("n", Integer, default=func.random()), Column("m", Integer))
    with pytest.raises(TypeError, match="SQL expression default"):
        encoded_rows([{"m": 1}], ["n", "m"], [None, None], defaults_from=table)
