"""An administrator can find an account and see what they need to help its owner (SPEC §9): look-up by email,
phone or id (deleted accounts included), and one account's profile, sessions and connected apps."""

from __future__ import annotations

import httpx

from consentry.runtime import Runtime
from tests.oauth import authorize_params, exchange_code, get_code, make_app, make_person, pkce_pair

USERS = "/api/v1/admin/users"


async def test_look_up_by_email_whatever_its_case_and_by_id(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await make_person(runtime, is_admin=True)
    person = await make_person(runtime, name="Ada")
    by_email = await http.get(USERS, params={"identifier": person.email.upper()}, headers=admin.headers)
    assert by_email.status_code == 200, by_email.text
    assert [u["user_id"] for u in by_email.json()["users"]] == [str(person.user_id)]
    assert by_email.json()["users"][0]["status"] == "active"
    by_id = await http.get(USERS, params={"user_id": str(person.user_id)}, headers=admin.headers)
    assert [u["email"] for u in by_id.json()["users"]] == [person.email]
    nobody = await http.get(USERS, params={"identifier": "nobody@example.com"}, headers=admin.headers)
    assert nobody.json() == {"users": []}
    assert (await http.get(USERS, headers=admin.headers)).status_code == 400
    bad = await http.get(USERS, params={"identifier": "not an identifier"}, headers=admin.headers)
    assert bad.status_code == 400


async def test_a_deleted_account_is_still_found(http: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await make_person(runtime, is_admin=True)
    person = await make_person(runtime)
    assert (await http.delete("/api/v1/users/me", headers=person.headers)).status_code == 200
    found = (await http.get(USERS, params={"identifier": person.email}, headers=admin.headers)).json()[
        "users"
    ]
    assert [(u["user_id"], u["status"]) for u in found] == [(str(person.user_id), "deleted")]
    assert found[0]["purge_after"]


async def test_one_accounts_profile_sessions_and_apps(http: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await make_person(runtime, is_admin=True)
    person = await make_person(runtime, name="Grace")
    app = await make_app(runtime, name="Compiler")
    verifier, challenge = pkce_pair()
    code = await get_code(http, person, authorize_params(app, challenge=challenge))
    assert (await exchange_code(http, app, code, verifier)).status_code == 200

    seen = await http.get(f"{USERS}/{person.user_id}", headers=admin.headers)
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert (body["email"], body["name"], body["email_verified"], body["status"]) == (
        person.email,
        "Grace",
        True,
        "active",
    )
    assert [s["session_id"] for s in body["sessions"]] == [str(person.session_id)]
    assert [(c["client_id"], c["client_name"], c["remembered"]) for c in body["consents"]] == [
        (app.client_id, "Compiler", True)
    ]
    assert body["linked_accounts"] == []
    missing = await http.get(f"{USERS}/00000000-0000-0000-0000-000000000000", headers=admin.headers)
    assert missing.status_code == 404
