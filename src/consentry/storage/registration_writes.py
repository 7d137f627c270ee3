"""Writing a batch of registrations in one transaction; a message that cannot be written fails alone.

Idempotent by request id: a message whose request is already completed or failed is skipped, so redelivery
never creates a second account. Identifiers taken (by an existing account, or earlier in the same batch) fail
only their own message.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Connection,
    Enum,
    Table,
    TypeDecorator,
    select,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.types import TypeEngine
from sqlalchemy.util.concurrency import await_

from consentry.domain.accounts import UserStatus
from consentry.domain.registration import TAKEN, RegistrationMessage, RegistrationStatus
from consentry.ids import new_clustered_id
from consentry.storage.bulk import bind_encoders, encoded_rows, insert_rows
from consentry.storage.database import Database
from consentry.storage.key_lists import one_of
from consentry.storage.tables import AuditEvent, ConsentHistory, RegistrationRequest, User, UserCredential


class PoisonMessage(ValueError):
    """A message the writer cannot turn into an account (malformed in the queue)."""


@dataclass
class WriteResult:
    completed: int = 0
    duplicates: int = 0
    skipped: int = 0
    poisoned: list[tuple[RegistrationMessage, str]] = field(default_factory=list)


def _check(message: RegistrationMessage) -> None:
    if not (message.email or message.phone) or not message.password_hash:
        raise PoisonMessage("a registration needs an identifier and a password hash")
    for flag in ("email_verified", "phone_verified"):
        if not isinstance(message.attributes.get(flag, False), bool):
            raise PoisonMessage(f"{flag} must be true or false")


async def write_batch(
    database: Database, messages: Sequence[RegistrationMessage], *, now: datetime
) -> WriteResult:
    """One transaction; if it fails, one transaction per message, so a bad one cannot sink the rest.

    The transaction is synchronous work (:meth:`Database.run_in_transaction`): on a SQLite file it runs whole
    on the writer thread, and the checkpoint thread copies its pages into the database file (through an
    aiosqlite session every other batch's commit ran a checkpoint itself).
    """
    try:
        return await database.run_in_transaction(functools.partial(_write, messages=messages, now=now))
    except Exception:  # a poisoned message, or a race with a synchronous registration: isolate it
        result = WriteResult()
        for message in messages:
            try:
                single = await database.run_in_transaction(
                    functools.partial(_write, messages=[message], now=now)
                )
            except Exception as exc:
                result.poisoned.append((message, f"{type(exc).__name__}: {exc}"[:1000]))
                continue
            result.completed += single.completed
            result.duplicates += single.duplicates
            result.skipped += single.skipped
        return result


def insert_many(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Rows into ``table``: a binary COPY on PostgreSQL (several times faster for a thousand rows), elsewhere
    :func:`~consentry.storage.bulk.insert_rows`. Rows must name the same columns; with COPY, columns left out
    take their server defaults."""
    dialect = connection.dialect
    names = list(rows[0])
    if dialect.name == "postgresql":
        # COPY bypasses SQLAlchemy's types: values go as asyncpg encodes them (enum by value, JSON as text).
        # The asyncpg call is awaited from inside run_sync's greenlet, as SQLAlchemy's own adapter does.
        encoders = [_copy_encoder(table.c[name].type, dialect) for name in names]
        driver = connection.connection.driver_connection
        assert driver is not None
        await_(
            driver.copy_records_to_table(
                table.name, columns=names, records=encoded_rows(rows, names, encoders)
            )
        )
        return
    insert_rows(connection, table, rows)


_MARKED_COLUMNS = ("status", "user_id", "error", "updated_at", "id")  # the SQLite UPDATE's placeholders


@functools.cache
def _marked_encoders(dialect: Dialect) -> tuple[Callable[[Any], Any] | None, ...]:
    """Looked up once per dialect, not per batch."""
    return tuple(bind_encoders(RegistrationRequest.__table__, _MARKED_COLUMNS, dialect))  # type: ignore[arg-type]


def _mark_written(connection: Connection, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """Each request's outcome (completed with its user, or failed with the reason); the hash is dropped.

    On PostgreSQL one UPDATE joined to the outcomes as arrays, not a thousand single-row UPDATEs; on SQLite an
    executemany of rows encoded as :mod:`consentry.storage.bulk` does.
    """
    dialect = connection.dialect
    if dialect.name != "postgresql":
        connection.exec_driver_sql(
            "UPDATE registration_requests SET status = ?, user_id = ?, error = ?, updated_at = ?, "
            "password_hash = NULL WHERE id = ?",
            encoded_rows(rows, _MARKED_COLUMNS, _marked_encoders(dialect)),
        )
        return
    connection.execute(
        text(
            "UPDATE registration_requests AS r SET status = o.status, user_id = o.user_id, error = o.error, "
            "password_hash = NULL, updated_at = :now FROM unnest(CAST(:ids AS uuid[]), "
            "CAST(:statuses AS varchar[]), CAST(:users AS uuid[]), CAST(:errors AS varchar[])) "
            "AS o(id, status, user_id, error) WHERE r.id = o.id"
        ),
        {
            "now": now,
            "ids": [row["id"] for row in rows],
            "statuses": [row["status"].value for row in rows],
            "users": [row.get("user_id") for row in rows],
            "errors": [row.get("error") for row in rows],
        },
    )


def _copy_encoder(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    if isinstance(column_type, TypeDecorator):
        decorator = column_type

        def through_decorator(value: Any) -> Any:
            bound = decorator.process_bind_param(value, dialect)
            return None if bound is None else _json_text(bound) if _is_json(decorator) else bound

        return through_decorator
    if isinstance(column_type, JSON):
        return lambda value: None if value is None else _json_text(value)
    if isinstance(column_type, Enum):
        return lambda value: value.value if isinstance(value, enum.Enum) else value
    return None


def _is_json(decorator: TypeDecorator[Any]) -> bool:
    return isinstance(decorator.impl_instance, JSON)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _write(connection: Connection, messages: Sequence[RegistrationMessage], *, now: datetime) -> WriteResult:
    for message in messages:
        _check(message)
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        # Planned for the tables as they are now: a generic plan cached while the tables were small (a
        # sequential scan) outlives their growth during a bulk registration until autovacuum analyzes them,
        # and each batch's email check then walks the whole table.
        connection.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    result = WriteResult()
    ids = [m.request_id for m in messages]
    # The status is tested here, not in SQL: given both, planners with stale or no statistics walk the status
    # index over every queued row (SQLite always, PostgreSQL after a bulk publish) instead of the id index.
    requests = connection.execute(
        select(RegistrationRequest.id, RegistrationRequest.status).where(
            one_of(RegistrationRequest.id, ids, array=postgresql)
        )
    )
    open_ids = {id_ for id_, status in requests if status == RegistrationStatus.PROCESSING}

    def held(column: InstrumentedAttribute[Any], values: list[Any]) -> set[Any]:
        """Which of ``values`` an account already holds in ``column``."""
        if not values:
            return set()
        return set(connection.scalars(select(column).where(one_of(column, values, array=postgresql))))

    taken = held(User.email, [m.email for m in messages if m.email])
    taken |= held(User.phone, [m.phone for m in messages if m.phone])
    users, credentials, history, audit, done, failed = [], [], [], [], [], []
    for message in messages:
        if message.request_id not in open_ids:
            result.skipped += 1  # already written: a redelivery
            continue
        identifiers = {message.email, message.phone} - {None}
        if identifiers & taken:
            failed.append(
                {
                    "id": message.request_id,
                    "status": RegistrationStatus.FAILED,
                    "error": TAKEN,
                    "password_hash": None,
                    "updated_at": now,
                }
            )
            result.duplicates += 1
            continue
        taken |= identifiers
        user_id = new_clustered_id()
        users.append(
            {
                "id": user_id,
                "email": message.email,
                "phone": message.phone,
                "email_verified": bool(message.attributes.get("email_verified")),
                "phone_verified": bool(message.attributes.get("phone_verified")),
                "is_admin": False,
                "status": UserStatus.ACTIVE,
                "created_at": now,
                "updated_at": now,
            }
        )
        credentials.append({"user_id": user_id, "password_hash": message.password_hash, "created_at": now})
        imported = (
            message.attributes.get("via") == "import"
        )  # terms were accepted where the account came from
        history.append(
            {
                "user_id": user_id,
                "action": "imported" if imported else "terms_accepted",
                "actor": "system" if imported else "user",
                "occurred_at": now,
            }
        )
        audit.append(
            {
                "event_type": "user_registered",
                "occurred_at": now,
                "actor": "user",
                "user_id": user_id,
                "details": {"via": "pipeline", "request_id": str(message.request_id)},
            }
        )
        done.append(
            {
                "id": message.request_id,
                "status": RegistrationStatus.COMPLETED,
                "user_id": user_id,
                "password_hash": None,
                "error": None,
                "updated_at": now,
            }
        )
    if users:
        written = (
            (User, users),
            (UserCredential, credentials),
            (ConsentHistory, history),
            (AuditEvent, audit),
        )
        for model, rows in written:
            insert_many(connection, model.__table__, rows)  # type: ignore[arg-type]
    if done or failed:
        _mark_written(connection, done + failed, now=now)
    result.completed = len(done)
    return result
