"""Every foreign key the database acts on has an index: deleting a user, a client or a consent finds the rows
that refer to it without reading whole tables."""

from __future__ import annotations

from sqlalchemy import Table, text

from consentry.runtime import Runtime
from consentry.storage.tables import Base

# Parents never deleted: pseudonym versions are retired, not removed (the pseudonyms made with them stay).
NEVER_DELETED = {"pseudonym_versions"}


def _leading_columns(table: Table) -> list[list[str]]:
    led = [[column.name for column in index.columns] for index in table.indexes]
    led.append([column.name for column in table.primary_key.columns])
    for constraint in table.constraints:
        columns = getattr(constraint, "columns", None)
        if columns is not None and constraint.__class__.__name__ == "UniqueConstraint":
            led.append([column.name for column in columns])
    return led


def test_every_foreign_key_leads_an_index() -> None:
    unindexed = []
    for table in Base.metadata.sorted_tables:
        led = _leading_columns(table)
        for key in table.foreign_key_constraints:
            columns = [column.name for column in key.columns]
            if key.referred_table.name in NEVER_DELETED:
                continue
            if not any(lead[: len(columns)] == columns for lead in led):
                unindexed.append(f"{table.name}({', '.join(columns)}) → {key.referred_table.name}")
    assert unindexed == []


async def test_deleting_a_consent_finds_its_tokens_and_codes_through_an_index(runtime: Runtime) -> None:
    """The statement the database runs for ``ON DELETE SET NULL`` (a parameter against the column) may use the
    partial indexes: on PostgreSQL, with sequential scans priced out, the plan still names them."""
    postgresql = runtime.database.dialect == "postgresql"
    async with runtime.database.engine.connect() as connection:
        for table in ("access_tokens", "refresh_tokens", "authorization_codes"):
            if postgresql:
                await connection.execute(text("SET enable_seqscan = off"))
                await connection.execute(
                    text(
                        f"PREPARE set_null_{table}(uuid) AS "
                        f"UPDATE ONLY {table} SET consent_id = NULL WHERE $1 = consent_id"
                    )
                )
                await connection.execute(text("SET plan_cache_mode = force_generic_plan"))
                plan = "\n".join(
                    (await connection.execute(text(f"EXPLAIN EXECUTE set_null_{table}(NULL)"))).scalars()
                )
            else:
                set_null = f"UPDATE {table} SET consent_id = NULL WHERE consent_id = :consent"
                rows = await connection.execute(text(f"EXPLAIN QUERY PLAN {set_null}"), {"consent": "0" * 32})
                plan = "\n".join(str(row[-1]) for row in rows)
            assert f"ix_{table}_consent_id" in plan, plan
        await connection.rollback()
