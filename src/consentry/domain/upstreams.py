"""Upstream identity providers and the accounts linked to them (SPEC §10). Pure.

The rules that keep linking from being abused live here: an upstream account is linked to an existing person
only by that person (signed in, from ``/account``) or, when the operator trusts the provider's email checks
(``--trust-email``), by an email the provider says it verified; never by an email alone. A person keeps at
least one way to sign in.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from consentry.domain.net import has_control_or_space, is_loopback_host

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DEFAULT_OIDC_SCOPE = "openid email profile"
# What is kept of the provider's profile (the rest of what it says is not the account's business).
PROFILE_FIELDS = ("name", "given_name", "family_name", "preferred_username", "login", "picture", "locale")


class UpstreamKind(enum.StrEnum):
    OIDC = "oidc"  # configured from its discovery document; ID tokens checked against its JWKS
    OAUTH2 = "oauth2"  # GitHub-style: an access token, then the person's record from a userinfo URL


class InvalidUpstream(ValueError):
    """An upstream provider's configuration that cannot be used; the message names the field."""


class UpstreamAnswerError(ValueError):
    """What the provider answered cannot sign anyone in (no stable id, a malformed record)."""


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """How to talk to a provider, its client secret in clear (kept encrypted at rest)."""

    name: str
    display_name: str
    kind: UpstreamKind
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str
    scope: str
    uid_field: str
    email_field: str
    trust_email: bool
    issuer: str | None = None
    userinfo_url: str | None = None
    emails_url: str | None = None
    jwks_uri: str | None = None
    signing_algs: tuple[str, ...] = ()

    @property
    def is_oidc(self) -> bool:
        return self.kind is UpstreamKind.OIDC


@dataclass(frozen=True, slots=True)
class UpstreamIdentity:
    """Who the provider says the person is: its stable id for them, an email and whether it checked it."""

    uid: str
    email: str | None
    email_verified: bool
    profile: dict[str, Any]


class SignInOutcome(enum.Enum):
    LINK_BY_EMAIL = "link_by_email"  # a trusted provider vouches for an existing person's email
    CREATE = "create"  # nobody has this account or email: a new person, once they accept the terms
    EMAIL_TAKEN = "email_taken"  # someone has this email: they must sign in and link it themselves


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidUpstream("name: lower-case letters, digits, - and _ (at most 64), starting with one")
    return name


def check_url(field: str, url: str, *, loopback_http: bool = True) -> str:
    """An endpoint of the provider: https, or http on a loopback host (development and tests)."""
    parts = urlsplit(url)
    if has_control_or_space(url) or not parts.hostname or parts.fragment or len(url) > 2048:
        raise InvalidUpstream(f"{field}: not a usable URL")
    if parts.scheme != "https" and not (
        loopback_http and parts.scheme == "http" and is_loopback_host(parts.hostname)
    ):
        raise InvalidUpstream(f"{field}: must be https (http only on a loopback host)")
    return url


def identity_from(
    record: Mapping[str, Any],
    *,
    uid_field: str,
    email_field: str,
    verified_email: str | None = None,
) -> UpstreamIdentity:
    """The identity in an ID token's claims or a userinfo record. ``verified_email`` is the address a
    provider without ``email_verified`` lists as verified elsewhere (GitHub's ``/user/emails``)."""
    uid = record.get(uid_field)
    if isinstance(uid, bool) or not isinstance(uid, str | int) or str(uid) == "" or len(str(uid)) > 255:
        raise UpstreamAnswerError(f"the provider's answer has no usable {uid_field}")
    email = record.get(email_field)
    email = email.strip().lower() if isinstance(email, str) and "@" in email and len(email) <= 320 else None
    if verified_email is not None:
        email, verified = verified_email.strip().lower(), True
    else:
        verified = email is not None and record.get("email_verified") is True
    profile = {key: record[key] for key in PROFILE_FIELDS if isinstance(record.get(key), str)}
    return UpstreamIdentity(str(uid), email, verified, profile)


def sign_in_outcome(*, email_owner_exists: bool, trust_email: bool, email_verified: bool) -> SignInOutcome:
    """What a callback does for someone not signed in whose upstream account is linked to nobody yet."""
    if not email_owner_exists:
        return SignInOutcome.CREATE
    if trust_email and email_verified:
        return SignInOutcome.LINK_BY_EMAIL
    return SignInOutcome.EMAIL_TAKEN


def may_unlink(*, other_links: int, has_verified_identifier: bool) -> bool:
    """Unlinking must leave a way to sign in: another linked account, or an identifier proven to be the
    person's (a password, or a one-time code, goes with it)."""
    return other_links > 0 or has_verified_identifier
