"""The pages as people use them (issue #28's walk in headless Chromium): Enter does what the page is for, and
nothing a link carries is shown as the page's own words."""

from __future__ import annotations

import re
from urllib.parse import quote

from playwright.async_api import Browser, Page

from tests.browser.conftest import Server
from tests.mail import Mailbox


async def _demo(server: Server, browser: Browser) -> Page:
    output = server.cli("demo")
    url = re.search(r"(http://\S+/demo/start\?client_id=\S+)", output)
    assert url, output
    page = await (await browser.new_context()).new_page()
    await page.goto(url.group(1))
    return page


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
