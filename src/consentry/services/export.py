"""GDPR export of a person's consents (SPEC §4), each with a signed consent receipt.

A receipt is a compact JWS signed with a key published at ``/oauth2/jwks``; its claims follow the
Kantara Consent Receipt 1.1 field names, which ISO/IEC TS 27560 builds on: controller, subject, services and
purposes (one per scope), consent time, termination (expiry), and state.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from consentry.domain.consent import ConsentStatus
from consentry.domain.resources import CatalogueScope
from consentry.runtime import Runtime
from consentry.services.linked_accounts import linked_accounts_of
from consentry.storage.audit import AuditRepository
from consentry.storage.consents import ConsentRepository
from consentry.storage.records import AuditEvent, Client, Consent, ConsentHistory

ConsentState = Literal["active", "revoked", "expired"]
AUDIT_LIMIT = 10_000


def consent_state(consent: Consent, *, now: datetime) -> ConsentState:
    if consent.status == ConsentStatus.REVOKED:
        return "revoked"
    if consent.status == ConsentStatus.EXPIRED or now >= consent.expires_at:
        return "expired"
    return "active"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def receipt_claims(
    consent: Consent,
    client: Client,
    catalogue: Mapping[str, CatalogueScope],
    *,
    issuer: str,
    state: ConsentState,
    now: datetime,
) -> dict[str, Any]:
    purposes = [
        {
            "purpose": catalogue[name].description if name in catalogue else name,
            "purposeCategory": [name],
            "consentType": "EXPLICIT",
            "piiCategory": list(catalogue[name].claims) if name in catalogue else [],
            "primaryPurpose": name == "openid",
            "termination": consent.expires_at.isoformat(),
            "thirdPartyDisclosure": True,
            "thirdPartyName": client.name,
        }
        for name in consent.scopes
    ]
    return {
        "iss": issuer,
        "sub": str(consent.user_id),
        "iat": int(now.timestamp()),
        "jti": str(consent.id),
        "version": "KI-CR-v1.1.0",
        "consentReceiptID": str(consent.id),
        "consentTimestamp": int(consent.granted_at.timestamp()),
        "collectionMethod": "consent screen at " + issuer,
        "language": "en",
        "piiPrincipalId": str(consent.user_id),
        "piiControllers": [
            {"piiController": client.name, "url": client.client_uri, "privacyPolicy": client.policy_uri}
        ],
        "policyUrl": client.policy_uri,
        "policyVersion": consent.policy_version,
        "services": [{"service": client.name, "clientId": client.id, "purposes": purposes}],
        "sensitive": False,
        "spiCat": [],
        "state": state,
        "expiry": int(consent.expires_at.timestamp()),
        "revokedAt": int(consent.revoked_at.timestamp()) if consent.revoked_at else None,
    }


async def export_consents(runtime: Runtime, user_id: uuid.UUID, *, now: datetime) -> dict[str, Any]:
    """Every consent record of the person (active, revoked, expired) with history, receipts and audit."""
    await runtime.keys.ensure_loaded(now=now)
    catalogue = await runtime.clients.scope_catalogue()
    async with runtime.database.read_only() as session:
        records = ConsentRepository(session)
        rows = await records.every_one_of(user_id)
        history = await records.history_of(user_id)
        events = await AuditRepository(session).events_of(user_id, limit=AUDIT_LIMIT)
        linked = await linked_accounts_of(session, user_id)
    by_consent: dict[uuid.UUID | None, list[ConsentHistory]] = {}
    for entry in history:
        by_consent.setdefault(entry.consent_id, []).append(entry)
    consents = []
    for consent, client in rows:
        state = consent_state(consent, now=now)
        claims = receipt_claims(consent, client, catalogue, issuer=runtime.issuer, state=state, now=now)
        consents.append(
            {
                "client_id": client.id,
                "client_name": client.name,
                "scopes": consent.scopes.as_list(),
                "declined_scopes": consent.declined_scopes.as_list(),
                "state": state,
                "granted_at": _iso(consent.granted_at),
                "updated_at": _iso(consent.updated_at),
                "last_used": _iso(consent.last_used_at),
                "expires_at": _iso(consent.expires_at),
                "revoked_at": _iso(consent.revoked_at),
                "policy_version": consent.policy_version,
                "history": [history_entry(entry) for entry in by_consent.get(consent.id, [])],
                "receipt": runtime.keys.sign(claims, typ="consent-receipt+jwt"),
            }
        )
    return {
        "user_id": str(user_id),
        "exported_at": now.isoformat(),
        "consents": consents,
        "account_history": [history_entry(entry) for entry in by_consent.get(None, [])],
        "linked_accounts": linked,
        "audit_events": [audit_entry(event) for event in events],
    }


def history_entry(entry: ConsentHistory) -> dict[str, Any]:
    return {
        "action": entry.action,
        "actor": entry.actor,
        "occurred_at": entry.occurred_at.isoformat(),
        "scopes_before": entry.scopes_before.as_list() if entry.scopes_before is not None else None,
        "scopes_after": entry.scopes_after.as_list() if entry.scopes_after is not None else None,
        "policy_version": entry.policy_version,
        "ip": entry.ip,
        "user_agent": entry.user_agent,
    }


def audit_entry(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "event_type": event.event_type,
        "occurred_at": event.occurred_at.isoformat(),
        "actor": event.actor,
        "user_id": str(event.user_id) if event.user_id else None,
        "client_id": event.client_id,
        "scopes": event.scopes.as_list() if event.scopes is not None else None,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "details": event.details,
    }
