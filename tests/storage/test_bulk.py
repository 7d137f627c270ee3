"""Rows inserted through the driver read back as SQLAlchemy's own executemany would have written them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, select
from sqlalchemy.exc import IntegrityError

from consentry.domain.accounts import UserStatus
from consentry.runtime import Runtime, utcnow
from consentry.storage.bulk import encoded_rows, insert_rows, insert_tables_in_one_statement, repeats_once
from consentry.storage.tables import AuditEvent, User


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


def postgresql_only(runtime: Runtime) -> None:
    if runtime.database.dialect != "postgresql":
        pytest.skip("the one-statement form is PostgreSQL's")


async def test_one_statement_for_several_tables_reads_back_as_insert_rows_writes(runtime: Runtime) -> None:
    """PostgreSQL's one-statement insert (arrays per column, unnest) against the executemany of insert_rows:
    the same values read back, enum, booleans, JSON, scopes, UUIDs, NULLs and Python defaults included."""
    postgresql_only(runtime)
    now = utcnow()
    details: dict[str, Any] = {
        "scope": ["openid", "email"],
        "note": 'Zoë "quoted"',
        "nested": {"n": [1, None]},
    }

    def rows(tag: str) -> list[tuple[Table, list[dict[str, Any]]]]:
        users = [
            {"email": f"{tag}{i}@example.com", "phone": None, "created_at": now, "updated_at": now}
            for i in range(3)
        ]
        events = [
            {"event_type": tag, "occurred_at": now, "actor": "client", "user_id": None, "details": details},
            {"event_type": tag, "occurred_at": now, "actor": "user", "user_id": None, "details": None},
        ]
        return [(User.__table__, users), (AuditEvent.__table__, events)]  # type: ignore[list-item]

    async with runtime.database.engine.begin() as connection:
        for table, table_rows in rows("many"):
            await connection.run_sync(insert_rows, table, table_rows)
    await runtime.database.held_connection().run(lambda c: insert_tables_in_one_statement(c, rows("one")))

    async with runtime.database.read_only() as session:
        users = (await session.scalars(select(User).order_by(User.email))).all()
        events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.actor))).all()

    def user_view(user: User) -> tuple[Any, ...]:
        return (user.email[-5:], user.phone, user.status, user.is_admin, user.email_verified, user.created_at)

    assert [user_view(u) for u in users if u.email.startswith("one")] == [
        user_view(u) for u in users if u.email.startswith("many")
    ]
    assert len({u.id for u in users}) == 6
    one = [(e.actor, e.details, e.occurred_at) for e in events if e.event_type == "one"]
    assert one == [(e.actor, e.details, e.occurred_at) for e in events if e.event_type == "many"]
    assert one[0][1] == details and one[1][1] is None


async def test_one_statement_is_all_or_nothing(runtime: Runtime) -> None:
    postgresql_only(runtime)
    now = utcnow()
    event = {"event_type": "atomic", "occurred_at": now, "actor": "system", "user_id": None, "details": None}
    taken = {"email": "taken@example.com", "created_at": now, "updated_at": now}
    held = runtime.database.held_connection()  # as the group committer runs its batches
    await held.run(lambda c: insert_rows(c, User.__table__, [taken]))  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        await held.run(
            lambda c: insert_tables_in_one_statement(
                c,
                [(AuditEvent.__table__, [event]), (User.__table__, [taken])],  # type: ignore[list-item]
            )
        )
    async with runtime.database.read_only() as session:
        assert await session.scalar(select(func.count()).where(AuditEvent.event_type == "atomic")) == 0
