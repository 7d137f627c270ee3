from __future__ import annotations

import pytest

from consentry.domain.identifiers import InvalidIdentifier, parse_identifier


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        ("Alice@Example.COM", "email", "alice@example.com"),
        ("  bob@example.org ", "email", "bob@example.org"),
        ("+14155552671", "phone", "+14155552671"),
        ("+44 20 7946 0958", "phone", "+442079460958"),
    ],
    ids=["email-case", "email-spaces", "e164", "e164-with-spaces"],
)
def test_normalises(raw: str, kind: str, value: str) -> None:
    identifier = parse_identifier(raw)
    assert (identifier.kind, identifier.value) == (kind, value)


@pytest.mark.parametrize(
    "raw", ["", "   ", "not-an-email@", "@example.com", "4155552671", "+1", "+999123"], ids=repr
)
def test_refuses(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_identifier(raw)
