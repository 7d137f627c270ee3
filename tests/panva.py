"""panva's oidc-provider (tests/upstream_provider, pinned by its package-lock.json, installed by `make test`)
as an upstream OpenID provider on loopback: a node process started on a free port and stopped by its PID.

Its development pages sign in whoever gives a login listed in ``accounts`` (any password) and ask for consent;
:func:`through_panva` walks a client (a browser without JavaScript) through them.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from tests.pg import free_port
from tests.processes import stop

HOME = Path(__file__).parent / "upstream_provider"
FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>', re.IGNORECASE)
HIDDEN = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.IGNORECASE)


@dataclass(frozen=True)
class Panva:
    issuer: str
    client_id: str
    client_secret: str


@contextlib.contextmanager
def panva_provider(redirect_uri: str, accounts: dict[str, dict[str, Any]], log: Path) -> Iterator[Panva]:
    node = shutil.which("node")
    assert node, "Node.js is missing: `make test` installs it with apt-get (nodejs, npm)"
    assert (HOME / "node_modules" / "oidc-provider").is_dir(), "run `make node-deps` (part of `make test`)"
    port = free_port()
    provider = Panva(f"http://127.0.0.1:{port}", "consentry-downstream", "a-secret-for-panva-tests-only")
    env = {**os.environ, "PORT": str(port), "CLIENT_ID": provider.client_id,
           "CLIENT_SECRET": provider.client_secret, "REDIRECT_URI": redirect_uri,
           "ACCOUNTS": json.dumps(accounts), "NODE_ENV": "development"}  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(
            [node, "server.mjs"], cwd=HOME, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=1).is_success:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
                if process.poll() is not None:
                    break
            else:
                raise AssertionError(log.read_text())
            assert process.poll() is None, log.read_text()
            yield provider
        finally:
            stop(process)


async def through_panva(location: str, login: str, *, until: str) -> str:
    """Follow the provider's pages from its authorization URL: sign in as ``login``, consent, and return the
    URL it sends the browser to that starts with ``until`` (the callback)."""
    async with httpx.AsyncClient(timeout=10) as browser:
        for _ in range(12):
            if location.startswith(until):
                return location
            answered = await browser.get(location)
            if answered.is_redirect:
                location = urljoin(location, answered.headers["location"])
                continue
            assert answered.status_code == 200, answered.text
            form = FORM.search(answered.text)
            assert form is not None, answered.text
            fields = {name: html.unescape(value) for name, value in HIDDEN.findall(answered.text)}
            if 'name="login"' in answered.text:
                fields |= {"login": login, "password": "any"}
            posted = await browser.post(urljoin(location, html.unescape(form.group(1))), data=fields)
            assert posted.is_redirect, posted.text
            location = urljoin(location, posted.headers["location"])
    raise AssertionError(f"never sent back to {until}: last at {location}")
