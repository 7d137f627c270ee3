"""Signing in with an upstream OpenID provider through Consentry's pages, in Chromium (SPEC §10): panva's
oidc-provider runs as a node process on loopback. A first sign-in creates an account after the terms page, a
second reuses it; an existing person's email without email_verified links nothing; a person links the provider
from /account and unlinks it; the only way left to sign in cannot be unlinked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Server
from tests.panva import Panva, panva_provider

ACCOUNTS = {
    "ada": {"email": "ada@panva.example", "email_verified": True, "name": "Ada Lovelace"},
    "carol": {"email": "carol@example.com", "email_verified": False},
    "bob": {"email": "bob@panva.example", "email_verified": True},
    "dave": {"name": "Dave, who shares no email"},
}


@pytest.fixture
def panva(server: Server) -> Iterator[Panva]:
    callback = f"{server.url}/auth/upstream/panva/callback"
    with panva_provider(callback, ACCOUNTS, server.cwd / "panva.log") as provider:
        server.cli(
            "upstream", "create", "--name", "panva", "--display-name", "Panva", "--issuer", provider.issuer,
            "--client-id", provider.client_id, "--client-secret", provider.client_secret, "--trust-email",
        )  # fmt: skip
        yield provider


async def at_panva(page: Page, login: str, server: Server) -> None:
    """Sign in at the provider as ``login`` and consent, until the browser is back at Consentry."""
    for _ in range(6):
        await page.wait_for_load_state()
        if page.url.startswith(server.url):
            return
        if await page.locator('input[name="login"]').count():
            await page.locator('input[name="login"]').fill(login)
            await page.locator('input[name="password"]').fill("any password")
        await page.locator('button[type="submit"]').first.click()
        await page.wait_for_url(lambda url: True)
    raise AssertionError(f"still at the provider: {page.url}")


async def continue_with_panva(browser: Browser, server: Server, login: str) -> Page:
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{server.url}/login")
    await page.get_by_role("link", name="Continue with Panva").click()
    await at_panva(page, login, server)
    return page


async def test_a_first_sign_in_creates_an_account_and_a_second_reuses_it(
    server: Server, panva: Panva, browser: Browser
) -> None:
    page = await continue_with_panva(browser, server, "ada")
    await page.get_by_role("heading", name="Create your account").wait_for()
    await page.get_by_role("button", name="Accept and create my account").click()
    await page.wait_for_url(f"{server.url}/account/apps")
    await page.goto(f"{server.url}/account")
    await page.get_by_text("ada@panva.example").first.wait_for()
    linked = page.locator("#linked-accounts li", has_text="Panva")
    await expect(linked).to_contain_text("linked")

    again = await continue_with_panva(browser, server, "ada")
    await again.wait_for_url(f"{server.url}/account/apps")  # no terms page: the account exists
    await again.goto(f"{server.url}/account")
    await again.get_by_text("ada@panva.example").first.wait_for()


async def test_an_existing_persons_email_without_email_verified_links_nothing(
    server: Server, panva: Panva, browser: Browser
) -> None:
    server.cli(
        "user", "create", "--email", "carol@example.com", "--password", "carol's password", "--verified"
    )
    page = await continue_with_panva(browser, server, "carol")
    await page.get_by_role("heading", name="You already have an account").wait_for()
    assert "Nothing was created or linked" in await page.content()


async def test_link_from_the_account_page_and_unlink(server: Server, panva: Panva, browser: Browser) -> None:
    server.cli("user", "create", "--email", "erin@example.com", "--password", "erin's password", "--verified")
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{server.url}/login")
    await page.get_by_label("Email or phone number").fill("erin@example.com")
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password", exact=True).fill("erin's password")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{server.url}/account/apps")
    await page.goto(f"{server.url}/account")
    await page.locator("#linked-accounts").get_by_role("link", name="Link").click()
    await at_panva(page, "bob", server)
    await page.get_by_text("Linked panva.").wait_for()
    row = page.locator("#linked-accounts li", has_text="Panva")
    await expect(row).to_contain_text("bob@panva.example")
    await row.get_by_role("button", name="Unlink").click()
    await page.wait_for_url(f"{server.url}/account")
    await expect(page.locator("#linked-accounts").get_by_role("link", name="Link")).to_have_count(1)


async def test_the_only_way_in_cannot_be_unlinked(server: Server, panva: Panva, browser: Browser) -> None:
    page = await continue_with_panva(browser, server, "dave")
    await page.get_by_role("button", name="Accept and create my account").click()
    await page.wait_for_url(f"{server.url}/account/apps")
    await page.goto(f"{server.url}/account")
    await page.locator("#linked-accounts").get_by_role("button", name="Unlink").click()
    await page.get_by_role("alert").filter(has_text="only way left to sign in").wait_for()
    await expect(page.locator("#linked-accounts li", has_text="Panva")).to_contain_text("linked")
