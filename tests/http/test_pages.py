"""The server-rendered pages (no browser): forms, CSRF, redirects after sign-in, sessions, revoke fallback."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.conftest import make_settings
from tests.mail import Mailbox
from tests.oauth import PASSWORD, approve, authorize_params, make_app, make_person, query_of

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, mailbox: Mailbox) -> Settings:
    return make_settings(database_url, tmp_path, smtp_url=mailbox.url)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def post_login(http: httpx.AsyncClient, page: httpx.Response, **fields: str) -> httpx.Response:
    values = {
        name: value for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    }
    return await http.post("/login", data=values | fields)


async def test_login_page_signs_in_and_returns_to_the_app(http: httpx.AsyncClient, runtime: Runtime) -> None:
    app, person = await make_app(runtime), await make_person(runtime)
    params = authorize_params(app, scope="openid")
    await approve(http, person, params)
    start = await http.get("/oauth2/authorize", params=params)
    page = await http.get(start.headers["location"])
    assert page.status_code == 200
    assert "to continue to" in page.text and "Test App" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    step2 = await post_login(http, page, identifier=person.email)
    assert "Enter your password" in step2.text
    wrong = await post_login(http, step2, password="wrong password")
    assert wrong.status_code == 401
    assert "the password is not correct" in wrong.text
    done = await post_login(http, wrong, password=PASSWORD)
    assert done.status_code == 302
    query = query_of(done.headers["location"])
    assert "code" in query and query["state"] == params["state"]
    assert "consentry_session=" in done.headers["set-cookie"]


async def test_login_form_without_the_csrf_cookie_is_refused(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    page = await http.get("/login")
    token = hidden(page.text, "csrf_token")
    http.cookies.clear()
    forged = await http.post(
        "/login", data={"csrf_token": token, "step": "identifier", "identifier": person.email}
    )
    assert forged.status_code == 403


async def test_sign_up_on_the_page_then_connected_apps(
    http: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox
) -> None:
    page = await http.get("/login")
    code_page = await post_login(http, page, identifier="pages@example.com")
    assert "Check your email" in code_page.text
    password_page = await post_login(http, code_page, code=mailbox.last_code("pages@example.com"))
    assert "Create your account" in password_page.text
    no_terms = await post_login(http, password_page, password="a fine passphrase")
    assert no_terms.status_code == 400
    done = await post_login(http, no_terms, password="a fine passphrase", terms="on")
    assert done.status_code == 302
    assert done.headers["location"] == "/account/apps"
    apps = await http.get("/account/apps")
    assert "No application can see your account right now." in apps.text


async def test_forgot_password_on_the_page(
    http: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox
) -> None:
    person = await make_person(runtime)
    page = await http.get("/login")
    password_page = await post_login(http, page, identifier=person.email)
    code_page = await post_login(http, password_page, action="forgot")
    assert "Check your email" in code_page.text
    reset_page = await post_login(http, code_page, code=mailbox.last_code(person.email))
    assert "Choose a new password" in reset_page.text
    assert 'name="terms"' not in reset_page.text
    done = await post_login(http, reset_page, password="another long passphrase")
    assert done.status_code == 302


async def test_account_pages_need_a_session(http: httpx.AsyncClient) -> None:
    for path in ("/account", "/account/apps"):
        response = await http.get(path)
        assert (response.status_code, response.headers["location"]) == (302, "/login")


async def test_sessions_are_listed_and_can_be_ended(http: httpx.AsyncClient, runtime: Runtime) -> None:
    person = await make_person(runtime)
    other = await http.post("/api/v1/auth/submit-identifier", json={"identifier": person.email})
    second = await http.post(
        "/api/v1/auth/login-password",
        json={"password": PASSWORD},
        headers={"Authorization": f"Bearer {other.json()['flow_token']}"},
    )
    second_token = second.json()["session_token"]
    http.cookies.clear()
    page = await http.get("/account", headers=person.headers)
    assert page.text.count('action="/account/sessions/') == 2
    csrf = hidden(page.text, "csrf_token")
    ids = re.findall(r'action="/account/sessions/([0-9a-f-]+)/end"', page.text)
    forged = await http.post(
        f"/account/sessions/{ids[0]}/end", data={"csrf_token": "x"}, headers=person.headers
    )
    assert forged.status_code == 403
    for session_id in ids:
        if "this device" not in page.text.split(session_id)[0].rsplit("<li>", 1)[-1]:
            response = await http.post(
                f"/account/sessions/{session_id}/end", data={"csrf_token": csrf}, headers=person.headers
            )
            assert response.status_code == 302
    app = await make_app(runtime)
    ended = await http.get(
        "/oauth2/authorize", params=authorize_params(app), headers={"Authorization": f"Bearer {second_token}"}
    )
    assert ended.headers["location"].startswith("/login?")
    still = await http.get("/oauth2/authorize", params=authorize_params(app), headers=person.headers)
    assert still.headers["location"].startswith("/consent?")


async def test_revoke_form_fallback_with_csrf(http: httpx.AsyncClient, runtime: Runtime) -> None:
    person, app = await make_person(runtime), await make_app(runtime, name="Fallback App")
    await approve(http, person, authorize_params(app))
    page = await http.get("/account/apps", headers=person.headers)
    assert "Fallback App" in page.text
    assert "Sign you in with your Consentry account" in page.text
    forged = await http.post(
        f"/account/apps/{app.client_id}/revoke", data={"csrf_token": "0" * 64}, headers=person.headers
    )
    assert forged.status_code == 403
    response = await http.post(
        f"/account/apps/{app.client_id}/revoke",
        data={"csrf_token": hidden(page.text, "csrf_token")},
        headers=person.headers,
    )
    assert response.status_code == 302
    after = await http.get(response.headers["location"], headers=person.headers)
    assert "Fallback App can no longer see your account." in after.text  # the page's words, naming the app
    assert "data-client-id" not in after.text


SITE_CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
ENDING_AT_THE_APP = SITE_CSP.replace("form-action 'self'", "form-action 'self' https://app.example.com")


@pytest.mark.parametrize(
    ("page", "policy"),
    [("/login", ENDING_AT_THE_APP), ("/consent", ENDING_AT_THE_APP), ("/account/apps", SITE_CSP)],
)
async def test_every_page_keeps_the_whole_site_policy(
    http: httpx.AsyncClient, runtime: Runtime, page: str, policy: str
) -> None:
    """A sign-in or consent form ends at the client's redirect URI: its origin, and only it, joins 'self'
    among the form's targets (browsers apply form-action to the redirect that answers a form)."""
    app, person = await make_app(runtime), await make_person(runtime)
    response = await http.get(page, params=authorize_params(app, scope="openid"), headers=person.headers)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == policy
    assert response.headers["x-frame-options"] == "DENY"


async def test_a_redirect_uri_the_client_did_not_register_joins_no_policy(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    app = await make_app(runtime)
    params = authorize_params(app, scope="openid") | {"redirect_uri": "https://evil.example/cb"}
    response = await http.get("/login", params=params)
    assert response.headers["content-security-policy"] == SITE_CSP


async def test_a_csrf_token_of_any_text_is_refused_not_a_500(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    app, person = await make_app(runtime), await make_person(runtime)
    form = authorize_params(app, scope="openid") | {"csrf_token": "Ö\u00f3\U0001f600", "decision": "allow"}
    consent = await http.post("/oauth2/consent", data=form, headers=person.headers)
    assert consent.status_code == 403
    http.cookies.set("consentry_login_csrf", "a-cookie", path="/login")
    login = await http.post(
        "/login", data={"csrf_token": "Ö\u00f3", "step": "identifier", "identifier": "x@y.z"}
    )
    assert login.status_code == 403
