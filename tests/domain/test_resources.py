"""Resources and custom scopes (SPEC §7, RFC 8707): which targets a request may name, which scopes a token for
an audience carries, restricted scopes, token formats and lifetimes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consentry.domain import resources as r
from consentry.domain.resources import Catalogue, CatalogueScope, ProtectedResource, TokenFormat
from consentry.domain.scopes import Scopes

PHOTOS = "https://api.example.com/photos"
MAIL = "https://api.example.com/mail"


def resource(
    identifier: str, fmt: TokenFormat = TokenFormat.OPAQUE, ttl: int | None = None
) -> ProtectedResource:
    return ProtectedResource(
        "res_" + identifier[-5:], identifier, identifier, fmt, ttl, "client-" + identifier[-5:]
    )


CATALOGUE = Catalogue(
    scopes={
        "openid": CatalogueScope("openid", "Sign you in", ("sub",)),
        "email": CatalogueScope("email", "See your email address", ("email",)),
        "photos:read": CatalogueScope("photos:read", "See your photos", (), PHOTOS),
        "photos:write": CatalogueScope("photos:write", "Change your photos", (), PHOTOS),
        "mail:send": CatalogueScope("mail:send", "Send mail as you", (), MAIL),
        "read": CatalogueScope("read", "Read your data", ()),
        "admin": CatalogueScope("admin", "Administer the platform", (), None, restricted=True),
    },
    resources={PHOTOS: resource(PHOTOS), MAIL: resource(MAIL, TokenFormat.JWT, 300)},
)


def S(value: str) -> Scopes:
    return Scopes.parse(value)


def test_a_requested_resource_must_be_known() -> None:
    with pytest.raises(r.InvalidTarget, match="unknown resource"):
        CATALOGUE.check_targets(("https://elsewhere.example/api",), S("openid"))


def test_a_scope_of_a_resource_needs_that_resource_requested() -> None:
    with pytest.raises(r.InvalidTarget, match="photos:read"):
        CATALOGUE.check_targets((), S("openid photos:read"))
    with pytest.raises(r.InvalidTarget, match="photos:read"):
        CATALOGUE.check_targets((MAIL,), S("photos:read mail:send"))
    CATALOGUE.check_targets((PHOTOS, MAIL), S("openid email photos:read mail:send read"))


@pytest.mark.parametrize(
    ("audience", "carried"),
    [
        ((), "openid email read"),  # for userinfo: every scope of no resource
        ((PHOTOS,), "photos:read photos:write"),
        ((PHOTOS, MAIL), "mail:send photos:read photos:write"),
    ],
)
def test_a_token_carries_only_its_audiences_scopes(audience: tuple[str, ...], carried: str) -> None:
    granted = S("openid email read photos:read photos:write mail:send")
    assert CATALOGUE.for_audience(granted, audience) == S(carried)


def test_restricted_scopes_go_to_trusted_clients_and_admins_only() -> None:
    with pytest.raises(r.RestrictedScope):
        CATALOGUE.grantable(S("openid admin"), trusted_client=False, admin=True)
    assert CATALOGUE.grantable(S("openid admin"), trusted_client=True, admin=False) == S("openid")
    assert CATALOGUE.grantable(S("openid admin"), trusted_client=True, admin=True) == S("openid admin")


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (None, ()),
        (PHOTOS, (PHOTOS,)),
        (f"{PHOTOS} {MAIL} {PHOTOS}", (PHOTOS, MAIL)),
        ("urn:example:api", ("urn:example:api",)),
    ],
)
def test_resource_parameters(value: str | None, parsed: tuple[str, ...]) -> None:
    assert r.parse_resources(value) == parsed


@pytest.mark.parametrize(
    "value", ["", "photos", "/relative/path", "https://api.example.com/#fragment", f"{PHOTOS}  {MAIL}"]
)
def test_a_resource_is_an_absolute_uri_without_fragment(value: str) -> None:
    with pytest.raises(r.InvalidTarget):
        r.parse_resources(value)


def test_the_token_format_and_lifetime_follow_the_audience() -> None:
    default = timedelta(hours=1)
    assert r.token_format([]) is TokenFormat.OPAQUE
    assert r.token_format([CATALOGUE.resources[PHOTOS]]) is TokenFormat.OPAQUE
    assert r.token_format(CATALOGUE.audience((PHOTOS, MAIL))) is TokenFormat.JWT  # one asks for a JWT
    assert r.access_token_lifetime([CATALOGUE.resources[PHOTOS]], default) == default
    assert r.access_token_lifetime(CATALOGUE.audience((PHOTOS, MAIL)), default) == timedelta(seconds=300)


@pytest.mark.parametrize(
    ("field", "call"),
    [
        ("identifier", lambda: r.validate_identifier("https://api.example.com/x?tenant=1")),
        ("identifier", lambda: r.validate_identifier("not a uri")),
        ("name", lambda: r.validate_scope_name("email")),  # an OpenID Connect scope
        ("name", lambda: r.validate_scope_name('say "hi"')),
        ("name", lambda: r.validate_scope_name("x" * 65)),
        ("access_token_ttl", lambda: r.validate_access_token_ttl(10)),
        ("description", lambda: r.validate_description("  ")),
    ],
)
def test_definitions_that_break_a_rule_say_which_field(field: str, call: object) -> None:
    with pytest.raises(r.InvalidResource) as raised:
        call()  # type: ignore[operator]
    assert raised.value.field == field


def test_the_resource_of_a_client() -> None:
    assert CATALOGUE.resource_of_client("client-/mail") == CATALOGUE.resources[MAIL]
    assert CATALOGUE.resource_of_client("an-app") is None
