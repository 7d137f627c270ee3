"""`make bench`: Consentry measured against the peers in ../shared/peers, in one run, on one core.

The server runs pinned to CPU 0 (taskset), wrk pinned to CPU 1 with 32 connections: a warm-up, then, once the
server is idle again, a measurement. Every response is checked by the wrk script (status and body); a run
with a wrong response does not count. Results go to stdout as a table and to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, quote, urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed import Seeder
from tests.pg import PostgresCluster, free_port, start_cluster

PEERS_SRC = ROOT.parent / "shared" / "peers"
PEERS = ROOT / "bench" / ".peers"
POST_LUA = PEERS_SRC / "post.lua"  # the peers' own checking script, so both sides are judged alike
GET_LUA = ROOT / "bench" / "get.lua"
CONSUME_LUA = ROOT / "bench" / "consume.lua"  # one line per request: codes, refresh tokens, sign-in flows
API_LUA = ROOT / "bench" / "api.lua"
PHOTOS_API = "https://bench.example.com/photos"  # the resource examples/photos_api.py protects
# Scenarios measured beside Consentry's own rather than a peer's: JWT issuance beside opaque tokens (plain,
# and for the same resource), a call through the resource-server kit beside the same route unprotected.
BESIDE = {
    "token_resource": ("token_plain",),
    "token_jwt": ("token_plain", "token_resource"),
    "api_jwt": ("api_floor",),
    "api_opaque": ("api_floor",),
}
SERVER_CPU, WRK_CPU = "0", "1"
ISSUANCE_ROUNDS = 5  # JWT, opaque-for-the-resource and plain tokens, measured in turns (resource_scenarios)
SECRET = "bench-secret-key-bench-secret-key-000000"
SIGNERS = 64  # people the sign-in scenario signs in, in turn: more than wrk's 32 connections
# PostgreSQL as one would run it in production on a machine this size (a quarter of memory or so would be
# usual; 2 GB holds scenario 8's five million tokens and their indexes). fsync stays off, as in the tests.
PG_SHARED_BUFFERS = "2GB"
T = TypeVar("T")
# What issues one-use values (codes, refresh tokens) to a client under a consent: seeder, client, user,
# consent, count.
Issue = Callable[[Seeder, str, uuid.UUID, uuid.UUID, int], Awaitable[list[str]]]


class Running(Protocol):
    url: str
    process: subprocess.Popen[bytes] | None


def wrk(
    server: Running,
    path: str,
    script: Path,
    env: dict[str, str],
    *,
    duration: str,
    warmup: str,
    warmup_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A warm-up, then the measured run of ``path`` on ``server``. Between them the server finishes what the
    warm-up left in flight: its 32 requests would otherwise take the first moments of the measured run
    (for sign-ins, ~0.5 s of argon2id whose answers nobody reads, 5 % of a 10 s measurement)."""
    url = f"{server.url}{path}"
    base = ["taskset", "-c", WRK_CPU, "wrk", "-t1", "-c32", "--timeout", "30s", "-s", str(script)]
    subprocess.run(
        [*base, "-d", warmup, url],
        env={**os.environ, **env, **(warmup_env or {})},
        capture_output=True,
        check=False,
    )
    wait_until_idle(server)
    out = subprocess.run(
        [*base, "-d", duration, url], env={**os.environ, **env}, capture_output=True, text=True, check=False
    ).stdout
    line = next((line for line in out.splitlines() if line.startswith("RESULT")), None)
    if line is None:
        return {"valid": False, "error": out[-500:]}
    requests, seconds, p50, p99, non2xx, bad, sock = line.split()[1:]
    return {
        "rps": round(int(requests) / float(seconds), 1),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "errors": int(non2xx) + int(bad) + int(sock),
        "valid": int(non2xx) + int(bad) + int(sock) == 0,
    }


def in_turns(runs: list[dict[str, Any]], beside: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One scenario measured in turns with others: its median rate and latencies, and for each scenario it
    stands beside the median of the ratios of the runs made in the same round."""
    invalid = next((run for run in runs if not run.get("valid")), None)
    if invalid is not None:
        return invalid
    merged: dict[str, Any] = {
        "rps": statistics.median(run["rps"] for run in runs),
        "p50_ms": statistics.median(run["p50_ms"] for run in runs),
        "p99_ms": statistics.median(run["p99_ms"] for run in runs),
        "errors": 0,
        "valid": True,
        "rounds_rps": [run["rps"] for run in runs],
    }
    ratios = {}
    for baseline, others in beside.items():
        if all(other.get("valid") and other["rps"] for other in others):
            per_round = [run["rps"] / other["rps"] for run, other in zip(runs, others, strict=True)]
            ratios[baseline] = round(statistics.median(per_round), 3)
    if ratios:
        merged["beside"] = ratios
    return merged


def rss_mb(pid: int) -> float:
    """Resident memory of the server: the taskset wrapper execs consentry, so the pid is the server's."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Consentry:
    """One `consentry serve` process pinned to CPU 0 on a fresh database, seeded for every scenario."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
            "CONSENTRY_DATABASE_URL": database_url,
            "CONSENTRY_ISSUER": self.url,
            "CONSENTRY_SECRET_KEY": SECRET,
            "CONSENTRY_LOG_LEVEL": "WARNING",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [str(ROOT / ".venv" / "bin" / "consentry"), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def start(self) -> None:
        log = (self.workdir / "serve.log").open("w")
        self.process = subprocess.Popen(
            [
                "taskset",
                "-c",
                SERVER_CPU,
                str(ROOT / ".venv" / "bin" / "consentry"),
                "serve",
                "--port",
                str(self.port),
            ],
            env=self.env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError((self.workdir / "serve.log").read_text()[-2000:])

    def stop(self) -> float:
        assert self.process is not None
        rss = rss_mb(self.process.pid) if self.process.poll() is None else 0.0
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return rss

    def sign_in(self, email: str) -> str:
        """A session token for a person created with the bench password."""
        with httpx.Client(base_url=self.url) as http:
            flow = http.post("/api/v1/auth/submit-identifier", json={"identifier": email}).json()
            session: str = http.post(
                "/api/v1/auth/login-password",
                json={"password": "bench password 1"},
                headers={"Authorization": f"Bearer {flow['flow_token']}"},
            ).json()["session_token"]
        return session

    def person_with_consent(self, email: str, params: dict[str, str]) -> str:
        """A person who signed in and consented (remembered) to the authorization request ``params``; returns
        their session token."""
        self.cli("user", "create", "--email", email, "--password", "bench password 1", "--verified")
        session = self.sign_in(email)
        with httpx.Client(base_url=self.url) as http:
            remember_again(http, session, params)
        return session

    def seed(self) -> dict[str, str]:
        """A machine client, a web client with a person's remembered consent, a session and a live token."""
        machine = json.loads(
            self.cli(
                "client",
                "create",
                "--name",
                "bench-machine",
                "--redirect-uri",
                "https://bench.example.com/cb",
                "--grant-type",
                "client_credentials",
                "--scope",
                "profile",
                "--json",
            )
        )
        photos = json.loads(
            self.cli(
                "resource", "create", "--identifier", PHOTOS_API, "--name", "Photos",
                "--scope", "photos:read=See your photos", "--token-format", "jwt", "--json",
            )
        )  # fmt: skip
        api_client = json.loads(
            self.cli(
                "client", "create", "--name", "bench-api-client", "--redirect-uri", "https://bench.example.com/cb",
                "--grant-type", "client_credentials", "--scope", "photos:read", "--json",
            )
        )  # fmt: skip

        def web_client(name: str, *options: str) -> dict[str, str]:
            created: dict[str, str] = json.loads(
                self.cli(
                    "client",
                    "create",
                    "--name",
                    name,
                    "--redirect-uri",
                    "https://bench.example.com/cb",
                    "--scope",
                    "openid profile",
                    *options,
                    "--json",
                )
            )
            return created

        web = web_client("bench-web")  # RS256 ID tokens, the default
        web_es256 = web_client("bench-web-es256", "--id-token-alg", "ES256")
        params = {
            "response_type": "code",
            "client_id": web["client_id"],
            "redirect_uri": "https://bench.example.com/cb",
            "scope": "openid profile",
            "state": "s",
        }
        session = self.person_with_consent("bench@example.com", params)
        self.cli(
            "user",
            "create",
            "--email",
            "admin@example.com",
            "--password",
            "bench password 1",
            "--verified",
            "--admin",
        )
        admin = self.sign_in("admin@example.com")
        with httpx.Client(base_url=self.url) as http:
            remember_again(http, session, params | {"client_id": web_es256["client_id"]})
            token = http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(machine["client_id"], machine["client_secret"]),
            ).json()["access_token"]
        return {
            "machine_id": machine["client_id"],
            "machine_secret": machine["client_secret"],
            "web_id": web["client_id"],
            "web_secret": web["client_secret"],
            "web_es256_id": web_es256["client_id"],
            "web_es256_secret": web_es256["client_secret"],
            "session": session,
            "token": token,
            "authorize_query": urlencode(params),
            "photos_id": photos["resource_id"],
            "photos_client_id": photos["client_id"],
            "photos_client_secret": photos["client_secret"],
            "api_client_id": api_client["client_id"],
            "api_client_secret": api_client["client_secret"],
            "admin_session": admin,
        }


def consentry_scenarios(
    server: Consentry, seed: dict[str, str], *, duration: str, warmup: str
) -> dict[str, Any]:
    basic = base64.b64encode(f"{seed['machine_id']}:{seed['machine_secret']}".encode()).decode()
    results = {
        "token": wrk(
            server,
            "/oauth2/token",
            POST_LUA,
            {"BASIC": basic, "BODY": "grant_type=client_credentials", "EXPECT": '"access_token"'},
            duration=duration,
            warmup=warmup,
        ),
        "introspect": wrk(
            server,
            "/oauth2/introspect",
            POST_LUA,
            {"BASIC": basic, "BODY": f"token={seed['token']}", "EXPECT": '"active":true'},
            duration=duration,
            warmup=warmup,
        ),
        "authorize": wrk(
            server,
            f"/oauth2/authorize?{seed['authorize_query']}",
            GET_LUA,
            {"BEARER": seed["session"]},
            duration=duration,
            warmup=warmup,
        ),
    }
    return results


class ExampleApi:
    """An API under uvicorn (uvloop, httptools), pinned to the server's core: examples/photos_api.py protected
    by the kit, or bench/floor_api.py, the same route unprotected."""

    def __init__(self, app_dir: Path, app: str, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        command = [
            "taskset", "-c", SERVER_CPU, sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir),
            "--port", str(self.port), "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
            "--no-access-log", app,
        ]  # fmt: skip
        log = (workdir / "api.log").open("a")
        self.process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/docs", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError((workdir / "api.log").read_text()[-2000:])

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def resource_scenarios(
    server: Consentry, seed: dict[str, str], *, duration: str, warmup: str
) -> dict[str, Any]:
    """Issue #29: client-credentials tokens for a resource that takes JWTs, and for the same resource taking
    opaque tokens (both beside a plain token, ``token_plain``), and a protected API call through the kit, with
    a JWT and with an opaque token (beside the unprotected route).

    The three kinds of token are measured in turns, ``ISSUANCE_ROUNDS`` times, each turn half of
    ``duration``: the ratios between them are the medians of each round's ratios. On the 2-core virtual
    machine this is run on, one scenario's CPU time per request moved by a fifth between ten-second runs with
    no steal time recorded, so two rates measured minutes apart compare the moments as much as the tokens."""
    basic = base64.b64encode(f"{seed['api_client_id']}:{seed['api_client_secret']}".encode()).decode()
    form = f"grant_type=client_credentials&scope=photos%3Aread&resource={quote(PHOTOS_API, safe='')}"
    machine = base64.b64encode(f"{seed['machine_id']}:{seed['machine_secret']}".encode()).decode()
    with httpx.Client(base_url=server.url) as http:
        results = {}

        def photos_api_takes(token_format: str) -> None:
            http.patch(
                f"/api/v1/admin/resources/{seed['photos_id']}",
                json={"token_format": token_format},
                headers={"Authorization": f"Bearer {seed['admin_session']}"},
            ).raise_for_status()

        issuance = {
            "token_plain": (None, machine, "grant_type=client_credentials"),
            "token_resource": ("opaque", basic, form),
            "token_jwt": ("jwt", basic, form),
        }
        turn = f"{max(1, int(seconds(duration) // 2))}s"
        rounds: dict[str, list[dict[str, Any]]] = {scenario: [] for scenario in issuance}
        for _ in range(ISSUANCE_ROUNDS):
            for scenario, (token_format, credentials, body) in issuance.items():
                if token_format is not None:
                    photos_api_takes(token_format)
                rounds[scenario].append(
                    wrk(
                        server,
                        "/oauth2/token",
                        POST_LUA,
                        {"BASIC": credentials, "BODY": body, "EXPECT": '"access_token"'},
                        duration=turn,
                        warmup="1s",
                    )
                )
        for scenario, runs in rounds.items():
            results[scenario] = in_turns(runs, {b: rounds[b] for b in BESIDE.get(scenario, ())})
        floor = ExampleApi(ROOT / "bench", "floor_api:app", {}, server.workdir)
        try:
            results["api_floor"] = wrk(
                floor, "/photos", API_LUA, {"BEARER": ""}, duration=duration, warmup=warmup
            )
        finally:
            floor.stop()
        api_env = {
            "CONSENTRY_ISSUER": server.url,
            "PHOTOS_RESOURCE": PHOTOS_API,
            "PHOTOS_CLIENT_ID": seed["photos_client_id"],
            "PHOTOS_CLIENT_SECRET": seed["photos_client_secret"],
        }
        for token_format in ("jwt", "opaque"):
            photos_api_takes(token_format)
            token = http.post(
                "/oauth2/token",
                content=form,
                headers={
                    "Authorization": f"Basic {basic}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            ).json()["access_token"]
            api = ExampleApi(ROOT / "examples", "photos_api:app", api_env, server.workdir)
            try:
                results[f"api_{token_format}"] = wrk(
                    api, "/photos", API_LUA, {"BEARER": token}, duration=duration, warmup=warmup
                )
            finally:
                api.stop()
        return results


def seconds(duration: str) -> float:
    """wrk's duration syntax (10s, 2m, 1h) in seconds."""
    unit = {"s": 1, "m": 60, "h": 3600}.get(duration[-1])
    return float(duration[:-1]) * unit if unit else float(duration)


def lines_file(workdir: Path, name: str, lines: list[str]) -> str:
    path = workdir / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def one_use_scenario(
    server: Consentry,
    path: str,
    lines_for: Callable[[int], list[str]],
    *,
    ceiling: int,
    expect: str,
    content_type: str = "application/x-www-form-urlencoded",
    duration: str,
    warmup: str,
) -> dict[str, Any]:
    """A wrk run where each request uses up one pre-issued thing (``lines_for(n)`` makes n request lines);
    ``ceiling`` requests/s are provided for (running out fails the run)."""
    name = path.strip("/").replace("/", "-")
    warm = lines_file(server.workdir, f"{name}-warm.txt", lines_for(int(seconds(warmup) * ceiling)))
    measured = lines_file(server.workdir, f"{name}.txt", lines_for(int(seconds(duration) * ceiling)))
    env = {"EXPECT": expect, "CONTENT_TYPE": content_type}
    return wrk(
        server,
        path,
        CONSUME_LUA,
        {**env, "LINES": measured},
        duration=duration,
        warmup=warmup,
        warmup_env={"LINES": warm},
    )


def with_seeder(server: Consentry, work: Callable[[Seeder], Awaitable[T]]) -> T:
    """Run ``work`` with a Seeder on the server's database, in a loop of its own."""

    async def run() -> T:
        seeder = Seeder(server.env["CONSENTRY_DATABASE_URL"])
        try:
            return await work(seeder)
        finally:
            await seeder.close()

    return asyncio.run(run())


def exchange_scenarios(
    server: Consentry, seed: dict[str, str], *, duration: str, warmup: str
) -> dict[str, Any]:
    """Scenario 4: code exchange (openid: an ID token each) and refresh with rotation, each used once, for a
    client with RS256 ID tokens (the default) and one with ES256; scenario 5: login-password, each request on
    its own sign-in flow waiting at the password step, beside the raw argon2id rate measured right before and
    right after it."""
    redirect = quote("https://bench.example.com/cb", safe="")

    def basic(client: str) -> str:
        credentials = f"{seed[client + '_id']}:{seed[client + '_secret']}"
        return "Basic " + base64.b64encode(credentials.encode()).decode()

    def granted(client: str, body: str, issue: Issue) -> Callable[[int], list[str]]:
        """Request lines for ``client``: ``body`` around each of ``count`` values issued under its consent."""
        auth = basic(client)
        client_id = seed[client + "_id"]

        def lines(count: int) -> list[str]:
            async def issued(seeder: Seeder) -> list[str]:
                user_id, consent_id = await seeder.grant("bench@example.com", client_id)
                return await issue(seeder, client_id, user_id, consent_id, count)

            return [f"{auth}\t{body.format(v)}" for v in with_seeder(server, issued)]

        return lines

    def codes(client: str) -> Callable[[int], list[str]]:
        return granted(
            client,
            f"grant_type=authorization_code&code={{}}&redirect_uri={redirect}",
            lambda seeder, client_id, user_id, consent_id, count: seeder.codes(
                client_id, user_id, consent_id, "https://bench.example.com/cb", count
            ),
        )

    def refresh_tokens(client: str) -> Callable[[int], list[str]]:
        return granted(client, "grant_type=refresh_token&refresh_token={}", Seeder.refresh_tokens)

    def flows(count: int) -> list[str]:
        async def seeded(seeder: Seeder) -> list[str]:
            signers = await seeder.signers("bench@example.com", SIGNERS)
            return await seeder.password_flows(SECRET, signers, count)

        tokens = with_seeder(server, seeded)
        return [f'Bearer {v}\t{{"password": "bench password 1"}}' for v in tokens]

    common = {"duration": duration, "warmup": warmup}
    results = {
        "code_exchange": one_use_scenario(
            server, "/oauth2/token", codes("web"), ceiling=6000, expect='"id_token"', **common
        ),
        "refresh": one_use_scenario(
            server, "/oauth2/token", refresh_tokens("web"), ceiling=6000, expect='"refresh_token"', **common
        ),
        "code_es256": one_use_scenario(
            server, "/oauth2/token", codes("web_es256"), ceiling=6000, expect='"id_token"', **common
        ),
        "refresh_es256": one_use_scenario(
            server, "/oauth2/token", refresh_tokens("web_es256"), ceiling=6000, expect='"id_token"', **common
        ),
    }
    # The raw argon2id rate right before and right after the sign-ins: this machine's speed drifts by a fifth
    # within minutes, and the ratio should compare the two at the same time.
    wait_until_idle(server)
    before = argon2_verify_rate()
    login = one_use_scenario(
        server,
        "/api/v1/auth/login-password",
        flows,
        ceiling=300,
        expect='"session_token"',
        content_type="application/json",
        **common,
    )
    wait_until_idle(server)  # sign-ins still queued when wrk stopped would share the core with argon2id
    after = argon2_verify_rate()
    login["argon2_verify_per_s"] = round((before + after) / 2, 1)
    login["argon2_verify_samples"] = [before, after]
    results["login_password"] = login
    return results


def revoke_scenario(
    server: Consentry, seed: dict[str, str], *, tokens: int, rounds: int = 3
) -> dict[str, Any]:
    """Scenario 7: a person revokes their consent while holding ``tokens`` live tokens for that client
    (four in five access tokens, the rest refresh tokens; nothing else of theirs is live); DELETE's time."""
    params = dict(parse_qsl(seed["authorize_query"]))
    timings = []
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for round_ in range(rounds):
            email = f"revoker{round_}@example.com"
            session = server.person_with_consent(email, params)

            async def hold(seeder: Seeder, email: str = email) -> None:
                user_id, consent_id = await seeder.grant(email, seed["web_id"])
                await seeder.access_tokens(seed["web_id"], user_id, consent_id, tokens * 4 // 5)
                await seeder.refresh_tokens(seed["web_id"], user_id, consent_id, tokens - tokens * 4 // 5)

            with_seeder(server, hold)
            started = time.perf_counter()
            response = http.delete(
                f"/api/v1/oauth2/consents/{seed['web_id']}", headers={"Authorization": f"Bearer {session}"}
            )
            timings.append(round((time.perf_counter() - started) * 1000, 1))
            if response.status_code != 204:
                return {"valid": False, "error": f"{response.status_code} {response.text[:200]}"}
            still_live = with_seeder(server, functools.partial(Seeder.live_tokens, email=email))
            if still_live:
                return {"valid": False, "error": f"{still_live} tokens still live after the revocation"}
    return {"tokens": tokens, "ms": timings, "median_ms": sorted(timings)[len(timings) // 2], "valid": True}


def remember_again(http: httpx.Client, session: str, params: dict[str, str]) -> None:
    """Consent (remembered) to the authorization request ``params``, as the person would on the screen."""
    body = {k: v for k, v in params.items() if k != "response_type"} | {"approved": True, "remember": True}
    response = http.post("/oauth2/consent", json=body, headers={"Authorization": f"Bearer {session}"})
    response.raise_for_status()


def scale_scenarios(
    server: Consentry,
    seed: dict[str, str],
    small: dict[str, Any],
    *,
    users: int,
    tokens: int,
    duration: str,
    warmup: str,
) -> dict[str, Any]:
    """Scenario 8: ``users`` people each with a consent, ``tokens`` live tokens, then scenarios 1-3 again."""
    seeded_in = with_seeder(
        server, lambda seeder: seeder.population(seed["machine_id"], users, users, tokens)
    )
    again = consentry_scenarios(server, seed, duration=duration, warmup=warmup)
    ratios = {
        name: round(result["rps"] / small[name]["rps"], 2)
        for name, result in again.items()
        if result.get("valid") and small.get(name, {}).get("valid")
    }
    return {
        "users": users,
        "consents": users,
        "tokens": tokens,
        "seed_seconds": round(seeded_in, 1),
        "scenarios": again,
        "ratio_to_small": ratios,
    }


def pg_tool(cluster: PostgresCluster, tool: str, *args: str) -> list[str]:
    """The command line of a PostgreSQL client tool (createdb, psql) against the bench cluster."""
    host = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    return [str(cluster.bindir / tool), *host, *args]


def create_database(cluster: PostgresCluster, name: str) -> str:
    """A fresh database on the bench cluster; returns its URL."""
    subprocess.run(pg_tool(cluster, "createdb", name), check=True)
    return cluster.url(name)


def drop_database(cluster: PostgresCluster, name: str) -> None:
    """Scenario 8's gigabytes go before the ingest is timed: their dirty pages could otherwise still be
    being written out (PostgreSQL's checkpoints, the kernel's writeback) while it runs."""
    subprocess.run(pg_tool(cluster, "dropdb", name), check=True)


def drop_sqlite(url: str) -> None:
    """As :func:`drop_database`, for the SQLite file and its write-ahead log: deleted, their dirty pages are
    never written."""
    path = Path(url.split(":///", 1)[1])
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def max_latency_ms(wrk_output: str) -> float:
    """The max column of wrk's "Latency" line (e.g. ``Latency 57.09ms 20.10ms 312.50ms 90.00%``)."""
    line = next(line for line in wrk_output.splitlines() if line.strip().startswith("Latency"))
    value = line.split()[3]
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return round(float(value[: -len(unit)]) * factor, 2)
    return float("nan")


def cleanup_under_load(
    server: Consentry, seed: dict[str, str], cluster: PostgresCluster, database: str, rows: int
) -> dict[str, Any]:
    """Issue 7: purge ``rows`` expired tokens while the token endpoint is under load; the slowest request."""
    psql = pg_tool(
        cluster,
        "psql",
        "-d",
        database,
        "-v",
        "ON_ERROR_STOP=1",
        "-q",
        "-v",
        f"client={seed['machine_id']}",
        "-v",
        f"rows={rows}",
    )
    seed_sql = (  # psql variables, interpolated by psql itself (:'client' is quoted as a literal)
        "INSERT INTO access_tokens (token_hash, client_id, scopes, created_at, expires_at) "
        "SELECT sha256(g::text::bytea), :'client', '[]'::jsonb, now() - interval '2 hours', "
        "now() - interval '1 hour' FROM generate_series(1, :rows) g;"
    )
    subprocess.run([*psql, "-f", "-"], input=seed_sql, text=True, check=True)
    basic = base64.b64encode(f"{seed['machine_id']}:{seed['machine_secret']}".encode()).decode()
    env = {**os.environ, "BASIC": basic, "BODY": "grant_type=client_credentials", "EXPECT": '"access_token"'}
    load = subprocess.Popen(
        [
            "taskset",
            "-c",
            WRK_CPU,
            "wrk",
            "-t1",
            "-c32",
            "-d",
            "60s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(POST_LUA),
            f"{server.url}/oauth2/token",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    started = time.perf_counter()
    cleaned = subprocess.run(
        ["taskset", "-c", SERVER_CPU, str(ROOT / ".venv" / "bin" / "consentry"), "cleanup"],
        env=server.env,
        cwd=server.workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if cleaned.returncode != 0:
        load.kill()
        raise RuntimeError(f"consentry cleanup failed: {cleaned.stderr[-2000:]}")
    purge_seconds = time.perf_counter() - started
    load.send_signal(signal.SIGINT)  # wrk prints its summary when interrupted
    output, _ = load.communicate(timeout=30)
    line = next((x for x in output.splitlines() if x.startswith("RESULT")), "RESULT 0 1 0 0 0 0 0").split()
    return {
        "rows": rows,
        "purge_seconds": round(purge_seconds, 2),
        "max_request_ms": max_latency_ms(output),
        "p99_ms": float(line[4]),
        "rps_during": round(int(line[1]) / float(line[2]), 1),
        "errors": int(line[5]) + int(line[6]) + int(line[7]),
    }


def ingest_rate(database_url: str, count: int) -> dict[str, Any]:
    """Scenario 6 on CPU 0: pre-hashed registrations through the pipeline, users per second."""
    out = subprocess.run(
        [
            "taskset",
            "-c",
            SERVER_CPU,
            str(ROOT / ".venv" / "bin" / "python"),
            str(ROOT / "bench" / "ingest.py"),
            database_url,
            str(count),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    _, written, seconds, rate = next(line for line in out.splitlines() if line.startswith("INGEST")).split()
    return {"users": int(written), "seconds": float(seconds), "users_per_s": float(rate)}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def wait_until_idle(server: Running, *, timeout: float = 60) -> None:
    """Until the server uses under 5 % of its core over half a second (work it still had queued is done)."""
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        used = cpu_seconds(server.process.pid)
        time.sleep(0.5)
        if cpu_seconds(server.process.pid) - used < 0.025:
            return
    raise RuntimeError(f"the server stayed busy for {timeout:.0f} s")


def argon2_verify_rate() -> float:
    """Raw argon2id verifications per second at the production parameters, on CPU 0 (scenario 5's bound)."""
    code = (
        "import time;from argon2 import PasswordHasher as P;h=P(time_cost=2,memory_cost=19456,parallelism=1);"
        "s=h.hash('x'*16);n=0;t=time.perf_counter()\n"
        "while time.perf_counter()-t<3:\n h.verify(s,'x'*16);n+=1\n"
        "print(n/(time.perf_counter()-t))"
    )
    out = subprocess.run(
        ["taskset", "-c", SERVER_CPU, str(ROOT / ".venv" / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return round(float(out.strip()), 1)


def run_peers(scenario: str, targets: list[str], *, duration: str, warmup: str) -> dict[str, Any]:
    if not (PEERS / ".ready").exists():
        if PEERS.exists():
            shutil.rmtree(PEERS)
        shutil.copytree(PEERS_SRC, PEERS, ignore=shutil.ignore_patterns(".venv*", "db", "log"))
        subprocess.run(["bash", "setup.sh"], cwd=PEERS, check=True, stdout=subprocess.DEVNULL)
        (PEERS / ".ready").touch()
    out = subprocess.run(
        ["bash", "run.sh", scenario, *targets],
        cwd=PEERS,
        capture_output=True,
        text=True,
        env={**os.environ, "DURATION": duration, "WARMUP": warmup},
        check=False,
    ).stdout
    results = {}
    for line in out.splitlines():
        target, _scenario, rps, p50, p99, non2xx, check = line.split()
        results[target] = {
            "rps": float(rps),
            "p50_ms": float(p50),
            "p99_ms": float(p99),
            "errors": int(non2xx),
            "valid": check == "ok",
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--warmup", default="3s")
    parser.add_argument("--no-peers", action="store_true")
    # 100,000: at 50,000 a plan that walks the whole queue per batch still looked fast.
    parser.add_argument("--ingest", type=int, default=100_000, help="registrations for the ingest scenario")
    parser.add_argument("--revoke-tokens", type=int, default=10_000, help="live tokens revoked in scenario 7")
    parser.add_argument("--scale-users", type=int, default=1_000_000, help="scenario 8 (0 to skip)")
    parser.add_argument("--scale-tokens", type=int, default=5_000_000, help="scenario 8's live tokens")
    parser.add_argument(
        "--purge-rows",
        type=int,
        default=1_000_000,
        help="expired tokens purged under load on PostgreSQL (0 to skip)",
    )
    args = parser.parse_args()
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(),
        "machine": platform.platform(),
        "method": "server taskset CPU 0; wrk -t1 -c32 on CPU 1; warm-up, server idle, then measure",
        "consentry": {},
        "peers": {},
    }
    cluster: PostgresCluster | None = None
    try:
        for backend in args.backends.split(","):
            workdir = Path(tempfile.mkdtemp(prefix=f"consentry-bench-{backend}-"))
            if backend == "postgresql":
                cluster = cluster or start_cluster(shared_buffers=PG_SHARED_BUFFERS)
                name = f"bench_{int(time.time())}"
                url = create_database(cluster, name)
            else:
                url = f"sqlite+aiosqlite:///{workdir / 'consentry.db'}"
            server = Consentry(url, workdir)
            server.cli("migrate")
            server.start()
            try:
                seed = server.seed()
                timing = {"duration": args.duration, "warmup": args.warmup}
                results = consentry_scenarios(server, seed, **timing)
                results |= exchange_scenarios(server, seed, **timing)
                results |= resource_scenarios(server, seed, **timing)
                results["revoke"] = revoke_scenario(server, seed, tokens=args.revoke_tokens)
                if backend == "postgresql" and cluster and args.purge_rows:
                    results["cleanup_under_load"] = cleanup_under_load(
                        server, seed, cluster, name, args.purge_rows
                    )
                if args.scale_users:
                    results["scale"] = scale_scenarios(
                        server, seed, results, users=args.scale_users, tokens=args.scale_tokens, **timing
                    )
            finally:
                rss = server.stop()
            report["consentry"][backend] = {"scenarios": results, "server_rss_mb": rss}
            if backend == "postgresql" and cluster:
                drop_database(cluster, name)
                ingest_url = create_database(cluster, name + "_ingest")
            else:
                drop_sqlite(url)
                ingest_url = f"sqlite+aiosqlite:///{workdir / 'ingest.db'}"
            report["consentry"][backend]["ingest"] = ingest_rate(ingest_url, args.ingest)
            shutil.rmtree(workdir, ignore_errors=True)  # the SQLite run leaves gigabytes of database
        if not args.no_peers:
            for scenario in ("token", "introspect"):
                report["peers"][scenario] = run_peers(
                    scenario, ["floor", "authlib", "dot-plain"], duration=args.duration, warmup=args.warmup
                )
    finally:
        if cluster is not None:
            cluster.stop()
    print_table(report)
    out = ROOT / "bench" / "results" / "latest.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")


def print_table(report: dict[str, Any]) -> None:
    print(f"{'scenario':<12} {'backend':<11} {'rps':>9} {'p50 ms':>8} {'p99 ms':>9} {'errors':>6}  ratios")
    for backend, data in report["consentry"].items():
        for scenario, r in data["scenarios"].items():
            if scenario == "revoke":
                print(
                    f"{'revoke':<12} {backend:<11} a consent with {r.get('tokens', 0):,} live tokens "
                    f"revoked in {r.get('ms')} ms (median {r.get('median_ms')} ms)"
                    if r.get("valid")
                    else f"{'revoke':<12} {backend:<11} INVALID {r.get('error', '')[:80]}"
                )
                continue
            if scenario == "scale":
                shares = ", ".join(f"{k} {v:.2f}x" for k, v in r["ratio_to_small"].items())
                print(
                    f"{'scale':<12} {backend:<11} {r['users']:,} users, {r['consents']:,} consents, "
                    f"{r['tokens']:,} tokens seeded in {r['seed_seconds']} s; then, of the small-database "
                    f"rate: {shares}"
                )
                for name, again in r["scenarios"].items():
                    if again.get("valid"):
                        print(
                            f"{'  ' + name:<12} {backend:<11} {again['rps']:>9.1f} {again['p50_ms']:>8.2f} "
                            f"{again['p99_ms']:>9.2f} {again['errors']:>6}  at scale"
                        )
                continue
            if scenario == "cleanup_under_load":
                print(
                    f"{'purge+load':<12} {backend:<11} {r['rows']:,} expired tokens purged in "
                    f"{r['purge_seconds']} s while serving {r['rps_during']} tokens/s; slowest request "
                    f"{r['max_request_ms']} ms, p99 {r['p99_ms']} ms, errors {r['errors']}"
                )
                continue
            if not r.get("valid"):
                print(f"{scenario:<12} {backend:<11} INVALID {r.get('error', '')[:60]}")
                continue
            ratios = []
            for peer, p in report["peers"].get(scenario, {}).items():
                if p.get("valid") and p["rps"]:
                    ratios.append(f"{r['rps'] / p['rps']:.2f}x {peer}")
            for baseline in BESIDE.get(scenario, ()):
                if baseline in r.get("beside", {}):  # measured in turns: the median of the rounds' ratios
                    ratios.append(f"{r['beside'][baseline]:.2f}x {baseline} (in turns)")
                    continue
                beside = data["scenarios"].get(baseline, {})
                if beside.get("valid") and beside["rps"]:
                    ratios.append(f"{r['rps'] / beside['rps']:.2f}x {baseline}")
            print(
                f"{scenario:<12} {backend:<11} {r['rps']:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>9.2f} "
                f"{r['errors']:>6}  {', '.join(ratios)}"
            )
        print(f"{'(rss)':<12} {backend:<11} {data['server_rss_mb']:>9.1f} MB after the run")
        ingest = data.get("ingest")
        if ingest:
            print(
                f"{'ingest':<12} {backend:<11} {ingest['users_per_s']:>9.1f} users/s "
                f"({ingest['users']} pre-hashed registrations in {ingest['seconds']:.1f} s)"
            )
    for scenario, peers in report["peers"].items():
        for peer, p in peers.items():
            print(
                f"{scenario:<12} {'peer:' + peer:<11} {p['rps']:>9.1f} {p['p50_ms']:>8.2f} "
                f"{p['p99_ms']:>9.2f} {p['errors']:>6}"
            )
    for backend, data in report["consentry"].items():
        login = data["scenarios"].get("login_password", {})
        if login.get("valid"):
            argon2, samples = login["argon2_verify_per_s"], login["argon2_verify_samples"]
            print(
                f"login-password on {backend}: {login['rps'] / argon2:.0%} of raw argon2id (m=19 MiB, t=2, "
                f"p=1, one core) right before and after it ({argon2}/s: {samples[0]}, {samples[1]})"
            )


if __name__ == "__main__":
    main()
