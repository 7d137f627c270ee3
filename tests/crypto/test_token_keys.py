"""Opaque tokens: 256 random bits behind a locator; stored as the locator and the SHA-256 of all of it."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re

import orjson
from hypothesis import given
from hypothesis import strategies as st

from consentry.crypto.hashing import new_jti, new_secret, new_token, token_hash

BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
TOKEN_SHAPED = st.from_regex(BASE64URL, fullmatch=True).filter(lambda text: len(text) >= 8)


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def test_a_token_is_a_base64url_locator_then_256_random_bits() -> None:
    tokens = [new_token() for _ in range(1_000)]
    assert all(len(token) == 51 and BASE64URL.fullmatch(token) for token in tokens)
    secrets = {base64.urlsafe_b64decode(token[8:] + "=") for token in tokens}
    assert len(secrets) == 1_000
    assert {len(secret) for secret in secrets} == {32}


def test_a_token_is_stored_as_its_locator_then_the_sha256_of_all_of_it() -> None:
    token = new_token()
    key = token_hash(token)
    assert key == base64.urlsafe_b64decode(token[:8]) + _sha256(token)
    assert token.encode() not in key and token[8:].encode() not in key


def test_keys_of_tokens_issued_together_sit_together_in_the_order_they_were_issued() -> None:
    keys = [token_hash(new_token()) for _ in range(1_000)]
    # The locator moves on every ~15 µs, so tokens issued within one tick share it and sort by their digests.
    for earlier, later in itertools.pairwise(keys):
        if earlier[:4] == later[:4]:  # the same second
            assert earlier[:6] <= later[:6]
    assert len({key[:4] for key in keys}) <= 3  # issued within a second or two


def test_a_token_issued_before_locators_keeps_its_plain_sha256() -> None:
    legacy = new_secret()  # the shape every token had: 256 bits, 43 characters
    assert len(legacy) == 43
    assert token_hash(legacy) == _sha256(legacy)


def test_a_string_of_a_token_length_whose_head_is_no_locator_is_keyed_by_its_digest_alone() -> None:
    for text in ("." * 51, "é" * 51, "abc=defg" + "x" * 43):
        assert token_hash(text) == _sha256(text)


@given(st.text(max_size=80), st.text(max_size=80))
def test_any_string_has_one_key_which_ends_in_its_digest_and_no_other_string_shares(a: str, b: str) -> None:
    assert token_hash(a) == token_hash(a)
    assert token_hash(a).endswith(_sha256(a))
    assert (token_hash(a) == token_hash(b)) == (a == b)


@given(TOKEN_SHAPED.map(lambda text: (text * 51)[:51]))
def test_any_token_shaped_string_is_keyed_by_its_head_and_digest(text: str) -> None:
    assert token_hash(text) == base64.urlsafe_b64decode(text[:8]) + _sha256(text)


def test_a_jwt_access_token_is_stored_under_its_jtis_locator() -> None:
    # RFC 9068 tokens issued in one second go into neighbouring index pages too, not one page each.
    jti = new_jti()
    payload = base64.urlsafe_b64encode(orjson.dumps({"iss": "x", "jti": jti})).decode().rstrip("=")
    token = f"eyJhbGciOiJFUzI1NiJ9.{payload}.c2lnbmF0dXJl"
    key = token_hash(token)
    assert key[:6] == base64.urlsafe_b64decode(jti[:8])
    assert key[6:] == hashlib.sha256(token.encode()).digest()
    assert token_hash(token, jti=jti) == key  # what the issuer stores is what a presenter looks up
    for odd in ("a.b.c", "a.!!!.c", f"x.{base64.urlsafe_b64encode(b'[1]').decode()}.y"):
        assert token_hash(odd) == hashlib.sha256(odd.encode()).digest()  # any string: a key, never an error
