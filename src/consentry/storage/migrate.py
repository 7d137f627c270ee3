"""Apply Alembic migrations from async code (the cookbook's "connection in config.attributes" pattern)."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from consentry.storage.database import Database


def alembic_config(url: str) -> Config:
    """An Alembic config that needs no alembic.ini: the scripts ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(files("consentry") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # Revision files named by date and slug: 2026_11_22_1700-<rev>_initial_schema.py
    config.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s"
    )
    return config


async def upgrade_to_head(database: Database) -> None:
    """Bring the schema to the newest revision, in one transaction (PostgreSQL DDL is transactional)."""

    def _upgrade(connection: Connection) -> None:
        config = alembic_config(database.url)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with database.unbounded_connection() as connection:
        await connection.run_sync(_upgrade)


async def current_revision(database: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as connection:
        return await connection.run_sync(_current)
