"""The pages people use pass axe-core (pinned in tests/axe, installed by `make test`, injected from disk: no
network) with no violation, in light and in dark mode: sign-in, consent, the demo app's answer, account,
Connected apps, and an error page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import Server

AXE = Path(__file__).parent.parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"


async def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA findings on the page as it stands."""
    await page.add_script_tag(path=str(AXE))
    found = await page.evaluate(
        "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}))"
        ".violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return list(found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_every_page_a_person_walks_through_passes_axe(
    server: Server, browser: Browser, scheme: str
) -> None:
    assert AXE.exists(), "run `make node-deps` (part of `make test`): axe-core is pinned in tests/axe"
    context = await browser.new_context(bypass_csp=True, color_scheme=scheme)  # the checker is injected
    page = await context.new_page()
    found: dict[str, list[dict[str, Any]]] = {}
    url = re.search(r"(http://\S+/demo/start\?client_id=\S+)", server.cli("demo"))
    assert url
    await page.goto(url.group(1))
    found["sign-in"] = await violations(page)
    await page.get_by_label("Email or phone number").fill("demo@example.com")
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password", exact=True).wait_for()
    found["password"] = await violations(page)
    await page.get_by_label("Password", exact=True).fill("consentry-demo")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Allow").wait_for()
    found["consent"] = await violations(page)
    await page.get_by_role("button", name="Allow").click()
    await page.get_by_text("Signed in to the demo app").wait_for()
    found["demo app"] = await violations(page)
    for path in ("/account", "/account/apps", "/oauth2/authorize?client_id=nobody"):
        await page.goto(server.url + path)
        found[path] = await violations(page)
    assert {page_name: found_here for page_name, found_here in found.items() if found_here} == {}
