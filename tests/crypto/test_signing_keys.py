"""The signing key store under load: one read per refresh, and each private key imported once."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from typing import Any

import orjson
import pytest
from joserfc import jws, jwt
from joserfc.errors import JoseError
from sqlalchemy import event

from consentry.crypto import keys as keys_module
from consentry.crypto.keys import KeyStore
from consentry.runtime import Runtime, utcnow


def fresh_store(runtime: Runtime, *, refresh_interval: float) -> KeyStore:
    return KeyStore(
        runtime.database,
        runtime.changes,
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


async def test_a_rotation_publishes_the_new_keys_before_every_process_signs_with_them(
    runtime: Runtime,
) -> None:
    store, other = fresh_store(runtime, refresh_interval=3600), fresh_store(runtime, refresh_interval=3600)
    now = utcnow()
    await store.ensure_loaded(now=now)
    await other.ensure_loaded(now=now)
    before = store.sign({"sub": "x"}).split(".")[0]
    new_kids = await store.rotate(now=now, activate_after=timedelta(seconds=300))
    published = {key["kid"] for key in store.jwks()["keys"]}
    assert set(new_kids) <= published and len(published) == 4  # the new keys are in the JWKS at once
    assert store.sign({"sub": "x"}).split(".")[0] == before  # the old ones still sign
    await other.ensure_loaded(now=now + timedelta(seconds=299))
    assert other.sign({"sub": "x"}).split(".")[0] == before
    for process in (store, other):  # at the switch, each process signs with the new keys: no reload needed
        await process.ensure_loaded(now=now + timedelta(seconds=301))
        header = process.sign({"sub": "x"}).split(".")[0]
        assert header != before
        assert json.loads(base64.urlsafe_b64decode(header + "=="))["kid"] in new_kids


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_compact_signer_makes_what_joserfc_makes_and_joserfc_verifies_it(alg: str) -> None:
    """The signer checks and encodes each header once; its tokens must still be joserfc's compact JWS, byte
    for byte but the (randomised, for ECDSA) signature."""
    key = keys_module._generate(alg)
    signer = keys_module.CompactSigner(key, alg)
    claims = {"iss": "https://id.example.com", "sub": "ü/x?=&", "aud": ["a", "b"], "exp": 2_000_000_000}
    payload = orjson.dumps(claims)
    for typ in ("at+jwt", "JWT", "at+jwt"):
        token = signer.sign(payload, typ)
        header = {"alg": alg, "kid": key.kid, "typ": typ}
        expected = jws.serialize_compact(header, payload, key, algorithms=[alg])
        assert token.split(".")[:2] == expected.split(".")[:2]
        decoded = jwt.decode(token, key, algorithms=[alg])
        assert decoded.header == header
        assert decoded.claims == claims


def test_compact_signer_refuses_a_key_of_another_algorithm() -> None:
    with pytest.raises(JoseError):
        keys_module.CompactSigner(keys_module._generate("RS256"), "ES256")
