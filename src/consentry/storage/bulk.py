"""Many rows into one table through the driver's executemany, each value encoded once per column.

SQLAlchemy's executemany builds and processes a parameter dict per row, several times the driver's own cost
(for a thousand registrations most of the consumer's time on SQLite). Here the INSERT is
compiled once per table and column set, each column's bind processor runs over the batch, and a value that is
the very object of the row before (a batch's ``now``) is encoded once. Columns a row leaves out take their
Python-side default, as SQLAlchemy would give them, or their server default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Guard:
    """A statement that runs first, inside the same statement, and whose rows' first column are keys (a
    claim: ``UPDATE ... WHERE key = ANY(...) AND used_at IS NULL RETURNING key``). A row inserted beside it
    that names a key for it is written only if the guard returned that key."""

    sql: str  # its own placeholders, from $1; no literals (values are bound), so they can be renumbered
    parameters: tuple[Any, ...]  # their values, encoded for the driver
    key_type: str  # the keys' SQL type: the key each row names goes in as one array of it
    encode_key: Encoder | None


def insert_tables_in_one_statement(
    connection: Connection,
    batches: Sequence[tuple[Table, list[dict[str, Any]]]],
    *,
    guards: Sequence[Guard] = (),
    row_keys: Sequence[list[list[Any]]] = (),
) -> list[set[Any]]:
    """PostgreSQL: every table's rows in one statement, which is atomic on its own. Each table is a
    data-modifying ``WITH`` over ``unnest`` of one array per column; foreign keys are checked at the
    statement's end, so tables referring to each other can share it. Outside a transaction block this is one
    round trip instead of four (BEGIN, an INSERT per table, COMMIT). The rows of each of ``batches`` name the
    same columns; a table may come more than once.

    With ``guards``, ``row_keys[b][g]`` holds the key each row of ``batches[b]`` names for ``guards[g]``
    (None: none); a row is inserted only if every key it names was returned by its guard. Returns the keys
    each guard returned."""
    dialect = connection.dialect
    shape = tuple((table, tuple(rows[0])) for table, rows in batches)
    guard_shape = tuple((guard.sql, len(guard.parameters), guard.key_type) for guard in guards)
    sql, layouts = _one_statement(shape, guard_shape, dialect)
    parameters: list[Any] = [value for guard in guards for value in guard.parameters]
    for position, ((table, rows), (names, encoders)) in enumerate(zip(batches, layouts, strict=True)):
        parameters.extend(encoded_columns(rows, names, encoders, defaults_from=table))
        for guard, keys in zip(guards, row_keys[position] if guards else (), strict=True):
            encode = guard.encode_key
            parameters.append(keys if encode is None else [None if k is None else encode(k) for k in keys])
    result = connection.exec_driver_sql(sql, tuple(parameters))
    if not guards:
        return []
    return [set(returned) for returned in result.one()]


# Per table: the column of each array in order, and their encoders.
_Layout = tuple[list[str], list[Encoder | None]]
_Shape = tuple[tuple[Table, tuple[str, ...]], ...]
_GuardShape = tuple[tuple[str, int, str], ...]  # per guard: its text, how many parameters, its keys' type
_one_statements: dict[tuple[_Shape, _GuardShape, str], tuple[str, list[_Layout]]] = {}
_PLACEHOLDER = re.compile(r"\$(\d+)")


def _one_statement(shape: _Shape, guards: _GuardShape, dialect: Dialect) -> tuple[str, list[_Layout]]:
    # Identifiers quoted by the dialect, values bound: nothing from a request enters the text (the S608s).
    key = (shape, guards, dialect.name)
    if key not in _one_statements:
        quote = dialect.identifier_preparer
        ctes, inserts, layouts, position = [], [], [], 0
        for number, (guard_sql, count, _) in enumerate(guards):
            ctes.append(f"g{number}(key) AS ({_renumbered(guard_sql, position)})")
            position += count
        # A row is inserted if each key it names (k0, k1, ...) was returned by its guard (g0, g1, ...).
        held = " AND ".join(
            f"(k{n} IS NULL OR k{n} IN (SELECT key FROM g{n}))"  # noqa: S608
            for n in range(len(guards))
        )
        for table, given in shape:
            _, names, encoders = _insert_statement(table, given, dialect)
            types = [f"{table.c[name].type.compile(dialect=dialect)}[]" for name in names]
            types += [f"{key_type}[]" for _, _, key_type in guards]
            arrays = ", ".join(f"${position + n}::{kind}" for n, kind in enumerate(types, start=1))
            position += len(types)
            values = [f"v{n}" for n in range(len(names))]
            source = f"SELECT * FROM unnest({arrays})"  # noqa: S608
            if guards:
                aliases = ", ".join(values + [f"k{n}" for n in range(len(guards))])
                source = f"SELECT {', '.join(values)} FROM unnest({arrays}) AS u({aliases}) WHERE {held}"  # noqa: S608
            columns = ", ".join(quote.quote(name) for name in names)
            inserts.append(f"INSERT INTO {quote.format_table(table)} ({columns}) {source}")
            layouts.append((names, encoders))
        if guards:  # every INSERT is a WITH; the statement returns what each guard returned
            last = "SELECT " + ", ".join(f"ARRAY(SELECT key FROM g{n})" for n in range(len(guards)))  # noqa: S608
        else:
            *inserts, last = inserts
        ctes += [f"i{n} AS ({insert})" for n, insert in enumerate(inserts)]
        prefix = "WITH " + ", ".join(ctes) + " " if ctes else ""
        _one_statements[key] = (prefix + last, layouts)
    return _one_statements[key]


def _renumbered(sql: str, offset: int) -> str:
    """``sql`` with its placeholders $1, $2... moved up by ``offset``."""
    if "'" in sql:  # a literal could hold what looks like a placeholder
        raise ValueError("a guard's values must all be bound parameters")
    return _PLACEHOLDER.sub(lambda match: f"${int(match.group(1)) + offset}", sql)


def _insert_statement(table: Table, given: tuple[str, ...], dialect: Dialect) -> _Insert:
    """Built once per table, column set and dialect: group commit inserts a batch per table many times a
    second, and looking the encoders up is a noticeable part of a token row's cost."""
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
