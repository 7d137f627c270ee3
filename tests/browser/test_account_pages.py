"""A person looks after their own account in Chromium (issue #33): profile, email and phone, password,
sessions, activity, export, sign-out everywhere and deletion. Each step reads what the page says, then checks
the effect through the API (the same browser's cookie) or the operator's CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Dialog, Page

from tests.browser.conftest import Server, sign_in
from tests.mail import Mailbox, SmsGateway

EMAIL, PASSWORD = "demo@example.com", "consentry-demo"


@pytest.fixture
def server(server: Server) -> Server:
    """The browser tests' server, with the demo's person: demo@example.com, password consentry-demo."""
    server.cli("demo")
    return server


async def signed_in(
    browser: Browser, server: Server, password: str = PASSWORD
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{server.url}/login")
    await sign_in(page, EMAIL, password)
    await page.get_by_role("heading", name="Connected apps").wait_for()
    return context, page


async def me(page: Page, server: Server) -> dict[str, object]:
    """What the API says of the signed-in person, with the browser's own cookie."""
    answer = await page.request.get(f"{server.url}/api/v1/users/me")
    assert answer.status == 200, await answer.text()
    return dict(await answer.json())


async def notice(page: Page) -> str:
    return (await page.get_by_role("status").inner_text()).strip()


async def test_a_person_edits_their_profile_and_changes_email_phone_and_password(
    server: Server, browser: Browser, mailbox: Mailbox, sms: SmsGateway
) -> None:
    _, page = await signed_in(browser, server)
    await page.goto(f"{server.url}/account")
    await page.get_by_role("link", name="Edit profile").click()
    await page.get_by_label("Full name").fill("Ada Lovelace")
    await page.get_by_label("Username").fill("ada")
    await page.get_by_label("Picture").fill("https://images.example.com/ada.png")
    await page.get_by_label("Time zone").fill("Asia/Jakarta")
    await page.get_by_role("button", name="Save").click()
    assert await notice(page) == "Your profile is saved."
    profile = await me(page, server)
    assert (profile["name"], profile["preferred_username"], profile["picture"], profile["zoneinfo"]) == (
        "Ada Lovelace",
        "ada",
        "https://images.example.com/ada.png",
        "Asia/Jakarta",
    )
    # A time zone no app could use: refused, said why, and what was typed is still there to correct.
    await page.get_by_role("link", name="Edit profile").click()
    await page.get_by_label("Full name").fill("Ada King")
    await page.get_by_label("Time zone").fill("Mars/Olympus")
    await page.get_by_role("button", name="Save").click()
    assert await page.get_by_role("alert").inner_text() == (
        "Mars/Olympus is not a time zone: use an IANA name, such as Asia/Jakarta"
    )
    assert await page.get_by_label("Full name").input_value() == "Ada King"
    assert await page.get_by_label("Time zone").input_value() == "Mars/Olympus"
    assert (await me(page, server))["name"] == "Ada Lovelace"
    await page.get_by_label("Time zone").fill("Europe/London")
    await page.get_by_role("button", name="Save").click()
    assert await notice(page) == "Your profile is saved."
    assert ((await me(page, server))["name"], (await me(page, server))["zoneinfo"]) == (
        "Ada King",
        "Europe/London",
    )

    # A new email: the password first, then the code sent to the new address.
    await page.get_by_role("link", name="Change email").click()
    await page.get_by_label("New email address").fill("ada@example.org")
    await page.get_by_label("Current password").fill("not the password")
    await page.get_by_role("button", name="Send a code").click()
    assert await page.get_by_role("alert").inner_text() == "the current password is not correct"
    assert mailbox.count("ada@example.org") == 0
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_role("button", name="Send a code").click()
    await page.get_by_text("We sent a 6-digit code to ada@example.org").wait_for()
    assert (await me(page, server))["email"] == EMAIL  # unchanged until the code is entered
    await page.get_by_label("Code").fill(mailbox.last_code("ada@example.org"))
    await page.get_by_role("button", name="Verify").click()
    assert await notice(page) == "Your email address is changed and verified."
    profile = await me(page, server)
    assert (profile["email"], profile["email_verified"]) == ("ada@example.org", True)

    await page.get_by_role("link", name="Add a phone number").click()
    await page.get_by_label("New phone number").fill("+6281234567890")
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_role("button", name="Send a code").click()
    await page.get_by_label("Code").fill(sms.last_code("+6281234567890"))
    await page.get_by_role("button", name="Verify").click()
    assert await notice(page) == "Your phone number is changed and verified."
    profile = await me(page, server)
    assert (profile["phone"], profile["phone_verified"]) == ("+6281234567890", True)

    # The password: the show toggle reveals what is typed; a reused one is refused.
    await page.get_by_role("link", name="Change password").click()
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password").fill(PASSWORD)
    show = page.get_by_role("button", name="Show").last
    await show.click()
    assert await page.get_by_label("New password").get_attribute("type") == "text"
    assert await page.get_by_role("button", name="Hide").get_attribute("aria-pressed") == "true"
    await page.get_by_role("button", name="Change password").click()
    assert "you have not used for your last 5" in await page.get_by_role("alert").inner_text()
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password").fill("a new passphrase")
    await page.get_by_role("button", name="Change password").click()
    assert (await notice(page)).startswith("Your password is changed.")
    login = await page.request.post(
        f"{server.url}/api/v1/auth/register-sync",
        data={"email": "ada@example.org", "password": "x" * 12, "consent": True},
    )
    assert login.status == 409  # the address is the account's now

    await page.goto(f"{server.url}/account/activity")
    rows = await page.locator("table.activity tbody tr").all_inner_texts()
    kinds = [row.split("\t")[1].split(" · ")[0] for row in rows]
    assert kinds[:4] == [
        "Password changed",
        "Email or phone changed",
        "Email or phone changed",
        "Profile updated",
    ]
    assert "Signed in" in kinds
    assert "HeadlessChrome on Linux" in rows[0]


async def test_sessions_read_as_devices_and_end_one_by_one_or_everywhere(
    server: Server, browser: Browser
) -> None:
    other, other_page = await signed_in(browser, server)
    _, page = await signed_in(browser, server)
    await page.goto(f"{server.url}/account")
    sessions = page.locator("#sessions li")
    assert await sessions.count() == 2
    assert await sessions.nth(0).get_by_text("HeadlessChrome on Linux").count() == 1
    await sessions.filter(has_not_text="this device").get_by_role("button", name="Sign out").click()
    assert await notice(page) == "That device is signed out."
    assert await page.locator("#sessions li").count() == 1
    assert (await other_page.request.get(f"{server.url}/api/v1/users/me")).status == 401
    await other.close()

    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Sign out everywhere").click()
    assert await notice(page) == "You are signed out on every device, and every app's access has ended."
    assert (await page.request.get(f"{server.url}/api/v1/users/me")).status == 401


async def test_a_person_downloads_their_data_then_deletes_the_account(
    server: Server, browser: Browser
) -> None:
    _, page = await signed_in(browser, server)
    await page.goto(f"{server.url}/account")
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download my data").click()
    download = await downloading.value
    exported = json.loads(await asyncio.to_thread(Path(await download.path()).read_text))
    user_id = str((await me(page, server))["user_id"])
    assert download.suggested_filename.startswith("consentry-export-")
    assert exported["user_id"] == user_id

    await page.get_by_role("link", name="Delete my account").click()
    await page.get_by_text("Signing in within 30 days restores the account").wait_for()
    asked: list[str] = []

    async def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.on("dialog", answer)
    await page.get_by_label("Current password").fill("wrong")
    await page.get_by_role("button", name="Delete my account").click()
    assert await page.get_by_role("alert").inner_text() == "the current password is not correct"
    assert json.loads(server.cli("user", "show", user_id))["status"] == "active"
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_role("button", name="Delete my account").click()
    await page.get_by_role("heading", name="Your account is deleted").wait_for()
    assert "Sign in before" in await notice(page)
    assert asked == ["Delete your account? Every app loses access at once."] * 2
    assert json.loads(server.cli("user", "show", user_id))["status"] == "deleted"
    assert (await page.request.get(f"{server.url}/api/v1/users/me")).status == 401


async def test_a_form_from_another_site_changes_nothing(server: Server, browser: Browser) -> None:
    _, page = await signed_in(browser, server)
    forged = await page.request.post(f"{server.url}/account/profile", form={"name": "Mallory"})
    assert forged.status == 403
    assert (await me(page, server))["name"] is None
