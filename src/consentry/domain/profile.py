"""What a person's profile claims may hold (OpenID Connect Core §5.1): apps read them from ID tokens and
userinfo and use them as they are, so a picture is a web address, a locale a language tag and a time zone one
the IANA database names. Pure: the known time zones are passed in."""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from urllib.parse import urlsplit

from consentry.domain.net import has_control_or_space

# Each profile claim and the most characters it keeps (the columns' sizes).
PROFILE_LIMITS = {
    "name": 200,
    "given_name": 100,
    "family_name": 100,
    "preferred_username": 100,
    "picture": 2048,
    "locale": 35,
    "zoneinfo": 64,
}
PROFILE_FIELDS = tuple(PROFILE_LIMITS)
# BCP 47's shape (RFC 5646 §2.1): a language of 2 or 3 letters, then subtags of 1 to 8 letters or digits
# (script, region, variants), joined by "-" (or "_", as POSIX locales write it); what a tag means is the app's
# to read, its shape is checked here.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


class InvalidProfile(ValueError):
    """A profile value its claim cannot hold: ``message`` with ``values`` filled in (a page translates the
    message first)."""

    def __init__(self, message: str, **values: object) -> None:
        self.message, self.values = message, values
        super().__init__(message % values if values else message)


def check_profile(changes: Mapping[str, str | None], *, time_zones: Set[str]) -> None:
    """Raise :class:`InvalidProfile` for the first value of ``changes`` its claim cannot hold; an empty value
    (clearing the claim) is always allowed. Keys other than the profile's are not looked at."""
    for field, value in changes.items():
        if field not in PROFILE_LIMITS or not value:
            continue
        if len(value) > PROFILE_LIMITS[field]:
            raise InvalidProfile(
                "%(field)s is longer than %(limit)d characters", field=field, limit=PROFILE_LIMITS[field]
            )
        if field == "picture" and not is_web_address(value):
            raise InvalidProfile("the picture must be an http or https address")
        if field == "locale" and not _LANGUAGE_TAG.fullmatch(value):
            raise InvalidProfile("the language must be a language tag, such as en or id-ID")
        if field == "zoneinfo" and value not in time_zones:
            raise InvalidProfile(
                "%(value)s is not a time zone: use an IANA name, such as Asia/Jakarta", value=value[:64]
            )


def acceptable_profile(profile: Mapping[str, object], *, time_zones: Set[str]) -> dict[str, str]:
    """The values of a profile from elsewhere (an upstream provider) that their claims can hold; the rest are
    left out rather than refused, since the person did not type them."""
    accepted = {}
    for field in PROFILE_FIELDS:
        value = profile.get(field)
        if not isinstance(value, str) or not value:
            continue
        try:
            check_profile({field: value}, time_zones=time_zones)
        except InvalidProfile:
            continue
        accepted[field] = value
    return accepted


def is_web_address(value: str) -> bool:
    """An absolute http(s) URL with a host, and no spaces or control characters in it."""
    if has_control_or_space(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. a malformed IPv6 host
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
