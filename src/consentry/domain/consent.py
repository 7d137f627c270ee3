"""Consent decisions: when to ask, what to ask for, and how a new decision merges with the old. Pure.

Modelled as node-oidc-provider's named checks: each reason is a short code saying why the screen is shown
(or skipped), so a decision explains itself in logs, audit and tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from consentry.domain.scopes import OPENID, Scopes

# Reasons the screen is shown.
NO_CONSENT = "no_consent"
CONSENT_EXPIRED = "consent_expired"
CONSENT_REVOKED = "consent_revoked"
OP_SCOPES_MISSING = "op_scopes_missing"
POLICY_CHANGED = "policy_changed"
PROMPT_CONSENT = "prompt_consent"
# Reasons it is skipped.
CLIENT_TRUSTED = "client_trusted"
CONSENT_COVERS = "consent_covers"


@dataclass(frozen=True, slots=True)
class StoredConsent:
    """What the domain needs to know of a consent record."""

    scopes: Scopes
    declined_scopes: Scopes
    expires_at: datetime
    revoked: bool
    policy_version: str | None

    def is_live(self, *, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at


@dataclass(frozen=True, slots=True)
class ClientConsentPolicy:
    trusted: bool
    policy_version: str | None


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """Whether to show the screen, and if so what is new and what was granted before.

    ``effective_scopes`` is what a code is issued for when the screen is skipped: the request without the
    scopes the person declined before.
    """

    prompt: bool
    effective_scopes: Scopes
    new_scopes: Scopes = field(default_factory=Scopes)
    previously_granted: Scopes = field(default_factory=Scopes)
    reasons: tuple[str, ...] = ()


def decide(
    stored: StoredConsent | None,
    requested: Scopes,
    client: ClientConsentPolicy,
    *,
    force_prompt: bool,
    now: datetime,
) -> ConsentDecision:
    """Decide whether consent must be asked for (SPEC §6).

    Skipped when the client is trusted, or when a live consent under the client's current policy version
    covers every requested scope that was not declined before. ``force_prompt`` (``prompt=consent``) always
    asks, for everything requested, declined scopes included.
    """
    if force_prompt:
        previously = stored.scopes & requested if stored and stored.is_live(now=now) else Scopes()
        return ConsentDecision(True, requested, requested - previously, previously, (PROMPT_CONSENT,))
    if client.trusted:
        return ConsentDecision(False, requested, reasons=(CLIENT_TRUSTED,))
    if stored is None:
        return ConsentDecision(True, requested, requested, Scopes(), (NO_CONSENT,))
    if stored.revoked:
        return ConsentDecision(True, requested, requested, Scopes(), (CONSENT_REVOKED,))
    if now >= stored.expires_at:
        return ConsentDecision(True, requested, requested, Scopes(), (CONSENT_EXPIRED,))
    if stored.policy_version != client.policy_version:
        previously = stored.scopes & requested
        return ConsentDecision(True, requested, requested - previously, previously, (POLICY_CHANGED,))
    # Declined scopes are not asked again (and not granted) until prompt=consent; openid is never "declined".
    effective = requested - (stored.declined_scopes - {OPENID})
    missing = effective - stored.scopes
    if missing:
        return ConsentDecision(True, effective, missing, stored.scopes & effective, (OP_SCOPES_MISSING,))
    return ConsentDecision(False, effective, reasons=(CONSENT_COVERS,))


class InvalidGrantedScopes(ValueError):
    """The ticked scopes are not a subset of what was requested."""


def granted_from_choice(requested: Scopes, ticked: Scopes | None) -> Scopes:
    """The scopes approved on the screen: the ticked subset of the request (absent = all); openid stays."""
    if ticked is None:
        return requested
    if not ticked <= requested:
        raise InvalidGrantedScopes(f"granted_scopes not requested: {(ticked - requested).format()}")
    return ticked | (requested & {OPENID})


@dataclass(frozen=True, slots=True)
class MergedConsent:
    scopes: Scopes
    declined_scopes: Scopes
    expires_at: datetime


def merge(
    stored: StoredConsent | None, *, requested: Scopes, granted: Scopes, ttl: timedelta, now: datetime
) -> MergedConsent:
    """Approving adds the granted scopes to a live consent; unticked ones are remembered as declined.

    A scope granted now is no longer declined, and one granted before is never declined by leaving it out
    (withdrawing it is a separate act: :func:`narrow`); the expiry restarts from now.
    """
    live = stored is not None and stored.is_live(now=now)
    previous = stored.scopes if live and stored else Scopes()
    previously_declined = stored.declined_scopes if live and stored else Scopes()
    scopes = previous | granted
    declined = (previously_declined | (requested - scopes)) - scopes
    return MergedConsent(scopes=scopes, declined_scopes=declined, expires_at=now + ttl)


def narrow(stored_scopes: Scopes, revoke: Scopes) -> Scopes:
    """The scopes left after a person withdraws some of them."""
    return stored_scopes - revoke


class ConsentStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
