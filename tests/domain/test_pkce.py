from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain import pkce

# RFC 7636 Appendix B test vector.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rfc7636_appendix_b_vector() -> None:
    assert pkce.s256_challenge(VERIFIER) == CHALLENGE
    assert pkce.verify(VERIFIER, CHALLENGE, "S256")


@pytest.mark.parametrize(
    ("verifier", "method"),
    [(VERIFIER + "x", "S256"), (None, "S256"), ("short", "S256"), (VERIFIER, "plain"), ("é" * 43, "S256")],
    ids=["wrong", "missing", "too-short", "plain-method", "non-ascii"],
)
def test_verify_refuses(verifier: str | None, method: str) -> None:
    assert not pkce.verify(verifier, CHALLENGE, method)


@pytest.mark.parametrize(
    ("challenge", "method"),
    [
        (CHALLENGE, "plain"),
        (CHALLENGE, None),
        (None, "S256"),
        ("abc", "S256"),
        (CHALLENGE + "=", "S256"),
        (CHALLENGE, "s256"),
    ],
    ids=["plain", "method-defaults-to-plain", "method-without-challenge", "too-short", "padded", "lowercase"],
)
def test_validate_challenge_refuses(challenge: str | None, method: str | None) -> None:
    with pytest.raises(pkce.PKCEError):
        pkce.validate_challenge(challenge, method)


def test_validate_challenge_accepts_s256_and_absence() -> None:
    assert pkce.validate_challenge(CHALLENGE, "S256") == (CHALLENGE, "S256")
    assert pkce.validate_challenge(None, None) is None


@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~",
        min_size=43,
        max_size=128,
    )
)
def test_any_valid_verifier_round_trips(verifier: str) -> None:
    assert pkce.verify(verifier, pkce.s256_challenge(verifier), "S256")
