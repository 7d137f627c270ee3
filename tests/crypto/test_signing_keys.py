"""The signing key store under load: one read per refresh, and each private key imported once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from consentry.crypto import keys as keys_module
from consentry.crypto.keys import KeyStore
from consentry.runtime import Runtime, utcnow


def fresh_store(runtime: Runtime, *, refresh_interval: float) -> KeyStore:
    return KeyStore(
        runtime.database,
        encryption_key=b"k" * 32,
        token_lifetime=runtime.lifetimes.access_token,
        refresh_interval=refresh_interval,
    )


async def test_refreshes_read_once_and_never_import_a_known_key_again(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = fresh_store(runtime, refresh_interval=0)  # every call finds the keys stale
    await store.ensure_loaded(now=utcnow())  # first start: creates one key per algorithm
    imports: list[str] = []
    original = keys_module._import

    def counted(private_jwk: dict[str, Any]) -> keys_module.SigningJWK:
        imports.append(private_jwk["kty"])
        return original(private_jwk)

    monkeypatch.setattr(keys_module, "_import", counted)
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM signing_keys" in statement:
            reads.append(statement)

    event.listen(runtime.database.engine.sync_engine, "before_cursor_execute", seen)
    await asyncio.gather(*(store.ensure_loaded(now=utcnow()) for _ in range(20)))
    assert len(reads) == 1
    assert imports == []  # the same keys: nothing re-imported (an RSA import costs ~33 ms)
    kid_before = store.sign({"sub": "x"}).split(".")[0]
    new_kids = await store.rotate(now=utcnow())
    assert sorted(imports) == ["EC", "RSA"]  # the rotated keys, once each
    assert store.verify(store.sign({"sub": "x"})) == {"sub": "x"}
    assert store.sign({"sub": "x"}).split(".")[0] != kid_before
    assert len(new_kids) == 2
