"""`consentry demo`: its URL walks a person through sign-in, consent, the callback and connected apps."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Browser

from tests.browser.conftest import Server, sign_in


async def test_demo_walkthrough(server: Server, browser: Browser, tmp_path: Path) -> None:
    output = server.cli("demo")
    url = re.search(r"(http://\S+/demo/start\?client_id=\S+)", output)
    assert url, output
    assert "demo@example.com" in output
    page = await (await browser.new_context()).new_page()
    await page.goto(url.group(1))
    await page.get_by_label("Email or phone number").fill("demo@example.com")
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password", exact=True).fill("consentry-demo")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("Remember my decision").check()  # remembered: a refresh token too
    await page.get_by_role("button", name="Allow").click()
    await page.get_by_text("Signed in to the demo app").wait_for()
    body = await page.content()
    assert '"email": "demo@example.com"' in body
    assert "refresh_token" in body
    await page.screenshot(path=tmp_path / "demo-callback.png", full_page=True)
    await page.get_by_role("link", name="Connected apps").click()
    await page.get_by_text("Consentry Demo App").wait_for()
    await page.get_by_role("link", name="Account").click()
    await page.get_by_text("demo@example.com").wait_for()


async def test_the_demo_answer_gives_whole_tokens_to_copy_and_fits_a_phone(
    server: Server, browser: Browser
) -> None:
    url = re.search(r"(http://\S+/demo/start\?client_id=\S+)", server.cli("demo"))
    assert url
    context = await browser.new_context(
        viewport={"width": 320, "height": 640}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = await context.new_page()
    await page.goto(url.group(1))
    await sign_in(page, "demo@example.com", "consentry-demo")
    await page.get_by_role("button", name="Allow").click()
    access_token = await page.get_by_label("access_token").input_value()
    assert "…" not in access_token and len(access_token) > 40
    introspected = await page.request.get(
        f"{server.url}/oauth2/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert introspected.status == 200  # the token as shown works in curl
    await page.get_by_role("button", name="Copy access_token").click()
    assert await page.evaluate("navigator.clipboard.readText()") == access_token
    await page.get_by_role("button", name="Copied").wait_for()
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0  # nothing runs off a 320 px screen
