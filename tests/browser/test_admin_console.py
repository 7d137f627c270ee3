"""An administrator walks through each section of the admin console in Chromium (issue #33): reads what the
page says, and checks the effect through the admin API (the same browser's cookie)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import Server, sign_in

# The console's pages call the services the admin API calls, which tests/http runs on both backends.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ADMIN, ADMIN_PASSWORD = "admin@example.com", "admin passphrase"


async def as_admin(browser: Browser, server: Server) -> Page:
    server.cli("user", "create", "--email", ADMIN, "--password", ADMIN_PASSWORD, "--verified", "--admin")
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{server.url}/login")
    await sign_in(page, ADMIN, ADMIN_PASSWORD)
    await page.get_by_role("heading", name="Connected apps").wait_for()
    page.on("dialog", lambda dialog: dialog.accept())  # confirmations are read in the accessibility walk
    return page


async def api(page: Page, server: Server, path: str) -> Any:
    answer = await page.request.get(server.url + path)
    assert answer.status == 200, (path, answer.status, await answer.text())
    return await answer.json()


async def notice(page: Page) -> str:
    return (await page.get_by_role("status").first.inner_text()).strip()


async def introspects(page: Page, server: Server, client_id: str, secret: str) -> int:
    answer = await page.request.post(
        f"{server.url}/oauth2/introspect",
        form={"token": "nothing"},
        headers={"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()},
    )
    return answer.status


async def test_the_overview_draws_the_statistics_with_their_numbers(server: Server, browser: Browser) -> None:
    page = await as_admin(browser, server)
    await page.goto(f"{server.url}/admin")
    figures = await api(page, server, "/api/v1/admin/stats")
    today = figures["generated_at"][:10]
    sign_ins = sum(
        row["count"]
        for row in figures["activity_by_day"]
        if row["day"] == today and row["event_type"] == "login_succeeded"
    )
    assert sign_ins >= 1
    chart = page.get_by_role("figure", name="Sign-ins per day (30 days)")
    assert await chart.get_by_role("img", name="Sign-ins per day (30 days)").count() == 1
    row = chart.get_by_role("row", name=today)
    assert await row.get_by_role("cell").inner_text() == str(sign_ins)
    assert await chart.locator("rect").count() == 30  # a bar a day
    for caption in (
        "Consents granted and revoked per day (30 days)",
        "Most used apps (people who allowed them)",
        "Refreshes per token issued, by app (7 days)",
    ):
        figure = page.get_by_role("figure", name=caption)
        assert await figure.get_by_role("table").count() == 1, caption


async def test_an_administrator_registers_edits_rekeys_and_deletes_a_client(
    server: Server, browser: Browser
) -> None:
    page = await as_admin(browser, server)
    await page.goto(f"{server.url}/admin/clients")
    await page.get_by_role("link", name="Register a client").click()
    await page.get_by_label("Name", exact=True).fill("Acme Notes")
    await page.get_by_label("Redirect URIs (one per line)", exact=True).fill("http://127.0.0.1:9999/callback")
    await page.get_by_label("Scopes it may ask for (space-separated)").fill("openid email")
    await page.get_by_role("button", name="Register").click()
    await page.get_by_text("Copy it now: it is shown only once").wait_for()
    client_id = re.search(r"Client ID: (\S+)", await notice(page))
    assert client_id
    cid = client_id.group(1)
    secret = await page.get_by_label("Client secret").input_value()
    assert await introspects(page, server, cid, secret) == 200
    described = await api(page, server, f"/api/v1/oauth2/clients/{cid}")
    assert (described["client_name"], described["redirect_uris"]) == (
        "Acme Notes",
        ["http://127.0.0.1:9999/callback"],
    )

    await page.goto(f"{server.url}/admin/clients/{cid}")
    await page.get_by_label("Name", exact=True).fill("Acme Notes Pro")
    await page.get_by_role("button", name="Save").click()
    assert await notice(page) == "The client is saved."
    assert (await api(page, server, f"/api/v1/oauth2/clients/{cid}"))["client_name"] == "Acme Notes Pro"

    await page.get_by_role("button", name="Regenerate the secret").click()
    new_secret = await page.get_by_label("Client secret").input_value()
    assert new_secret != secret
    assert await introspects(page, server, cid, secret) == 401
    assert await introspects(page, server, cid, new_secret) == 200

    await page.get_by_role("button", name="Delete the client").click()
    assert await notice(page) == "The client is deleted; every token it held is revoked."
    assert (await page.request.get(f"{server.url}/api/v1/oauth2/clients/{cid}")).status == 404
    assert await page.locator("#clients").get_by_text("Acme Notes Pro").count() == 0


async def test_an_administrator_finds_a_person_ends_a_consent_deletes_and_restores(
    server: Server, browser: Browser
) -> None:
    output = server.cli("demo")
    demo_url = re.search(r"(http://\S+/demo/start\?client_id=\S+)", output)
    assert demo_url
    person = await (await browser.new_context()).new_page()
    await person.goto(demo_url.group(1))
    await sign_in(person, "demo@example.com", "consentry-demo")
    await person.get_by_label("Remember my decision").check()
    await person.get_by_role("button", name="Allow").click()
    await person.get_by_text("Signed in to the demo app").wait_for()

    page = await as_admin(browser, server)
    await page.goto(f"{server.url}/admin/users")
    await page.get_by_label("Find by email, phone or user ID").fill("demo@example.com")
    await page.get_by_role("button", name="Search").click()
    await page.locator("#users").get_by_role("link", name="demo@example.com").click()
    user_id = page.url.rsplit("/", 1)[1]
    consents = page.locator("#consents")
    assert await consents.get_by_role("row", name=re.compile("Consentry Demo App")).count() == 1
    assert await page.locator("#sessions li").filter(has_text="HeadlessChrome on Linux").count() == 1

    await consents.get_by_role("button", name="Revoke access for Consentry Demo App").click()
    assert await notice(page) == "The consent is revoked; the app was told."
    assert (await api(page, server, f"/api/v1/admin/users/{user_id}"))["consents"] == []

    await page.get_by_role("button", name="Delete the account").click()
    assert await notice(page) == "The account is deleted; it can be restored during the grace period."
    assert (await api(page, server, f"/api/v1/admin/users/{user_id}"))["status"] == "deleted"
    await page.get_by_role("button", name="Restore the account").click()
    assert await notice(page) == "The account is restored."
    assert (await api(page, server, f"/api/v1/admin/users/{user_id}"))["status"] == "active"

    await page.get_by_role("link", name="This account's audit trail").click()
    events = await page.locator("#audit tbody th").all_inner_texts()
    assert "consent_revoked (admin)" in {e.strip() for e in events}


async def test_an_administrator_manages_scopes_and_resources(server: Server, browser: Browser) -> None:
    page = await as_admin(browser, server)
    await page.goto(f"{server.url}/admin/scopes")
    await page.get_by_label("Name", exact=True).first.fill("notes:read")
    await page.get_by_label("What the person reads on the consent screen").fill("Read your notes")
    await page.get_by_role("button", name="Add the scope").click()
    assert await notice(page) == "The scope is created."
    assert (await api(page, server, "/api/v1/admin/scopes/notes:read"))["description"] == "Read your notes"

    row = page.locator("#scopes").get_by_role("row", name=re.compile("notes:read"))
    await row.get_by_text("Change notes:read").click()
    await row.get_by_label("Description").fill("Read the notes you wrote")
    await row.get_by_role("button", name="Save").click()
    assert await notice(page) == "The scope is saved."
    assert (await api(page, server, "/api/v1/admin/scopes/notes:read"))[
        "description"
    ] == "Read the notes you wrote"
    row = page.locator("#scopes").get_by_role("row", name=re.compile("notes:read"))
    await row.get_by_text("Change notes:read").click()
    await row.get_by_role("button", name="Delete").click()
    assert await notice(page) == "The scope is deleted."
    assert (await page.request.get(f"{server.url}/api/v1/admin/scopes/notes:read")).status == 404

    await page.get_by_label("Identifier (the API's URL)").fill("https://api.example.com")
    await page.locator("#resource-name").fill("Notes API")
    await page.get_by_role("button", name="Add the resource").click()
    await page.get_by_text("Copy its credentials now").wait_for()
    assert await page.get_by_label("Client secret").input_value()
    resources = (await api(page, server, "/api/v1/admin/resources"))["resources"]
    assert [r["identifier"] for r in resources] == ["https://api.example.com"]
    await page.locator("#resources").get_by_role("button", name="Delete Notes API").click()
    assert await notice(page) == "The resource is deleted."
    assert (await api(page, server, "/api/v1/admin/resources"))["resources"] == []


async def test_the_audit_trail_filters_and_webhooks_show_dead_letters(
    server: Server, browser: Browser
) -> None:
    page = await as_admin(browser, server)
    server.cli("demo")  # a client_created event
    await page.goto(f"{server.url}/admin/audit")
    await page.get_by_label("Event").fill("login_succeeded")
    await page.get_by_role("button", name="Filter").click()
    shown = {e.split(" ")[0] for e in await page.locator("#audit tbody th").all_inner_texts()}
    trail = await api(page, server, "/api/v1/admin/audit?event_type=login_succeeded")
    assert shown == {"login_succeeded"}
    assert await page.get_by_role("status").inner_text() == f"{trail['total']} event" + (
        "s" if trail["total"] != 1 else ""
    )
    await page.get_by_label("User ID").fill("not-a-uuid")
    await page.get_by_role("button", name="Filter").click()
    await page.get_by_text("not a user ID: it is ignored").wait_for()

    await page.goto(f"{server.url}/admin/webhooks")
    dead = (await api(page, server, "/api/v1/admin/webhooks?status=dead"))["webhooks"]
    assert await page.locator("#webhooks tbody tr").count() == max(len(dead), 1)
    await page.get_by_role("link", name="Delivered").click()
    assert await page.get_by_role("link", name="Delivered").get_attribute("aria-current") == "true"


async def test_the_console_is_for_administrators_only(server: Server, browser: Browser) -> None:
    server.cli("demo")
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{server.url}/admin")
    assert page.url.endswith("/login")
    await sign_in(page, "demo@example.com", "consentry-demo")
    await page.get_by_role("heading", name="Connected apps").wait_for()
    for path in ("/admin", "/admin/clients", "/admin/users", "/admin/audit"):
        answer = await page.goto(server.url + path)
        assert answer is not None and answer.status == 403, path
