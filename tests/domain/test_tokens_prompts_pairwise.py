from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from consentry.domain import pairwise, tokens
from consentry.domain.prompts import InvalidPrompt, parse_prompt
from consentry.domain.scopes import Scopes

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("requested", "original", "result"),
    [
        (None, "openid email", "openid email"),
        ("", "openid email", "openid email"),
        ("email", "openid email", "email"),
        ("openid email", "openid email", "openid email"),
    ],
    ids=["absent", "empty", "narrower", "same"],
)
def test_refresh_scope_may_narrow(requested: str | None, original: str, result: str) -> None:
    assert tokens.refreshed_scopes(
        None if requested is None else Scopes.parse(requested), Scopes.parse(original)
    ) == Scopes.parse(result)


def test_refresh_scope_may_not_widen() -> None:
    with pytest.raises(tokens.ScopeWidening):
        tokens.refreshed_scopes(Scopes.parse("openid phone"), Scopes.parse("openid email"))


def test_at_hash_matches_oidc_example() -> None:
    # OIDC Core Appendix A.3/A.4 example: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
    assert tokens.at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y") == "77QmUPtjPfzWtF2AnpK9RQ"


@pytest.mark.parametrize(
    ("expires_in", "revoked", "live"),
    [(60, False, True), (-1, False, False), (0, False, False), (60, True, False)],
    ids=["live", "expired", "expiring-now", "revoked"],
)
def test_is_live(expires_in: int, revoked: bool, live: bool) -> None:
    assert (
        tokens.is_live(
            expires_at=NOW + timedelta(seconds=expires_in), revoked_at=NOW if revoked else None, now=NOW
        )
        is live
    )


@pytest.mark.parametrize(
    ("age", "max_age", "too_old"),
    [(10, None, False), (10, 60, False), (61, 60, True), (1, 0, True)],
    ids=["no-max-age", "fresh", "stale", "max-age-zero"],
)
def test_auth_too_old(age: int, max_age: int | None, too_old: bool) -> None:
    assert tokens.auth_too_old(auth_time=NOW - timedelta(seconds=age), max_age=max_age, now=NOW) is too_old


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [(None, set()), ("", set()), ("none", {"none"}), ("login consent", {"login", "consent"})],
    ids=["absent", "empty", "none", "login-consent"],
)
def test_parse_prompt(raw: str | None, parsed: set[str]) -> None:
    assert parse_prompt(raw) == parsed


@pytest.mark.parametrize("raw", ["none login", "sometimes"], ids=["none-combined", "unknown"])
def test_parse_prompt_refuses(raw: str) -> None:
    with pytest.raises(InvalidPrompt):
        parse_prompt(raw)


def test_pairwise_is_stable_per_sector_and_differs_across_sectors_and_keys() -> None:
    user = uuid.UUID("6f1c2a8e-5d2b-4c3f-9a1e-0b7d8c9e1f20")
    a1 = pairwise.pseudonym(b"k" * 32, "a.example.com", user)
    assert a1 == pairwise.pseudonym(b"k" * 32, "A.example.com", user)
    assert a1 != pairwise.pseudonym(b"k" * 32, "b.example.com", user)
    assert a1 != pairwise.pseudonym(b"j" * 32, "a.example.com", user)
    assert a1 != pairwise.pseudonym(b"k" * 32, "a.example.com", uuid.uuid4())
    assert len(a1) == 43 and "=" not in a1
