"""Group commit and batched reads on SQLite and PostgreSQL: shared transactions, exact claims, isolation."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from consentry.crypto.hashing import token_hash
from consentry.domain.consent import ConsentStatus
from consentry.domain.scopes import Scopes
from consentry.runtime import Runtime, utcnow
from consentry.storage.audit import audit_row
from consentry.storage.batched_reads import BatchedReader
from consentry.storage.consents import LIVE_CONSENT
from consentry.storage.group_commit import Claim, ClaimLost, WriteUnit
from consentry.storage.tables import AccessToken, AuditEvent, AuthorizationCode, Consent
from consentry.storage.tokens import (
    AUTHORIZATION_CODES,
    CODE_USE,
    REFRESH_ROTATION,
    token_row,
)
from tests.oauth import App, Person, make_app, make_person


async def audit_count(runtime: Runtime, event_type: str) -> int:
    async with runtime.database.read_only() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type == event_type)
        )
    return int(count or 0)


@contextlib.contextmanager
def on_every_engine(record: Callable[..., None]) -> Iterator[None]:
    """``record`` sees each statement any engine runs meanwhile: batches run on SQLite's writer thread, or on
    PostgreSQL on a connection the group committer holds, neither of them the pool's engine."""
    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def test_concurrent_writes_share_transactions(runtime: Runtime) -> None:
    statements: list[str] = []

    def counted(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split()[0].upper())

    now = utcnow()
    with on_every_engine(counted):
        await asyncio.gather(
            *(runtime.writes.write(WriteUnit(rows=(audit_row("grouped", now=now),))) for _ in range(50))
        )
    assert await audit_count(runtime, "grouped") == 50
    assert 1 <= len(statements) <= 3, statements  # one INSERT per batch, not one per unit


async def test_a_caller_that_goes_away_leaves_its_unit_and_the_others_written(runtime: Runtime) -> None:
    now = utcnow()
    writes = [
        asyncio.create_task(runtime.writes.write(WriteUnit(rows=(audit_row("left", now=now),))))
        for _ in range(3)
    ]
    await asyncio.sleep(0)  # each has handed its unit over
    writes[1].cancel()
    await asyncio.gather(writes[0], writes[2])
    with pytest.raises(asyncio.CancelledError):
        await writes[1]
    await runtime.writes.drain()
    assert await audit_count(runtime, "left") == 3


async def test_group_commit_waits_for_the_write_lock_on_sqlite(runtime: Runtime) -> None:
    """Group commit writes without an ORM session, yet still in its turn among this process's writers."""
    if runtime.database.dialect != "sqlite":
        pytest.skip("PostgreSQL has no process write lock: its transactions run side by side")
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_a_unit_of_work() -> None:
        async with runtime.database.unit_of_work():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold_a_unit_of_work())
    await holding.wait()
    grouped = asyncio.create_task(runtime.writes.write(WriteUnit(rows=(audit_row("queued", now=utcnow()),))))
    await asyncio.sleep(0.1)
    assert not grouped.done()
    release.set()
    await asyncio.gather(holder, grouped)
    assert await audit_count(runtime, "queued") == 1


async def test_a_read_on_postgresql_opens_no_transaction_block(runtime: Runtime) -> None:
    """One round trip per read, not BEGIN, the query and ROLLBACK."""
    if runtime.database.dialect != "postgresql":
        pytest.skip("SQLite's driver begins nothing for a read")
    async with runtime.database.read_connection() as connection:
        assert (await connection.execute(select(func.count()).select_from(AuditEvent))).scalar_one() >= 0
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None and not driver.is_in_transaction()
    async with runtime.database.engine.connect() as connection:  # the engine's own connections still do
        await connection.execute(select(func.count()).select_from(AuditEvent))
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None and driver.is_in_transaction()


async def write_code(runtime: Runtime, app: App, person: Person, consent_id: uuid.UUID | None) -> bytes:
    now = utcnow()
    digest = token_hash(uuid.uuid4().hex)
    row = {
        "code_hash": digest,
        "client_id": app.client_id,
        "user_id": person.user_id,
        "consent_id": consent_id,
        "redirect_uri": app.redirect_uri,
        "scopes": Scopes.parse("openid"),
        "auth_time": now,
        "family_id": uuid.uuid4(),
        "created_at": now,
        "expires_at": now + timedelta(minutes=1),
    }
    await runtime.writes.write(WriteUnit(rows=((AUTHORIZATION_CODES, row),)))
    return digest


async def write_refresh_token(runtime: Runtime, app: App, person: Person, consent_id: uuid.UUID) -> bytes:
    now = utcnow()
    digest = token_hash(uuid.uuid4().hex)
    row = token_row(
        "refresh",
        token_hash=digest,
        client_id=app.client_id,
        user_id=person.user_id,
        family_id=uuid.uuid4(),
        consent_id=consent_id,
        scopes=Scopes.parse("openid"),
        created_at=now,
        expires_at=now + timedelta(days=1),
    )
    await runtime.writes.write(WriteUnit(rows=(row,)))
    return digest


async def test_an_exclusive_claim_is_won_once_within_a_batch(runtime: Runtime) -> None:
    app, person = await make_app(runtime), await make_person(runtime)
    digest = await write_code(runtime, app, person, None)
    now = utcnow()
    attempts = [
        runtime.writes.write(WriteUnit(rows=(audit_row("won", now=now),), claim=Claim(CODE_USE, digest, now)))
        for _ in range(5)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert sum(result is None for result in results) == 1
    assert sum(isinstance(result, ClaimLost) for result in results) == 4
    assert await audit_count(runtime, "won") == 1  # the losers' rows were not written
    async with runtime.database.read_only() as session:
        stored = await session.get(AuthorizationCode, digest)
    assert stored is not None and stored.used_at is not None


async def add_consent(runtime: Runtime, app: App, person: Person, status: ConsentStatus) -> uuid.UUID:
    now = utcnow()
    async with runtime.database.unit_of_work() as session:
        consent = Consent(
            user_id=person.user_id,
            client_id=app.client_id,
            scopes=Scopes.parse("openid"),
            declined_scopes=Scopes(),
            status=status,
            granted_at=now,
            updated_at=now,
            expires_at=now + timedelta(days=1),
        )
        session.add(consent)
        await session.flush()
        return consent.id


async def test_a_code_claim_needs_its_consent_live(runtime: Runtime) -> None:
    app, person = await make_app(runtime), await make_person(runtime)
    revoked = await add_consent(runtime, app, person, ConsentStatus.REVOKED)
    digest = await write_code(runtime, app, person, revoked)
    now = utcnow()
    with pytest.raises(ClaimLost):
        await runtime.writes.write(WriteUnit(claim=Claim(CODE_USE, digest, now)))
    async with runtime.database.read_only() as session:
        stored = await session.get(AuthorizationCode, digest)
    assert stored is not None and stored.used_at is None


@pytest.mark.parametrize("kind", ["code", "refresh token"])
async def test_a_claim_waits_for_a_revocation_in_progress_and_then_loses(runtime: Runtime, kind: str) -> None:
    """A revocation locks the consent, revokes its tokens and commits; a code exchanged (or refresh token
    rotated) meanwhile must not slip in between and leave tokens the revocation did not see."""
    if runtime.database.dialect != "postgresql":
        pytest.skip("SQLite's writers take turns: a claim cannot run inside a revocation")
    app, person = await make_app(runtime), await make_person(runtime)
    consent = await add_consent(runtime, app, person, ConsentStatus.ACTIVE)
    if kind == "code":
        claim_kind, key = CODE_USE, await write_code(runtime, app, person, consent)
    else:
        claim_kind, key = REFRESH_ROTATION, await write_refresh_token(runtime, app, person, consent)
    now = utcnow()
    async with runtime.database.engine.connect() as revocation:
        await revocation.execute(select(Consent.id).where(Consent.id == consent).with_for_update())
        await revocation.execute(
            update(Consent).where(Consent.id == consent).values(status=ConsentStatus.REVOKED, revoked_at=now)
        )
        claim = asyncio.create_task(runtime.writes.write(WriteUnit(claim=Claim(claim_kind, key, now))))
        await asyncio.sleep(0.3)
        assert not claim.done()  # it waits for the revocation to end
        await revocation.commit()
    with pytest.raises(ClaimLost):
        await claim


async def test_a_shared_claim_holds_for_every_unit_while_the_consent_is_live(runtime: Runtime) -> None:
    app, person = await make_app(runtime), await make_person(runtime)
    live = await add_consent(runtime, app, person, ConsentStatus.ACTIVE)
    gone = await add_consent(runtime, await make_app(runtime), person, ConsentStatus.REVOKED)
    now = utcnow()

    def unit(consent_id: uuid.UUID) -> WriteUnit:
        return WriteUnit(
            rows=(audit_row(f"code {consent_id}", now=now),), claim=Claim(LIVE_CONSENT, consent_id, now)
        )

    results = await asyncio.gather(
        *(runtime.writes.write(unit(consent)) for consent in (live, live, live, gone)), return_exceptions=True
    )
    assert results[:3] == [None, None, None]
    assert isinstance(results[3], ClaimLost)
    assert await audit_count(runtime, f"code {live}") == 3
    assert await audit_count(runtime, f"code {gone}") == 0


async def test_a_batch_of_several_claim_kinds_writes_exactly_the_units_whose_claims_hold(
    runtime: Runtime,
) -> None:
    """Codes (exclusive, one presented twice), consents (shared, one revoked) and rows alone in one batch."""
    app, person = await make_app(runtime), await make_person(runtime)
    live = await add_consent(runtime, app, person, ConsentStatus.ACTIVE)
    gone = await add_consent(runtime, await make_app(runtime), person, ConsentStatus.REVOKED)
    code, used = await write_code(runtime, app, person, None), await write_code(runtime, app, person, None)
    now = utcnow()
    await runtime.writes.write(WriteUnit(claim=Claim(CODE_USE, used, now)))

    def unit(tag: str, claim: Claim | None) -> WriteUnit:
        return WriteUnit(rows=(audit_row(f"mixed {tag}", now=now), audit_row("mixed", now=now)), claim=claim)

    units = {
        "code": unit("code", Claim(CODE_USE, code, now)),
        "code again": unit("code again", Claim(CODE_USE, code, now)),
        "used code": unit("used code", Claim(CODE_USE, used, now)),
        "live consent": unit("live consent", Claim(LIVE_CONSENT, live, now)),
        "live consent too": unit("live consent too", Claim(LIVE_CONSENT, live, now)),
        "revoked consent": unit("revoked consent", Claim(LIVE_CONSENT, gone, now)),
        "rows alone": unit("rows alone", None),
    }
    results = dict(
        zip(
            units,
            await asyncio.gather(*map(runtime.writes.write, units.values()), return_exceptions=True),
            strict=True,
        )
    )
    written = {"code", "live consent", "live consent too", "rows alone"}
    assert {tag for tag, result in results.items() if result is None} == written
    assert all(isinstance(results[tag], ClaimLost) for tag in units.keys() - written)
    for tag in units:
        assert await audit_count(runtime, f"mixed {tag}") == (1 if tag in written else 0)
    assert await audit_count(runtime, "mixed") == len(written)  # rows of one shape from several units


async def test_a_unit_that_cannot_be_written_fails_alone(runtime: Runtime) -> None:
    app = await make_app(runtime)
    now = utcnow()

    def token(client_id: str) -> WriteUnit:
        row = token_row(
            "access",
            token_hash=token_hash(uuid.uuid4().hex),
            client_id=client_id,
            scopes=Scopes(),
            created_at=now,
            expires_at=now + timedelta(minutes=5),
        )
        return WriteUnit(rows=(row, audit_row("isolated", now=now, client_id=client_id)))

    results = await asyncio.gather(
        *(runtime.writes.write(token(client)) for client in (app.client_id, "no-such-client", app.client_id)),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], IntegrityError)  # a foreign key: the client does not exist
    assert await audit_count(runtime, "isolated") == 2


# --- batched reads (no database: the reader is generic) ---------------------------------------------


async def test_concurrent_lookups_share_one_query() -> None:
    queries: list[list[int]] = []

    async def fetch(keys: Sequence[int]) -> dict[int, str]:
        queries.append(list(keys))
        await asyncio.sleep(0)
        return {key: f"row {key}" for key in keys if key % 2 == 0}

    reader: BatchedReader[int, str] = BatchedReader(fetch)
    first = await reader.get(0)  # alone: a query of its own
    found = await asyncio.gather(*(reader.get(key) for key in (1, 2, 2, 3, 4)))
    assert first == "row 0"
    assert found == [None, "row 2", "row 2", None, "row 4"]
    assert queries == [[0], [1, 2, 3, 4]]  # a repeated key is asked for once


async def test_a_failed_query_fails_its_lookups_and_the_next_one_runs() -> None:
    calls = 0

    async def fetch(keys: Sequence[int]) -> dict[int, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return {key: key for key in keys}

    reader: BatchedReader[int, int] = BatchedReader(fetch)
    results = await asyncio.gather(reader.get(1), reader.get(2), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert await reader.get(3) == 3


async def test_lookups_beyond_the_limit_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []

    async def fetch(keys: Sequence[int]) -> dict[int, int]:
        sizes.append(len(keys))
        return {key: key for key in keys}

    reader: BatchedReader[int, int] = BatchedReader(fetch, max_keys=3)
    assert await asyncio.gather(*(reader.get(key) for key in range(7))) == list(range(7))
    assert sizes == [3, 3, 1]


async def test_rows_alone_are_one_statement_outside_a_transaction_block_on_postgresql(
    runtime: Runtime,
) -> None:
    """A batch of tokens issued writes two tables: one round trip, not BEGIN, two INSERTs and COMMIT."""
    if runtime.database.dialect != "postgresql":
        pytest.skip("SQLite runs the batch on its writer thread, in one hand-over already")
    app = await make_app(runtime)
    now = utcnow()
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement.split()[0].upper(), conn.connection.driver_connection.is_in_transaction()))

    def issued(n: int) -> WriteUnit:
        row = token_row(
            "access",
            token_hash=token_hash(f"one statement {n}"),
            client_id=app.client_id,
            scopes=Scopes.parse("openid email"),
            created_at=now,
            expires_at=now + timedelta(minutes=5),
        )
        return WriteUnit(rows=(row, audit_row("one statement", now=now, client_id=app.client_id)))

    def checked_out(*_: Any) -> None:
        checkouts.append(1)

    checkouts: list[int] = []
    pool = runtime.database.engine.sync_engine.pool
    event.listen(pool, "checkout", checked_out)
    try:
        with on_every_engine(record):
            await asyncio.gather(*(runtime.writes.write(issued(n)) for n in range(20)))
            await asyncio.gather(*(runtime.writes.write(issued(n)) for n in range(20, 30)))
    finally:
        event.remove(pool, "checkout", checked_out)
    assert seen and all(entry == ("WITH", False) for entry in seen), seen
    assert checkouts == []  # the group committer keeps a connection of its own: no checkout per batch
    assert await audit_count(runtime, "one statement") == 30
    async with runtime.database.read_only() as session:
        scopes = await session.scalars(
            select(AccessToken.scopes).where(AccessToken.client_id == app.client_id)
        )
        assert list(scopes) == [Scopes.parse("openid email")] * 30


async def test_rows_of_one_table_naming_different_columns_keep_all_their_values(runtime: Runtime) -> None:
    """A bulk insert takes its columns from its first row: rows of another shape get an insert of theirs."""
    now = utcnow()
    plain = audit_row("shapes", now=now)
    detailed = (plain[0], {**plain[1], "details": {"kept": True}})
    fewer = (plain[0], {k: v for k, v in plain[1].items() if k not in ("details", "scopes")})
    await asyncio.gather(*(runtime.writes.write(WriteUnit(rows=(row,))) for row in (fewer, detailed, plain)))
    async with runtime.database.read_only() as session:
        details = await session.scalars(select(AuditEvent.details).where(AuditEvent.event_type == "shapes"))
        assert sorted(details, key=str) == [None, None, {"kept": True}]


async def test_claims_and_their_rows_are_one_statement_on_postgresql(runtime: Runtime) -> None:
    """Codes exchanged together: one round trip (the claim and the rows it guards), not BEGIN, an UPDATE,
    the INSERTs and COMMIT."""
    if runtime.database.dialect != "postgresql":
        pytest.skip("SQLite runs the batch on its writer thread, in one hand-over already")
    app, person = await make_app(runtime), await make_person(runtime)
    codes = [await write_code(runtime, app, person, None) for _ in range(10)]
    now = utcnow()
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement.split()[0].upper(), conn.connection.driver_connection.is_in_transaction()))

    def exchange(code: bytes) -> WriteUnit:
        return WriteUnit(rows=(audit_row("exchanged", now=now),), claim=Claim(CODE_USE, code, now))

    with on_every_engine(record):
        results = await asyncio.gather(
            *(runtime.writes.write(exchange(code)) for code in codes + codes[:3]), return_exceptions=True
        )
    assert seen and all(entry == ("WITH", False) for entry in seen), seen
    assert results[:10] == [None] * 10
    assert all(isinstance(result, ClaimLost) for result in results[10:])
    assert await audit_count(runtime, "exchanged") == 10
