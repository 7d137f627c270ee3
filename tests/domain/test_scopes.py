from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.scopes import InvalidScopeToken, Scopes

scope_token = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'),
    min_size=1,
    max_size=12,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, set()),
        ("", set()),
        ("openid", {"openid"}),
        ("openid profile", {"openid", "profile"}),
        ("profile openid profile", {"openid", "profile"}),
        ("openid  email ", {"openid", "email"}),
    ],
    ids=["none", "empty", "one", "two", "repeated-collapse", "extra-spaces"],
)
def test_parse(raw: str | None, expected: set[str]) -> None:
    assert Scopes.parse(raw) == expected


@pytest.mark.parametrize("raw", ["open\tid", 'a"b', "a\\b", "naïve", "a\nb"], ids=repr)
def test_parse_refuses_characters_outside_rfc6749_scope_token(raw: str) -> None:
    with pytest.raises(InvalidScopeToken):
        Scopes.parse(raw)


def test_format_is_canonical_and_sorted() -> None:
    assert Scopes.parse("profile openid email").format() == "email openid profile"
    assert list(Scopes(["b", "a"])) == ["a", "b"]


def test_set_operations_stay_scopes() -> None:
    granted = Scopes.parse("openid profile")
    requested = Scopes.parse("openid email")
    assert isinstance(requested - granted, Scopes)
    assert requested - granted == {"email"}
    assert isinstance(requested | granted, Scopes)
    assert requested & granted == {"openid"}
    assert Scopes.parse("openid") <= granted


@given(st.frozensets(scope_token, max_size=8))
def test_format_parse_round_trip(tokens: frozenset[str]) -> None:
    scopes = Scopes(tokens)
    assert Scopes.parse(scopes.format()) == scopes
