"""Many rows into one table through the driver's executemany, each value encoded once per column.

SQLAlchemy's executemany builds and processes a parameter dict per row (16.6 µs per token row, 4.8 µs through
the driver alone; for a thousand registrations most of the consumer's time on SQLite). Here the INSERT is
compiled once per table and column set, each column's bind processor runs over the batch, and a value that is
the very object of the row before (a batch's ``now``) is encoded once. Columns a row leaves out take their
Python-side default, as SQLAlchemy would give them, or their server default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

Encoder = Callable[[Any], Any]

# The INSERT's text, the column of each placeholder in order (given and defaulted ones), and their encoders.
_Insert = tuple[str, list[str], list[Encoder | None]]
_compiled: dict[tuple[Table, tuple[str, ...], str], _Insert] = {}


def insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` (all naming the same columns) into ``table`` in one executemany (from async code:
    ``await connection.run_sync(insert_rows, table, rows)``)."""
    sql, names, encoders = _insert_statement(table, tuple(rows[0]), connection.dialect)
    connection.exec_driver_sql(sql, encoded_rows(rows, names, encoders, defaults_from=table))


def _insert_statement(table: Table, given: tuple[str, ...], dialect: Dialect) -> _Insert:
    """Built once per table, column set and dialect: group commit inserts a batch per table many times a
    second, and the encoders alone cost ~8 µs to look up for a token row."""
    key = (table, given, dialect.name)
    if key not in _compiled:
        compiled = insert(table).compile(dialect=dialect, column_keys=list(given))
        names = list(compiled.positiontup or ())
        _compiled[key] = (str(compiled), names, bind_encoders(table, names, dialect))
    return _compiled[key]


def bind_encoders(table: Table, names: Sequence[str], dialect: Dialect) -> list[Encoder | None]:
    """What SQLAlchemy would do to each column's values for this dialect's driver (None: nothing)."""
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]


def encoded_rows(
    rows: list[dict[str, Any]],
    names: Sequence[str],
    encoders: Sequence[Encoder | None],
    *,
    defaults_from: Table | None = None,
) -> list[tuple[Any, ...]]:
    """The rows as tuples in ``names`` order, encoded a column at a time. A column the rows leave out is None,
    or with ``defaults_from`` its Python-side default there."""
    columns = []
    for name, encoder in zip(names, encoders, strict=True):
        if defaults_from is not None and name not in rows[0]:
            values = _defaults(defaults_from.c[name], len(rows))
        else:
            values = [row.get(name) for row in rows]
        if encoder is not None:
            encode = repeats_once(encoder)
            values = [encode(value) for value in values]
        columns.append(values)
    return list(zip(*columns, strict=True))


def _defaults(column: Column[Any], count: int) -> list[Any]:
    """``count`` values of the column's Python-side default: a constant, or a callable called per row."""
    default = column.default
    if default is None:
        return [None] * count
    if isinstance(default, CallableColumnDefault):
        # SQLAlchemy wraps a zero-argument callable to take the context; ours ignore it.
        return [default.arg(None) for _ in range(count)]  # type: ignore[arg-type]
    if isinstance(default, ScalarElementColumnDefault):
        return [default.arg] * count
    raise TypeError(f"{column} has a SQL expression default: name the column in every row")


def repeats_once(encoder: Encoder) -> Encoder:
    """``encoder``, answering a value that is the very object given just before from memory."""
    last: list[Any] = [object(), None]

    def encode(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, encoder(value)
        return last[1]

    return encode
