"""Consent decisions (SPEC §6), table-driven: each case reads as the rule it checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from consentry.domain import consent as c
from consentry.domain.consent import ClientConsentPolicy, StoredConsent, decide, granted_from_choice, merge
from consentry.domain.scopes import Scopes

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
S = Scopes.parse


def stored(
    scopes: str = "openid profile",
    *,
    declined: str = "",
    days_left: float = 30,
    revoked: bool = False,
    policy: str | None = None,
) -> StoredConsent:
    return StoredConsent(S(scopes), S(declined), NOW + timedelta(days=days_left), revoked, policy)


@dataclass(frozen=True)
class Case:
    description: str
    stored: StoredConsent | None
    requested: str
    prompt: bool
    reason: str
    new: str = ""
    previously: str = ""
    effective: str | None = None
    trusted: bool = False
    policy: str | None = None


CASES = [
    Case("no consent asks for everything", None, "openid profile", True, c.NO_CONSENT, new="openid profile"),
    Case("same scopes skip", stored(), "openid profile", False, c.CONSENT_COVERS),
    Case("narrower request skips", stored(), "openid", False, c.CONSENT_COVERS),
    Case(
        "new scope asked alone",
        stored(),
        "openid profile email",
        True,
        c.OP_SCOPES_MISSING,
        new="email",
        previously="openid profile",
    ),
    Case("expired consent asks again", stored(days_left=-1), "openid", True, c.CONSENT_EXPIRED, new="openid"),
    Case(
        "expiring exactly now counts as expired",
        stored(days_left=0),
        "openid",
        True,
        c.CONSENT_EXPIRED,
        new="openid",
    ),
    Case("revoked consent asks again", stored(revoked=True), "openid", True, c.CONSENT_REVOKED, new="openid"),
    Case("trusted client skips without consent", None, "openid email", False, c.CLIENT_TRUSTED, trusted=True),
    Case(
        "trusted client skips even when revoked",
        stored(revoked=True),
        "openid",
        False,
        c.CLIENT_TRUSTED,
        trusted=True,
    ),
    Case(
        "changed policy version asks again showing what is new",
        stored(policy="1"),
        "openid profile email",
        True,
        c.POLICY_CHANGED,
        new="email",
        previously="openid profile",
        policy="2",
    ),
    Case(
        "policy version set for the first time asks again",
        stored(),
        "openid",
        True,
        c.POLICY_CHANGED,
        previously="openid",
        policy="1",
    ),
    Case(
        "declined scope is not asked again and not granted",
        stored(declined="email"),
        "openid profile email",
        False,
        c.CONSENT_COVERS,
        effective="openid profile",
    ),
    Case(
        "declined scope does not hide other new scopes",
        stored(declined="email"),
        "openid email phone",
        True,
        c.OP_SCOPES_MISSING,
        new="phone",
        previously="openid",
        effective="openid phone",
    ),
    Case(
        "openid can never be declined",
        stored("profile", declined="openid"),
        "openid profile",
        True,
        c.OP_SCOPES_MISSING,
        new="openid",
        previously="profile",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.description)
def test_decide(case: Case) -> None:
    decision = decide(
        case.stored,
        S(case.requested),
        ClientConsentPolicy(case.trusted, case.policy),
        force_prompt=False,
        now=NOW,
    )
    assert decision.prompt is case.prompt
    assert decision.reasons == (case.reason,)
    assert decision.new_scopes == S(case.new)
    assert decision.previously_granted == S(case.previously)
    expected_effective = case.requested if case.effective is None else case.effective
    assert decision.effective_scopes == S(expected_effective)


@pytest.mark.parametrize(
    "existing",
    [None, stored(), stored(declined="email"), stored(revoked=True), stored(days_left=-1)],
    ids=["none", "covering", "declined", "revoked", "expired"],
)
@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_prompt_consent_always_asks_for_everything_requested(
    existing: StoredConsent | None, trusted: bool
) -> None:
    decision = decide(
        existing, S("openid profile email"), ClientConsentPolicy(trusted, None), force_prompt=True, now=NOW
    )
    assert decision.prompt
    assert decision.reasons == (c.PROMPT_CONSENT,)
    assert decision.effective_scopes == S("openid profile email")
    assert decision.new_scopes | decision.previously_granted == S("openid profile email")


@pytest.mark.parametrize(
    ("requested", "ticked", "granted"),
    [
        ("openid profile email", None, "openid profile email"),
        ("openid profile email", "openid profile", "openid profile"),
        ("openid profile email", "profile", "openid profile"),
        ("openid profile", "", "openid"),
        ("profile email", "email", "email"),
    ],
    ids=[
        "absent-means-all",
        "subset",
        "openid-cannot-be-unticked",
        "only-openid-left",
        "no-openid-requested",
    ],
)
def test_granted_from_choice(requested: str, ticked: str | None, granted: str) -> None:
    assert granted_from_choice(S(requested), None if ticked is None else S(ticked)) == S(granted)


def test_ticking_an_unrequested_scope_is_refused() -> None:
    with pytest.raises(c.InvalidGrantedScopes):
        granted_from_choice(S("openid"), S("openid email"))


def test_merge_adds_to_a_live_consent_and_remembers_declined() -> None:
    merged = merge(
        stored("openid profile", declined="phone"),
        requested=S("openid email address"),
        granted=S("openid email"),
        ttl=timedelta(days=90),
        now=NOW,
    )
    assert merged.scopes == S("openid profile email")
    assert merged.declined_scopes == S("phone address")
    assert merged.expires_at == NOW + timedelta(days=90)


def test_merge_granting_a_declined_scope_clears_the_decline() -> None:
    merged = merge(
        stored("openid", declined="email"),
        requested=S("openid email"),
        granted=S("openid email"),
        ttl=timedelta(days=1),
        now=NOW,
    )
    assert merged.scopes == S("openid email")
    assert merged.declined_scopes == S("")


def test_merge_never_declines_a_scope_granted_before() -> None:
    # The incremental screen asks for the new scopes alone: what was granted before stays, not declined.
    merged = merge(
        stored("openid profile"),
        requested=S("openid profile email"),
        granted=S("openid email"),
        ttl=timedelta(days=1),
        now=NOW,
    )
    assert merged.scopes == S("openid profile email")
    assert merged.declined_scopes == S("")


@pytest.mark.parametrize("dead", [stored(revoked=True), stored(days_left=-1)], ids=["revoked", "expired"])
def test_merge_starts_afresh_over_a_dead_consent(dead: StoredConsent) -> None:
    merged = merge(
        dead, requested=S("openid email"), granted=S("openid email"), ttl=timedelta(days=1), now=NOW
    )
    assert merged.scopes == S("openid email")


def test_narrow() -> None:
    assert c.narrow(S("openid profile email"), S("email phone")) == S("openid profile")
