"""Browser tests: a real `consentry serve`, a real SMTP server, and Debian's Chromium via Playwright."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.mail import Mailbox, SmsGateway
from tests.pg import free_port
from tests.served import serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]


@dataclass
class Server:
    url: str
    env: dict[str, str]
    cwd: Path

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "consentry", *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


class CallbackApp:
    """The third-party app's redirect endpoint: a real HTTP server on loopback that records each callback."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[str] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/callback"):  # not the browser's favicon request
                    app.requests.append(f"http://127.0.0.1:{app.port}{self.path}")
                body = b"<!doctype html><title>Acme Notes</title><h1>Acme Notes callback</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"


@pytest.fixture
def callback_app() -> Iterator[CallbackApp]:
    app = CallbackApp()
    app._thread.start()
    yield app
    app._server.shutdown()


@pytest.fixture
def server(database_url: str, tmp_path: Path, mailbox: Mailbox, sms: SmsGateway) -> Iterator[Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_ISSUER": url,
        "CONSENTRY_SMTP_URL": mailbox.url,
        "CONSENTRY_SMS_GATEWAY_URL": sms.url,
        "CONSENTRY_SECRET_KEY_FILE": str(tmp_path / "secret"),
        "CONSENTRY_ARGON2_MEMORY_KIB": "8192",
        "CONSENTRY_ARGON2_TIME_COST": "1",
    }
    with serving(env, tmp_path, port):
        yield Server(url, env, tmp_path)


@pytest.fixture(scope="session")
def chromium() -> str:
    assert os.path.exists(CHROMIUM), "Chromium is missing: `make test` installs it with apt-get (chromium)"
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


async def sign_in(page: Page, email: str, password: str) -> None:
    """The sign-in page's two steps, as a person fills them in."""
    await page.get_by_label("Email or phone number").fill(email)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()
