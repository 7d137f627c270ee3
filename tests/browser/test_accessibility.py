"""The pages people use pass axe-core (pinned in tests/axe, installed by `make test`, injected from disk: no
network) with no violation, in English and in Bahasa Indonesia, light and dark: sign-in, consent, the demo
app's answer, every account page, Connected apps, sign-out and error pages. In Indonesian (the browser's
``Accept-Language``), no message of the catalog shows in English."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import Server
from tests.i18n import untranslated

# What a page shows does not depend on the database: these walks run on SQLite alone (the account and console
# tests run each action on both backends).
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
AXE = Path(__file__).parent.parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ACCOUNT_PAGES = (
    "/account", "/account/apps", "/account/profile", "/account/password", "/account/email", "/account/phone",
    "/account/activity", "/account/delete", "/oauth2/logout", "/oauth2/authorize?client_id=nobody",
    "/no-such-page",
)  # fmt: skip


async def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA findings on the page as it stands, in light and in dark mode."""
    await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = []
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        found += await page.evaluate(
            "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}))"
            ".violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
        )
    await page.emulate_media(color_scheme="light")
    return found


async def visible_text(page: Page) -> str:
    """What a person reads or hears: the rendered text, the title, and labels, placeholders and questions."""
    return str(
        await page.evaluate(
            """() => [document.title, document.body.innerText,
                ...[...document.querySelectorAll('[aria-label],[placeholder],[title],[alt],[data-confirm]')]
                  .flatMap(e => ['aria-label', 'placeholder', 'title', 'alt', 'data-confirm']
                    .map(a => e.getAttribute(a)).filter(Boolean))].join('\\n')"""
        )
    )


@pytest.mark.parametrize("language", ["en", "id"])
async def test_every_page_a_person_walks_through_passes_axe_in_both_languages(
    server: Server, browser: Browser, language: str
) -> None:
    assert AXE.exists(), "run `make node-deps` (part of `make test`): axe-core is pinned in tests/axe"
    # bypass_csp: the checker is injected; locale: the browser's Accept-Language
    context = await browser.new_context(bypass_csp=True, locale=language)
    page = await context.new_page()
    found: dict[str, list[dict[str, Any]]] = {}
    english: dict[str, list[str]] = {}

    async def check(name: str) -> None:
        assert await page.evaluate("document.documentElement.lang") == language, name
        found[name] = await violations(page)
        if language == "id":
            english[name] = untranslated(await visible_text(page))

    url = re.search(r"(http://\S+/demo/start\?client_id=\S+)", server.cli("demo"))
    assert url
    await page.goto(url.group(1))
    await check("sign-in")
    await page.locator("#identifier").fill("demo@example.com")
    await page.locator("button.primary").click()
    await page.locator("#password").wait_for()
    await check("password")
    await page.locator("#password").fill("wrong password")
    await page.locator("button.primary").click()
    await page.locator("#form-error").wait_for()
    await check("wrong password")
    await page.locator("#password").fill("consentry-demo")
    await page.locator("button.primary").click()
    await page.locator("button[value=allow]").wait_for()
    await check("consent")
    await page.locator("button[value=allow]").click()
    await page.locator("textarea.token").first.wait_for()
    await check("demo app")
    for path in ACCOUNT_PAGES:
        await page.goto(server.url + path)
        await check(path)
    await page.goto(server.url + "/account/password")
    await page.locator("#current_password").fill("not it")
    await page.locator("#password").fill("a new passphrase")
    await page.locator("button.primary").click()
    await page.locator("#form-error").wait_for()
    await check("password refused")
    await page.goto(server.url + "/account/email")
    await page.locator("#value").fill("demo@example.org")
    await page.locator("#current_password").fill("consentry-demo")
    await page.locator("button.primary").click()
    await page.locator("#code").wait_for()
    await check("email code")
    await page.goto(server.url + "/account/delete")
    await page.locator("#current_password").fill("consentry-demo")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.locator("button.danger").click()
    await page.locator("[role=status]").wait_for()
    await check("account deleted")
    await page.goto(server.url + "/login?signed_out=1")
    await check("signed out")
    assert {page_name: found_here for page_name, found_here in found.items() if found_here} == {}
    assert {page_name: texts for page_name, texts in english.items() if texts} == {}


async def test_an_app_asks_for_indonesian_with_ui_locales(server: Server, browser: Browser) -> None:
    """``ui_locales=id`` on the authorization request: sign-in and consent are in Indonesian, though the
    browser asks for English; the language lasts the visit."""
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    url = re.search(r"(http://\S+/demo/start\?client_id=\S+)", server.cli("demo"))
    assert url
    await page.goto(url.group(1))
    await page.locator("#identifier").wait_for()
    authorize = page.url.replace("/login?", "/oauth2/authorize?") + "&ui_locales=id"
    await page.goto(authorize)
    await page.get_by_role("heading", name="Masuk atau buat akun").wait_for()
    assert untranslated(await visible_text(page)) == []
    await page.get_by_label("Email atau nomor telepon").fill("demo@example.com")
    await page.get_by_role("button", name="Lanjutkan").click()
    await page.get_by_label("Kata sandi", exact=True).fill("consentry-demo")
    await page.get_by_role("button", name="Masuk").click()
    await page.get_by_role("button", name="Izinkan").wait_for()
    assert "ingin mengakses akun Anda" in await page.get_by_role("heading").first.inner_text()
    assert untranslated(await visible_text(page)) == []


@pytest.mark.parametrize("language", ["en", "id"])
async def test_every_admin_console_page_passes_axe_in_both_languages(
    server: Server, browser: Browser, language: str
) -> None:
    demo = re.search(r"client_id=(\S+)", server.cli("demo"))
    assert demo
    server.cli(
        "user",
        "create",
        "--email",
        "admin@example.com",
        "--password",
        "admin passphrase",
        "--admin",
        "--verified",
    )
    context = await browser.new_context(bypass_csp=True, locale=language)
    page = await context.new_page()
    await page.goto(server.url + "/login")
    await page.locator("#identifier").fill("admin@example.com")
    await page.locator("button.primary").click()
    await page.locator("#password").fill("admin passphrase")
    await page.locator("button.primary").click()
    await page.locator("#apps, main > p").first.wait_for()
    users = await (
        await page.request.get(server.url + "/api/v1/admin/users?identifier=demo@example.com")
    ).json()
    found: dict[str, list[dict[str, Any]]] = {}
    english: dict[str, list[str]] = {}
    for path in (
        "/admin", "/admin/clients", "/admin/clients/new", f"/admin/clients/{demo.group(1)}", "/admin/users",
        f"/admin/users/{users['users'][0]['user_id']}", "/admin/scopes", "/admin/audit?user_id=nope",
        "/admin/webhooks",
    ):  # fmt: skip
        await page.goto(server.url + path)
        assert await page.evaluate("document.documentElement.lang") == language, path
        found[path] = await violations(page)
        if language == "id":
            english[path] = untranslated(await visible_text(page))
    await page.goto(server.url + "/admin/clients/new")
    await page.locator("#client_name").fill("Acme")
    await page.locator("#redirect_uris").fill("http://127.0.0.1:9999/cb")
    await page.locator("button.primary").click()
    await page.locator("#secret").wait_for()
    found["client registered"] = await violations(page)
    if language == "id":
        english["client registered"] = untranslated(await visible_text(page))
    assert {name: found_here for name, found_here in found.items() if found_here} == {}
    assert {name: texts for name, texts in english.items() if texts} == {}
