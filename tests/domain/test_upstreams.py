"""The linking rules of upstream sign-in (SPEC §10): an email alone never links, one way in is always kept."""

from __future__ import annotations

import pytest

from consentry.domain.upstreams import (
    InvalidUpstream,
    SignInOutcome,
    UpstreamAnswerError,
    check_name,
    check_url,
    identity_from,
    may_unlink,
    sign_in_outcome,
)


@pytest.mark.parametrize(
    ("owner", "trust", "verified", "outcome"),
    [
        (False, False, False, SignInOutcome.CREATE),
        (True, True, True, SignInOutcome.LINK_BY_EMAIL),
        (True, True, False, SignInOutcome.EMAIL_TAKEN),  # trusted provider, unverified address
        (True, False, True, SignInOutcome.EMAIL_TAKEN),  # verified, but the operator trusts no one
    ],
)
def test_an_email_links_only_when_trusted_and_verified(
    owner: bool, trust: bool, verified: bool, outcome: SignInOutcome
) -> None:
    decided = sign_in_outcome(email_owner_exists=owner, trust_email=trust, email_verified=verified)
    assert decided is outcome


def test_unlinking_keeps_a_way_in() -> None:
    assert may_unlink(other_links=1, has_verified_identifier=False)
    assert may_unlink(other_links=0, has_verified_identifier=True)
    assert not may_unlink(other_links=0, has_verified_identifier=False)


def test_the_identity_comes_from_the_configured_fields() -> None:
    claims = {
        "sub": "abc",
        "email": " Ada@Example.COM ",
        "email_verified": True,
        "name": "Ada",
        "secret": "x",
    }
    identity = identity_from(claims, uid_field="sub", email_field="email")
    assert (identity.uid, identity.email, identity.email_verified) == ("abc", "ada@example.com", True)
    assert identity.profile == {"name": "Ada"}
    github = identity_from({"id": 42, "email": None, "login": "octo"}, uid_field="id", email_field="email")
    assert (github.uid, github.email, github.email_verified) == ("42", None, False)
    listed = identity_from({"id": 42}, uid_field="id", email_field="email", verified_email="o@example.com")
    assert (listed.email, listed.email_verified) == ("o@example.com", True)
    unverified = identity_from({"sub": "s", "email": "a@b.c", "email_verified": "true"}, uid_field="sub",
                               email_field="email")  # fmt: skip
    assert unverified.email_verified is False  # only the JSON true counts


@pytest.mark.parametrize("uid", [None, "", True, 1.5, "x" * 256])
def test_an_answer_without_a_usable_id_signs_nobody_in(uid: object) -> None:
    with pytest.raises(UpstreamAnswerError):
        identity_from({"sub": uid}, uid_field="sub", email_field="email")


def test_names_and_urls_are_checked() -> None:
    assert check_name("github") == "github"
    for bad in ("GitHub", "-x", "a b", "x" * 65, ""):
        with pytest.raises(InvalidUpstream):
            check_name(bad)
    assert check_url("issuer", "https://accounts.example.com") == "https://accounts.example.com"
    assert check_url("issuer", "http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    for bad in (
        "http://accounts.example.com",
        "ftp://x.example.com",
        "https://x.example.com/#f",
        "https:///x",
    ):
        with pytest.raises(InvalidUpstream):
            check_url("issuer", bad)
