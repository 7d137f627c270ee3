"""Account pre-hijacking (SPEC §3; Sudhodanan & Paverd, 2022): whoever registers an identifier without
proving it keeps nothing once its owner proves it. Over real sockets, on both databases."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from consentry.runtime import Runtime, utcnow
from consentry.services.sessions import create_session
from consentry.settings import Settings
from tests.conftest import make_settings
from tests.mail import Mailbox, SmsGateway
from tests.oauth import PASSWORD, Person, make_app, queued_logout_tokens, tokens_for

API = "/api/v1/auth"
VICTIM = "victim@example.com"
ATTACKERS_PASSWORD = "the attacker's own password"
VICTIMS_PASSWORD = "the victim's new password"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, mailbox: Mailbox, sms: SmsGateway) -> Settings:
    return make_settings(database_url, tmp_path, smtp_url=mailbox.url, sms_gateway_url=sms.url)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def prove(http: httpx.AsyncClient, identifier: str, code_of: Any) -> dict[str, Any]:
    """submit-identifier, then verify-identifier with the code the owner received."""
    started = await http.post(f"{API}/submit-identifier", json={"identifier": identifier})
    assert started.status_code == 200, started.text
    assert started.json()["next"] == "verify"
    verified = await http.post(
        f"{API}/verify-identifier",
        json={"code": code_of(identifier)},
        headers=bearer(started.json()["flow_token"]),
    )
    assert verified.status_code == 200, verified.text
    return dict(verified.json())


async def password_sign_in(http: httpx.AsyncClient, identifier: str, password: str) -> httpx.Response:
    started = await http.post(f"{API}/submit-identifier", json={"identifier": identifier})
    assert started.json()["next"] == "password"
    return await http.post(
        f"{API}/login-password", json={"password": password}, headers=bearer(started.json()["flow_token"])
    )


async def test_the_owner_who_proves_the_address_sets_the_password_and_the_registrant_keeps_nothing(
    served: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox
) -> None:
    registered = await served.post(
        f"{API}/register-sync", json={"email": VICTIM, "password": ATTACKERS_PASSWORD, "consent": True}
    )
    assert registered.status_code == 201
    account = registered.json()["user_id"]
    # Whatever the registrant holds of the unproven account: a session, and tokens an app was given.
    async with runtime.database.unit_of_work() as session:
        held = await create_session(session, uuid.UUID(account), now=utcnow(), ttl=timedelta(hours=1))
    registrant = Person(uuid.UUID(account), VICTIM, held.token)
    app = await make_app(runtime, backchannel_logout_uri="http://127.0.0.1:9/logout")
    tokens = await tokens_for(served, runtime, app, registrant, scope="openid offline_access")

    verified = await prove(served, VICTIM, mailbox.last_code)
    assert verified["next"] == "set_password"
    # The app hears that the registrant's session ended (Back-Channel Logout).
    assert [payload["sid"] for _, payload in await queued_logout_tokens(runtime)] == [str(held.session_id)]

    assert (await served.get("/api/v1/users/me", headers=registrant.headers)).status_code == 401
    introspected = await served.post(
        "/oauth2/introspect", data={"token": tokens["access_token"]}, auth=app.basic()
    )
    assert introspected.json() == {"active": False}
    refreshed = await served.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=app.basic(),
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"

    # The discarded password never entered the history: the owner may even choose it.
    done = await served.post(
        f"{API}/set-password",
        json={"password": ATTACKERS_PASSWORD, "consent": True},
        headers=bearer(verified["flow_token"]),
    )
    assert done.status_code == 200, done.text
    assert done.json()["user_id"] == account
    me = await served.get("/api/v1/users/me", headers=bearer(done.json()["session_token"]))
    assert me.json()["email_verified"] is True


async def test_the_registrants_password_is_refused_after_the_owner_claims_the_account(
    served: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    await served.post(
        f"{API}/register-sync", json={"email": VICTIM, "password": ATTACKERS_PASSWORD, "consent": True}
    )
    verified = await prove(served, VICTIM, mailbox.last_code)
    assert verified["next"] == "set_password"
    refused = await served.post(
        f"{API}/set-password", json={"password": VICTIMS_PASSWORD}, headers=bearer(verified["flow_token"])
    )
    assert (
        refused.status_code == 400
    )  # the owner accepts the terms: the registrant's acceptance is not theirs
    done = await served.post(
        f"{API}/set-password",
        json={"password": VICTIMS_PASSWORD, "consent": True},
        headers=bearer(verified["flow_token"]),
    )
    assert done.status_code == 200
    assert (await password_sign_in(served, VICTIM, ATTACKERS_PASSWORD)).status_code == 401
    assert (await password_sign_in(served, VICTIM, VICTIMS_PASSWORD)).status_code == 200


async def test_an_address_registered_beside_the_registrants_own_phone_goes_to_its_owner_alone(
    served: httpx.AsyncClient, mailbox: Mailbox, sms: SmsGateway
) -> None:
    phone = "+442079460958"
    registered = await served.post(
        f"{API}/register-sync",
        json={"email": VICTIM, "phone": phone, "password": ATTACKERS_PASSWORD, "consent": True},
    )
    account = registered.json()["user_id"]
    # The registrant proves the phone they do own, and sets a password on that account.
    by_phone = await prove(served, phone, sms.last_code)
    assert by_phone["next"] == "set_password"
    attacker = await served.post(
        f"{API}/set-password",
        json={"password": ATTACKERS_PASSWORD, "consent": True},
        headers=bearer(by_phone["flow_token"]),
    )
    assert attacker.status_code == 200
    # The address's owner proves it: it leaves the registrant's account and becomes an account of its own.
    by_email = await prove(served, VICTIM, mailbox.last_code)
    assert by_email["next"] == "set_password"
    owner = await served.post(
        f"{API}/set-password",
        json={"password": VICTIMS_PASSWORD, "consent": True},
        headers=bearer(by_email["flow_token"]),
    )
    assert owner.status_code == 200, owner.text
    assert owner.json()["user_id"] != account
    owners = (await served.get("/api/v1/users/me", headers=bearer(owner.json()["session_token"]))).json()
    assert (owners["email"], owners["email_verified"]) == (VICTIM, True)
    attackers = (
        await served.get("/api/v1/users/me", headers=bearer(attacker.json()["session_token"]))
    ).json()
    assert attackers["email"] is None and attackers["phone"] == phone
    assert (await password_sign_in(served, VICTIM, VICTIMS_PASSWORD)).json()["user_id"] == owners["user_id"]


async def test_a_verified_account_signs_in_with_its_password_as_before(
    served: httpx.AsyncClient, runtime: Runtime
) -> None:
    from tests.oauth import make_person

    person = await make_person(runtime)
    signed_in = await password_sign_in(served, person.email, PASSWORD)
    assert signed_in.status_code == 200
