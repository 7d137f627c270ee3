"""`consentry serve` as a process of its own on a free port, as an operator runs it; stopped by its PID."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.processes import stop


@contextlib.contextmanager
def serving(env: dict[str, str], cwd: Path, port: int) -> Iterator[str]:
    """Start the server, wait until /readyz answers 200, yield its URL; SIGTERM (then SIGKILL) at the end.
    Its output goes to ``cwd / "server.log"``, which a failure to start shows."""
    url = f"http://127.0.0.1:{port}"
    with (cwd / "server.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "consentry", "serve", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise AssertionError((cwd / "server.log").read_text())
            yield url
        finally:
            stop(process, timeout=15)


def signed_in(url: str, email: str, password: str) -> str:
    """A session at the served ``url``, by the JSON sign-in (identifier, then password): its token."""
    flow = httpx.post(f"{url}/api/v1/auth/submit-identifier", json={"identifier": email}).json()
    answer = httpx.post(
        f"{url}/api/v1/auth/login-password",
        json={"password": password},
        headers={"Authorization": f"Bearer {flow['flow_token']}"},
    ).json()
    return str(answer["session_token"])
