"""The API's documentation renders in Chromium with no network: Swagger UI at /docs and ReDoc at /redoc load
their scripts and styles from the server itself and list the operations of /openapi.json."""

from __future__ import annotations

from playwright.async_api import Browser, Route

from tests.browser.conftest import Server


async def test_docs_and_redoc_render_their_operations_with_no_network(
    server: Server, browser: Browser
) -> None:
    page = await (await browser.new_context()).new_page()
    elsewhere: list[str] = []
    refused: list[str] = []

    async def only_the_server(route: Route) -> None:
        if route.request.url.startswith(server.url):
            await route.continue_()
        else:  # as on a machine with no internet: nothing outside loads
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_the_server)
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )
    await page.goto(f"{server.url}/docs")
    operations = page.locator(".opblock")
    await operations.first.wait_for(timeout=30_000)
    assert await operations.count() > 50
    assert await page.get_by_text("/oauth2/token").count() >= 1

    await page.goto(f"{server.url}/redoc")
    await page.get_by_role("heading", name="Consentry").first.wait_for(timeout=30_000)
    assert await page.get_by_text("/oauth2/token").count() >= 1
    assert elsewhere == []
    # Only ReDoc's "powered by" logo points at its CDN; the page's policy keeps it out. No script or style is.
    blocked = [text for text in refused if "Content Security Policy" in text and "logo-mini" not in text]
    assert blocked == []
