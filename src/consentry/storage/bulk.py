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


def insert_tables_in_one_statement(
    connection: Connection, batches: Sequence[tuple[Table, list[dict[str, Any]]]]
) -> None:
    """PostgreSQL: every table's rows in one statement, which is atomic on its own. Each table is a
    data-modifying ``WITH`` over ``unnest`` of one array per column; foreign keys are checked at the
    statement's end, so tables referring to each other can share it. Outside a transaction block this is one
    round trip instead of four (BEGIN, an INSERT per table, COMMIT). The rows of each of ``batches`` name the
    same columns; a table may come more than once."""
    dialect = connection.dialect
    shape = tuple((table, tuple(rows[0])) for table, rows in batches)
    sql, layouts = _one_statement(shape, dialect)
    parameters: list[list[Any]] = []
    for (table, rows), (names, encoders) in zip(batches, layouts, strict=True):
        parameters.extend(encoded_columns(rows, names, encoders, defaults_from=table))
    connection.exec_driver_sql(sql, tuple(parameters))


# Per table: the column of each array in order, and their encoders.
_Layout = tuple[list[str], list[Encoder | None]]
_one_statements: dict[tuple[tuple[tuple[Table, tuple[str, ...]], ...], str], tuple[str, list[_Layout]]] = {}


def _one_statement(
    shape: tuple[tuple[Table, tuple[str, ...]], ...], dialect: Dialect
) -> tuple[str, list[_Layout]]:
    key = (shape, dialect.name)
    if key not in _one_statements:
        quote = dialect.identifier_preparer
        inserts, layouts, position = [], [], 0
        for table, given in shape:
            _, names, encoders = _insert_statement(table, given, dialect)
            arrays = []
            for name in names:
                position += 1
                arrays.append(f"${position}::{table.c[name].type.compile(dialect=dialect)}[]")
            # Identifiers quoted by the dialect, values bound: nothing from a request enters the text.
            columns, values = ", ".join(quote.quote(name) for name in names), ", ".join(arrays)
            inserts.append(
                f"INSERT INTO {quote.format_table(table)} ({columns}) SELECT * FROM unnest({values})"  # noqa: S608
            )
            layouts.append((names, encoders))
        *ctes, last = inserts
        prefix = "WITH " + ", ".join(f"i{n} AS ({cte})" for n, cte in enumerate(ctes)) + " " if ctes else ""
        _one_statements[key] = (prefix + last, layouts)
    return _one_statements[key]


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
    return list(zip(*encoded_columns(rows, names, encoders, defaults_from=defaults_from), strict=True))


def encoded_columns(
    rows: list[dict[str, Any]],
    names: Sequence[str],
    encoders: Sequence[Encoder | None],
    *,
    defaults_from: Table | None = None,
) -> list[list[Any]]:
    """As :func:`encoded_rows`, a list of values per column."""
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
    return columns


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
