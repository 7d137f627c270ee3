"""Alembic environment (async). Used by `consentry migrate`, `consentry serve` and `alembic` itself."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, text

from consentry.storage.database import MIGRATIONS_LOCK, create_engine
from consentry.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch ALTER rebuilds a table: it drops it and renames a copy. With foreign keys on, dropping the
        # clients' table would first delete every client, and ON DELETE CASCADE every token and consent.
        # SQLite heeds this only outside a transaction, so before the first write; whoever hands in the
        # connection turns them on again afterwards (Database.unbounded_connection; _run_async disposes it).
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    elif connection.dialect.name == "postgresql":
        # Nodes started together: one migrates, the others wait for it and then find nothing to do.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATIONS_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,  # SQLite ALTERs go through table copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
            raise RuntimeError(f"the migration left rows that refer to nothing: {broken[:5]}")


async def _run_async() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    asyncio.run(_run_async())
