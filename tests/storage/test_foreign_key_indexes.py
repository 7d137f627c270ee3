"""Every foreign key the database acts on has an index: deleting a user, a client or a consent finds the rows
that refer to it without reading whole tables."""

from __future__ import annotations

import pytest
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


async def _plan(runtime: Runtime, statement: str, parameters: dict[str, tuple[str, object]]) -> str:
    """The plan of ``statement`` (``:name`` parameters, each with its PostgreSQL type and a value) for any
    value: on PostgreSQL a generic plan, with sequential scans priced out, so an index it can use is named."""
    async with runtime.database.engine.connect() as connection:
        if runtime.database.dialect == "postgresql":
            numbered = statement
            for position, name in enumerate(parameters, start=1):
                numbered = numbered.replace(f":{name}", f"${position}")
            types = ", ".join(sql_type for sql_type, _ in parameters.values())
            await connection.execute(text("SET enable_seqscan = off"))
            await connection.execute(text("SET plan_cache_mode = force_generic_plan"))
            await connection.execute(text(f"PREPARE planned({types}) AS {numbered}"))
            nulls = ", ".join("NULL" for _ in parameters)
            rows = (await connection.execute(text(f"EXPLAIN EXECUTE planned({nulls})"))).scalars()
            plan = "\n".join(rows)
            await connection.execute(text("DEALLOCATE planned"))  # it would outlive the transaction
        else:
            values = {name: value for name, (_, value) in parameters.items()}
            rows = await connection.execute(text(f"EXPLAIN QUERY PLAN {statement}"), values)
            plan = "\n".join(str(row[-1]) for row in rows)
        await connection.rollback()
    return plan


async def test_deleting_a_consent_finds_its_tokens_and_codes_through_an_index(runtime: Runtime) -> None:
    """The statement the database runs for ``ON DELETE SET NULL`` (a parameter against the column) may use the
    partial indexes."""
    for table in ("access_tokens", "refresh_tokens", "authorization_codes"):
        plan = await _plan(
            runtime,
            f"UPDATE {table} SET consent_id = NULL WHERE :consent = consent_id",
            {"consent": ("uuid", "0" * 32)},
        )
        assert f"ix_{table}_consent_id" in plan, plan


_ANY_UUID = ("uuid", "0" * 32)


@pytest.mark.parametrize(
    ("index", "statement", "parameters"),
    [
        (  # revoking a consent's tokens
            "ix_access_tokens_user_id_client_id",
            "UPDATE access_tokens SET revoked_at = NULL WHERE user_id = :person AND client_id = :client",
            {"person": _ANY_UUID, "client": ("varchar", "c")},
        ),
        (  # the database's own ON DELETE CASCADE when a person is purged
            "ix_access_tokens_user_id_client_id",
            "DELETE FROM access_tokens WHERE :person = user_id",
            {"person": _ANY_UUID},
        ),
        (  # a reused refresh token revokes its family
            "ix_access_tokens_family_id",
            "UPDATE access_tokens SET revoked_at = NULL WHERE family_id = :family",
            {"family": _ANY_UUID},
        ),
        (  # the audit trail of one person, newest first (admin filter, GDPR export)
            "ix_audit_events_user_id_occurred_at",
            "SELECT id FROM audit_events WHERE user_id = :person ORDER BY occurred_at DESC LIMIT 50",
            {"person": _ANY_UUID},
        ),
    ],
)
async def test_indexes_of_rows_that_have_a_value_serve_lookups_by_value(
    runtime: Runtime, index: str, statement: str, parameters: dict[str, tuple[str, object]]
) -> None:
    """These indexes leave out rows whose first column is NULL (client-credentials tokens have no person or
    family); every lookup compares that column to a value, so each can still use them."""
    plan = await _plan(runtime, statement, parameters)
    assert index in plan, plan
