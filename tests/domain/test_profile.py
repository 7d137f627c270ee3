"""What a profile's claims may hold (OpenID Connect Core §5.1)."""

from __future__ import annotations

import pytest

from consentry.domain.profile import InvalidProfile, acceptable_profile, check_profile, is_web_address

ZONES = frozenset({"Asia/Jakarta", "Europe/London", "UTC"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("picture", "https://example.com/ada.png"),
        ("picture", "http://[::1]:8080/a.jpg?size=64"),
        ("locale", "id"),
        ("locale", "en-GB"),
        ("locale", "zh-Hant-TW"),
        ("locale", "en_US"),
        ("zoneinfo", "Asia/Jakarta"),
        ("name", "Ada " * 50),
        ("picture", ""),  # clearing a claim is always allowed
        ("zoneinfo", None),
    ],
)
def test_values_each_claim_can_hold(field: str, value: str | None) -> None:
    check_profile({field: value}, time_zones=ZONES)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("picture", "javascript:alert(1)", "http or https"),
        ("picture", "data:image/png;base64,AAAA", "http or https"),
        ("picture", "/ada.png", "http or https"),
        ("picture", "https://", "http or https"),
        ("picture", "https://example.com/a b.png", "http or https"),
        ("picture", "https://exa\nmple.com/", "http or https"),
        ("picture", "https://[::1/", "http or https"),
        ("locale", "English", "language tag"),
        ("locale", "e", "language tag"),
        ("locale", "en-GB!", "language tag"),
        ("zoneinfo", "Mars/Olympus", "is not a time zone"),
        ("zoneinfo", "asia/jakarta", "is not a time zone"),
        ("name", "A" * 201, "longer than 200"),
        ("picture", "https://example.com/" + "a" * 2048, "longer than 2048"),
    ],
)
def test_values_a_claim_cannot_hold_are_refused_clearly(field: str, value: str, says: str) -> None:
    with pytest.raises(InvalidProfile) as refused:
        check_profile({"name": "Ada", field: value}, time_zones=ZONES)
    assert says in str(refused.value)


def test_other_keys_are_not_looked_at() -> None:
    check_profile({"email": "not checked here", "current_password": "x"}, time_zones=ZONES)


def test_a_profile_from_elsewhere_keeps_only_what_its_claims_can_hold() -> None:
    profile = {
        "name": "Ada",
        "picture": "javascript:alert(1)",
        "locale": "en-GB",
        "zoneinfo": "Nowhere/Else",
        "given_name": 7,
        "preferred_username": "",
        "login": "ada",
    }
    assert acceptable_profile(profile, time_zones=ZONES) == {"name": "Ada", "locale": "en-GB"}


def test_a_web_address() -> None:
    assert is_web_address("HTTPS://Example.com")
    assert not is_web_address("ftp://example.com/a.png")
