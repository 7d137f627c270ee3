"""Scopes as a value object (RFC 6749 §3.3): a set of scope tokens, never a space-joined string in logic."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")

OPENID = "openid"
# A grant holding it outlives the sign-in session it was made in (OIDC Core §11, SPEC §9).
OFFLINE_ACCESS = "offline_access"


class InvalidScopeToken(ValueError):
    """A scope token with characters RFC 6749 §3.3 does not allow."""


class Scopes(frozenset[str]):
    """An immutable set of scope tokens with parsing and canonical formatting."""

    __slots__ = ()

    def __new__(cls, tokens: Iterable[str] = ()) -> Scopes:
        tokens = list(tokens)
        for token in tokens:
            if not isinstance(token, str) or not _SCOPE_TOKEN.match(token):
                raise InvalidScopeToken(f"invalid scope token: {token!r}")
        return super().__new__(cls, tokens)

    @classmethod
    def parse(cls, value: str | None) -> Scopes:
        """Parse the space-delimited ``scope`` parameter; repeated tokens collapse, order is irrelevant.

        Extra spaces are tolerated; any other whitespace is not a scope-token character and is refused.
        """
        if not value:
            return cls()
        return cls(token for token in value.split(" ") if token)

    def format(self) -> str:
        """The canonical wire form: tokens sorted and joined by single spaces."""
        return " ".join(sorted(self))

    def as_list(self) -> list[str]:
        """Sorted list, the storage form."""
        return sorted(self)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(super().__iter__()))

    def __or__(self, other: Iterable[str]) -> Scopes:  # type: ignore[override]
        return Scopes(frozenset.__or__(self, frozenset(other)))

    def __and__(self, other: Iterable[str]) -> Scopes:  # type: ignore[override]
        return Scopes(frozenset.__and__(self, frozenset(other)))

    def __sub__(self, other: Iterable[str]) -> Scopes:  # type: ignore[override]
        return Scopes(frozenset.__sub__(self, frozenset(other)))

    def __repr__(self) -> str:
        return f"Scopes({self.format()!r})"
