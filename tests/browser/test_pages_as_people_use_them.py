"""The pages as people use them (issue #28's walk in headless Chromium): Enter does what the page is for,
nothing a link carries is shown as the page's own words, every grant can be seen and narrowed, and a browser
reads pages, never raw JSON."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
from playwright.async_api import Browser, Dialog, Page, expect

from tests.browser.conftest import Server
from tests.mail import Mailbox


async def _demo(server: Server, browser: Browser) -> Page:
    output = server.cli("demo")
    url = re.search(r"(http://\S+/demo/start\?client_id=\S+)", output)
    assert url, output
    page = await (await browser.new_context()).new_page()
    await page.goto(url.group(1))
    return page


async def _sign_in(page: Page, email: str = "demo@example.com", password: str = "consentry-demo") -> None:
    await page.get_by_label("Email or phone number").fill(email)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_enter_signs_in_on_the_password_step(server: Server, browser: Browser) -> None:
    page = await _demo(server, browser)
    await page.get_by_label("Email or phone number").fill("demo@example.com")
    await page.get_by_label("Email or phone number").press("Enter")
    await page.get_by_label("Password", exact=True).fill("consentry-demo")
    await page.get_by_label("Password", exact=True).press("Enter")
    await page.get_by_role("button", name="Allow").wait_for()  # signed in: the consent screen, not a reset
    assert "Check your" not in await page.content()


async def test_enter_verifies_the_code(server: Server, mailbox: Mailbox, browser: Browser) -> None:
    page = await _demo(server, browser)
    await page.get_by_label("Email or phone number").fill("ada@example.com")
    await page.get_by_label("Email or phone number").press("Enter")
    await page.get_by_label("Code").fill(mailbox.last_code("ada@example.com"))
    await page.get_by_label("Code").press("Enter")
    await page.get_by_label("New password").wait_for()  # verified, not "we sent a new code"
    assert mailbox.count("ada@example.com") == 1


async def test_connected_apps_shows_no_text_a_link_brings(server: Server, browser: Browser) -> None:
    page = await _demo(server, browser)
    await page.get_by_label("Email or phone number").fill("demo@example.com")
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password", exact=True).fill("consentry-demo")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Allow").click()
    await page.get_by_text("Signed in to the demo app").wait_for()
    lure = "Your account is locked. Call +1 555 0100 now."
    await page.goto(f"{server.url}/account/apps?notice={quote(lure)}&revoked={quote(lure)}")
    await page.get_by_text("Consentry Demo App").wait_for()
    assert lure not in await page.content()

    page.on("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Revoke access for Consentry Demo App").click()
    await page.get_by_text("Consentry Demo App can no longer see your account.").wait_for()


async def test_connected_apps_lists_each_scope_and_withdraws_one(server: Server, browser: Browser) -> None:
    page = await _demo(server, browser)
    await _sign_in(page)
    await page.get_by_label("Remember my decision").check()
    await page.get_by_role("button", name="Allow").click()
    await page.get_by_text("Signed in to the demo app").wait_for()
    await page.goto(f"{server.url}/account/apps")
    scopes = page.get_by_role("list", name="What Consentry Demo App can do").get_by_role("listitem")
    await expect(scopes).to_have_count(3)  # one item per scope, not a run-on sentence
    await expect(scopes.filter(has_text="See your email address")).to_have_count(1)

    asked: list[str] = []

    async def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.on("dialog", answer)
    await page.get_by_role("button", name="Withdraw “See your email address” from Consentry Demo App").click()
    await page.get_by_text("Consentry Demo App can no longer see your email address.").wait_for()
    assert asked and "Consentry Demo App" in asked[0]
    await expect(scopes).to_have_count(2)
    await expect(scopes.filter(has_text="See your email address")).to_have_count(0)


async def test_a_declined_scope_can_be_asked_for_again(server: Server, browser: Browser) -> None:
    page = await _demo(server, browser)
    await _sign_in(page)
    await page.get_by_label("See your email address").uncheck()
    await page.get_by_label("Remember my decision").check()
    await page.get_by_role("button", name="Allow").click()
    await page.get_by_text("Signed in to the demo app").wait_for()
    again = await page.get_by_role("link", name="Run the demo again").get_attribute("href")
    await page.goto(f"{server.url}/account/apps")
    declined = page.get_by_role("list", name="What you declined for Consentry Demo App")
    await expect(declined.get_by_role("listitem")).to_have_text(["See your email address Let it ask again"])
    ask = "Let Consentry Demo App ask again for “See your email address”"
    await page.get_by_role("button", name=ask).click()
    await page.get_by_text("Consentry Demo App may ask again to see your email address").wait_for()

    await page.goto(f"{server.url}{again}")
    # The app asks again: what it has is shown apart from what is new.
    await page.get_by_role("heading", name="Consentry Demo App wants more access to your account").wait_for()
    already = page.get_by_role("list", name="What Consentry Demo App already can do").get_by_role("listitem")
    await expect(already).to_have_count(2)
    await expect(page.get_by_role("checkbox")).to_have_count(2)  # the new scope and "remember", nothing else
    await expect(page.get_by_label("See your email address")).to_be_checked()
    await page.get_by_label("Remember my decision").check()
    await page.get_by_role("button", name="Allow").click()
    await page.get_by_text('"email": "demo@example.com"').wait_for()


async def test_the_consent_screen_says_who_is_signed_in_and_remembers_only_when_asked(
    server: Server, browser: Browser
) -> None:
    server.cli("user", "create", "--email", "bob@example.com", "--password", "bob-password-1", "--verified")
    page = await _demo(server, browser)
    await _sign_in(page)
    await page.get_by_text("Signed in as demo@example.com").wait_for()
    await expect(page.get_by_label("Remember my decision")).not_to_be_checked()
    await page.get_by_role("button", name="Not you?").click()
    await _sign_in(page, "bob@example.com", "bob-password-1")
    await page.get_by_text("Signed in as bob@example.com").wait_for()
    await page.get_by_role("button", name="Allow").click()
    await page.get_by_text('"email": "bob@example.com"').wait_for()
    # Not remembered: the next run asks again.
    await page.get_by_role("link", name="Run the demo again").click()
    await page.get_by_role("button", name="Allow").wait_for()


async def test_the_demo_does_not_say_a_denial_is_remembered(server: Server, browser: Browser) -> None:
    page = await _demo(server, browser)
    await _sign_in(page)
    await page.get_by_role("button", name="Deny").click()
    await page.get_by_text("The demo app was not allowed in").wait_for()
    assert "remembered" not in (await page.content()).replace("Remember my decision", "")


async def test_a_browser_reads_pages_not_json(server: Server, browser: Browser) -> None:
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{server.url}/")
    await page.get_by_label("Email or phone number").wait_for()  # signed out: the home page asks who you are

    response = await page.goto(f"{server.url}/no/such/page")
    assert response is not None and response.status == 404
    await page.get_by_role("heading", name="This page does not exist").wait_for()

    await page.goto(f"{server.url}/login")
    await page.context.clear_cookies()  # the form's CSRF cookie is gone: the form has expired
    await page.get_by_label("Email or phone number").fill("demo@example.com")
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_role("heading", name="This form has expired").wait_for()

    icon = await page.request.get(f"{server.url}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"
    assert (await icon.body()).startswith(b"\x00\x00\x01\x00")
    async with httpx.AsyncClient() as program:  # a program still gets JSON
        assert (await program.get(f"{server.url}/no/such/page")).json()["error"] == "not_found"
