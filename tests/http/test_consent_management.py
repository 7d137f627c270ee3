"""Narrowing a consent, the GDPR export with signed receipts, and the admin audit API (SPEC §4, §5)."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from joserfc import jws, jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from consentry.runtime import Runtime, utcnow
from consentry.storage.consents import ConsentRepository
from consentry.storage.tables import ConsentHistory
from tests.oauth import (
    App,
    Person,
    approve,
    authorize_params,
    exchange_code,
    get_code,
    make_app,
    make_person,
    pkce_pair,
    tokens_for,
)

API = "/api/v1/oauth2/consents"


async def active(http: httpx.AsyncClient, app: App, token: str) -> bool:
    return bool(
        (await http.post("/oauth2/introspect", data={"token": token}, auth=app.basic())).json()["active"]
    )


async def test_narrowing_revokes_exactly_the_tokens_with_a_withdrawn_scope(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person, app, other = await make_person(runtime), await make_app(runtime), await make_app(runtime)
    with_email = await tokens_for(http, runtime, app, person, scope="openid profile email")
    without_email = await tokens_for(http, runtime, app, person, scope="openid profile")
    elsewhere = await tokens_for(http, runtime, other, person, scope="openid profile email")

    response = await http.patch(
        f"{API}/{app.client_id}", json={"revoke_scopes": ["email"]}, headers=person.headers
    )
    assert response.status_code == 200
    assert response.json() == {"client_id": app.client_id, "scopes": ["openid", "profile"], "revoked": False}

    assert not await active(http, app, with_email["access_token"])
    assert not await active(http, app, with_email["refresh_token"])
    assert await active(http, app, without_email["access_token"])
    assert await active(http, app, without_email["refresh_token"])
    assert await active(http, other, elsewhere["access_token"])
    # The narrowed consent still covers openid profile, but email must be asked for again.
    again = await http.get(
        "/oauth2/authorize",
        params=authorize_params(app, scope="openid profile email"),
        headers=person.headers,
    )
    assert again.headers["location"].startswith("/consent?")
    async with runtime.database.read_only() as session:
        actions = list(
            await session.scalars(
                select(ConsentHistory.action).where(
                    ConsentHistory.user_id == person.user_id, ConsentHistory.client_id == app.client_id
                )
            )
        )
    assert "narrowed" in actions


async def test_withdrawing_every_scope_revokes_the_consent(http: httpx.AsyncClient, runtime: Runtime) -> None:
    person, app = await make_person(runtime), await make_app(runtime)
    tokens = await tokens_for(http, runtime, app, person, scope="openid")
    response = await http.patch(
        f"{API}/{app.client_id}", json={"revoke_scopes": ["openid", "email"]}, headers=person.headers
    )
    assert response.json()["revoked"] is True
    assert not await active(http, app, tokens["refresh_token"])
    assert (await http.get(API, headers=person.headers)).json()["consents"] == []


async def test_a_code_carrying_a_withdrawn_scope_cannot_be_exchanged_after_narrowing(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    """A code issued before the narrowing would otherwise still yield the withdrawn scope for its lifetime."""
    person, app = await make_person(runtime), await make_app(runtime)
    (verifier, challenge), (verifier2, challenge2) = pkce_pair(), pkce_pair()
    emailed = await get_code(http, person, authorize_params(app, scope="openid email", challenge=challenge))
    without_email = await get_code(http, person, authorize_params(app, challenge=challenge2, scope="openid"))
    response = await http.patch(
        f"{API}/{app.client_id}", json={"revoke_scopes": ["email"]}, headers=person.headers
    )
    assert response.status_code == 200
    refused = await exchange_code(http, app, emailed, verifier)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    kept = await exchange_code(http, app, without_email, verifier2)
    assert kept.status_code == 200, kept.text
    assert kept.json()["scope"] == "openid"


async def test_narrowing_refusals(http: httpx.AsyncClient, runtime: Runtime) -> None:
    person = await make_person(runtime)
    assert (
        await http.patch(f"{API}/nope", json={"revoke_scopes": ["email"]}, headers=person.headers)
    ).status_code == 404
    assert (
        await http.patch(f"{API}/nope", json={"revoke_scopes": []}, headers=person.headers)
    ).status_code == 400
    bad = await http.patch(f"{API}/nope", json={"revoke_scopes": ["a b"]}, headers=person.headers)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_scope"


async def _export(http: httpx.AsyncClient, person: Person) -> dict:  # type: ignore[type-arg]
    response = await http.get(f"{API}/export", headers=person.headers)
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    return dict(response.json())


async def test_export_lists_active_revoked_and_expired_with_history_and_receipts(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    kept, revoked, expired = [
        await make_app(runtime, name=name, policy_uri="https://app.example.com/privacy")
        for name in ("Kept", "Revoked", "Expired")
    ]
    for app in (kept, revoked, expired):
        await approve(http, person, authorize_params(app, scope="openid email"))
    await http.delete(f"{API}/{revoked.client_id}", headers=person.headers)
    async with runtime.database.unit_of_work() as session:
        consent = await ConsentRepository(session).get_active(person.user_id, expired.client_id)
        assert consent is not None
        consent.expires_at = utcnow() - timedelta(days=1)

    body = await _export(http, person)
    assert body["user_id"] == str(person.user_id)
    states = {c["client_name"]: c["state"] for c in body["consents"]}
    assert states == {"Kept": "active", "Revoked": "revoked", "Expired": "expired"}
    by_name = {c["client_name"]: c for c in body["consents"]}
    assert [h["action"] for h in by_name["Revoked"]["history"]] == ["granted", "revoked"]
    assert by_name["Revoked"]["revoked_at"] is not None
    assert {"consent_granted", "consent_revoked", "authorization_granted"} <= {
        e["event_type"] for e in body["audit_events"]
    }

    keys = KeySet.import_key_set((await http.get("/oauth2/jwks")).json())
    for record in body["consents"]:
        token = jwt.decode(record["receipt"], keys)
        assert token.header["typ"] == "consent-receipt+jwt"
        claims = token.claims
        assert claims["iss"] == "http://127.0.0.1:8000"
        assert claims["piiPrincipalId"] == str(person.user_id)
        assert claims["state"] == record["state"]
        assert claims["piiControllers"][0]["piiController"] == record["client_name"]
        assert {p["purposeCategory"][0] for p in claims["services"][0]["purposes"]} == {"email", "openid"}
        assert claims["consentTimestamp"] > 0
        assert claims["expiry"] == int(datetime.fromisoformat(record["expires_at"]).timestamp())
    tampered = body["consents"][0]["receipt"].split(".")
    tampered[1] = tampered[1][:-2] + ("AA" if tampered[1][-2:] != "AA" else "BB")
    try:
        jws.deserialize_compact(".".join(tampered), keys)
    except Exception:
        pass
    else:
        raise AssertionError("a tampered receipt verified")


async def test_export_needs_a_session(http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{API}/export")).status_code == 401


async def test_admin_audit_with_filters_and_pagination(http: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await make_person(runtime, is_admin=True)
    person, app = await make_person(runtime), await make_app(runtime)
    await tokens_for(http, runtime, app, person)
    everything = (await http.get("/api/v1/admin/audit", headers=admin.headers)).json()
    assert everything["total"] >= 3
    first_page = (await http.get("/api/v1/admin/audit", params={"limit": 2}, headers=admin.headers)).json()
    second_page = (
        await http.get("/api/v1/admin/audit", params={"limit": 2, "offset": 2}, headers=admin.headers)
    ).json()
    assert len(first_page["events"]) == 2
    assert {e["id"] for e in first_page["events"]}.isdisjoint({e["id"] for e in second_page["events"]})
    issued = (
        await http.get(
            "/api/v1/admin/audit",
            params={"event_type": "token_issued", "client_id": app.client_id},
            headers=admin.headers,
        )
    ).json()
    assert issued["total"] == 1
    event = issued["events"][0]
    assert (event["user_id"], event["client_id"], event["scopes"]) == (
        str(person.user_id),
        app.client_id,
        ["openid", "profile"],
    )
    assert event["ip"] and event["user_agent"] and event["occurred_at"]
    mine = (
        await http.get("/api/v1/admin/audit", params={"user_id": str(person.user_id)}, headers=admin.headers)
    ).json()
    assert {e["user_id"] for e in mine["events"]} == {str(person.user_id)}


async def test_admin_routes_refuse_others(http: httpx.AsyncClient, runtime: Runtime) -> None:
    person = await make_person(runtime)
    for path in ("/api/v1/admin/audit", "/api/v1/admin/webhooks"):
        assert (await http.get(path, headers=person.headers)).status_code == 403
        assert (await http.get(path)).status_code == 401
    admin = await make_person(runtime, is_admin=True)
    bad = await http.get(
        "/api/v1/admin/audit", params={"limit": 0, "user_id": "not-a-uuid"}, headers=admin.headers
    )
    assert bad.status_code == 400
    hooks = await http.get("/api/v1/admin/webhooks", headers=admin.headers)
    assert hooks.json() == {"webhooks": []}
