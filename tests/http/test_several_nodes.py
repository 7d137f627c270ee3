"""Several nodes that behave as one provider (SPEC §11): two `consentry serve` processes (API only) and
a `consentry worker` on one throwaway PostgreSQL and one Redis, as an operator runs them behind a proxy. A
client deleted on one node gets no token from the other a second later, and no token the other issued
meanwhile stays active; a regenerated secret works everywhere within a second; nodes started together on an
empty database come up with one schema and one key set."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import _admin, run_in_thread
from tests.pg import PostgresCluster, free_port
from tests.processes import stop
from tests.receiver import Receiver
from tests.redis_server import RedisServer, start_redis
from tests.served import serving, signed_in

pytestmark = pytest.mark.postgres
API = "https://api.nodes.example.com"
_numbers = itertools.count()


@dataclass
class Nodes:
    a: str
    b: str
    env: dict[str, str]
    home: Path
    admin: dict[str, str]  # an administrator's session, as Bearer
    worker: str  # the worker's /healthz, /readyz and /metrics
    redis: RedisServer  # theirs alone: a test may stop it

    def cli(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "consentry", *args, "--json"],
            env=self.env, cwd=self.home, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))


def _environment(url: str, issuer: str, home: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": url,
        "CONSENTRY_ISSUER": issuer,  # one provider: every node answers as the proxy's address
        "CONSENTRY_SECRET_KEY": "one-secret-for-every-node-of-this-provider",
        "CONSENTRY_SECRET_KEY_FILE": str(home / "unused-secret"),
        "CONSENTRY_ARGON2_MEMORY_KIB": "8192",
        "CONSENTRY_ARGON2_TIME_COST": "1",
    }


def _empty_database(cluster: PostgresCluster) -> str:
    name = f"nodes_{os.getpid()}_{next(_numbers)}"
    run_in_thread(_admin(cluster, f'CREATE DATABASE "{name}"'))
    return cluster.url(name)


@pytest.fixture
def nodes(postgres_cluster: PostgresCluster, tmp_path: Path) -> Iterator[Nodes]:
    """Nodes A and B serving the API only, and a `consentry worker` for the background jobs, on one
    PostgreSQL database and one Redis (rate limits and the registration stream)."""
    url = _empty_database(postgres_cluster)
    redis = start_redis(tmp_path)
    port_a, port_b = free_port(), free_port()
    env = _environment(url, f"http://127.0.0.1:{port_a}", tmp_path)
    env |= {"CONSENTRY_REDIS_URL": redis.url, "CONSENTRY_QUEUE_URL": redis.url.replace("/0", "/1"),
            "CONSENTRY_RUN_JOBS": "0", "CONSENTRY_WEBHOOK_LEASE_SECONDS": "2",
            "CONSENTRY_WORKER_POLL_SECONDS": "0.2"}  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "consentry", "migrate"], env=env, cwd=tmp_path, check=True, timeout=120
    )
    password = "an administrator of two nodes"
    subprocess.run(
        [sys.executable, "-m", "consentry", "user", "create", "--email", "admin@nodes.example", "--password",
         password, "--verified", "--admin"],
        env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    worker_port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "consentry", "worker", "--port", str(worker_port)],
        env=env, cwd=tmp_path, stdout=(tmp_path / "worker.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    with (
        contextlib.ExitStack() as stack,
        serving(env, tmp_path / "a", port_a) as a,
        serving(env, tmp_path / "b", port_b) as b,
    ):
        stack.callback(redis.stop)
        stack.callback(stop, worker)
        admin = {"Authorization": f"Bearer {signed_in(a, 'admin@nodes.example', password)}"}
        yield Nodes(a, b, env, tmp_path, admin, f"http://127.0.0.1:{worker_port}", redis)


def _token(node: str, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{node}/oauth2/token",
        data={"grant_type": "client_credentials", "resource": API},
        auth=(client_id, secret),
        timeout=10,
    )


def test_a_client_deleted_on_one_node_gets_nothing_from_the_other(nodes: Nodes) -> None:
    api = nodes.cli("resource", "create", "--identifier", API, "--name", "Nodes API")
    client = nodes.cli(
        "client",
        "create",
        "--name",
        "Busy",
        "--redirect-uri",
        "https://busy.example.com/cb",
        "--grant-type",
        "client_credentials",
    )
    client_id, secret = client["client_id"], client["client_secret"]
    for node in (nodes.a, nodes.b):  # each node has the client cached
        assert _token(node, client_id, secret).status_code == 200

    issued: list[str] = []
    stop = time.monotonic() + 3.0

    async def hammer_b() -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            while time.monotonic() < stop:
                answer = await http.post(
                    f"{nodes.b}/oauth2/token",
                    data={"grant_type": "client_credentials", "resource": API},
                    auth=(client_id, secret),
                )
                if answer.status_code != 200:
                    return  # B has heard (and more refusals would count against the client's limit)
                issued.append(answer.json()["access_token"])

    async def delete_on_a() -> float:
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(timeout=10) as http:
            deleted = await http.delete(f"{nodes.a}/api/v1/oauth2/clients/{client_id}", headers=nodes.admin)
        assert deleted.status_code == 204, deleted.text
        return time.monotonic()

    async def both() -> float:
        deleted_at, _ = await asyncio.gather(delete_on_a(), hammer_b())
        return deleted_at

    deleted_at = asyncio.run(both())
    assert issued  # B was issuing until it heard
    time.sleep(max(0.0, deleted_at + 1.0 - time.monotonic()))
    refused = _token(nodes.b, client_id, secret)
    assert refused.status_code == 401, refused.text
    for token in issued:
        introspected = httpx.post(
            f"{nodes.b}/oauth2/introspect",
            data={"token": token},
            auth=(api["client_id"], api["client_secret"]),
        ).json()
        assert introspected == {"active": False}


def test_a_regenerated_secret_works_on_every_node_within_a_second(nodes: Nodes) -> None:
    client = nodes.cli(
        "client",
        "create",
        "--name",
        "Rotating",
        "--redirect-uri",
        "https://r.example.com/cb",
        "--grant-type",
        "client_credentials",
    )
    client_id, old = client["client_id"], client["client_secret"]
    nodes.cli("resource", "create", "--identifier", API, "--name", "Nodes API")
    assert _token(nodes.b, client_id, old).status_code == 200  # cached on B
    regenerated = httpx.post(f"{nodes.a}/api/v1/oauth2/clients/{client_id}/secret", headers=nodes.admin)
    assert regenerated.status_code == 200, regenerated.text
    new = regenerated.json()["client_secret"]
    time.sleep(1.0)
    assert _token(nodes.b, client_id, new).status_code == 200
    assert _token(nodes.b, client_id, old).status_code == 401


def test_after_a_key_rotation_id_tokens_from_either_node_verify_against_either_nodes_jwks(
    nodes: Nodes,
) -> None:
    """`keys rotate --activate-after 2`: the new keys are in both nodes' JWKS at once and both start signing
    with them two seconds later, so an ID token from either verifies against either's JWKS throughout."""
    redirect_uri = "https://signed.example.com/cb"
    client = nodes.cli("client", "create", "--name", "Signed", "--redirect-uri", redirect_uri, "--trusted")
    kids_before = {key["kid"] for key in httpx.get(f"{nodes.a}/oauth2/jwks").json()["keys"]}
    subprocess.run(
        [sys.executable, "-m", "consentry", "keys", "rotate", "--activate-after", "2"],
        env=nodes.env, cwd=nodes.home, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    signed_by: set[str] = set()
    until = time.monotonic() + 5.0
    while time.monotonic() < until:
        for issuer_node in (nodes.a, nodes.b):
            id_token = _id_token(issuer_node, nodes.admin, client, redirect_uri)
            for jwks_node in (nodes.a, nodes.b):
                keys = KeySet.import_key_set(httpx.get(f"{jwks_node}/oauth2/jwks").json())
                signed_by.add(jwt.decode(id_token, keys).header["kid"])  # raises if no published key verifies
    assert signed_by - kids_before and signed_by & kids_before  # signed with the old keys, then the new ones


def _id_token(node: str, session: dict[str, str], client: dict[str, Any], redirect_uri: str) -> str:
    """Code and PKCE through ``node`` for a trusted client (no consent screen): the ID token."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorized = httpx.get(
        f"{node}/oauth2/authorize",
        params={"response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect_uri,
                "scope": "openid", "state": "s", "nonce": "n", "code_challenge": challenge,
                "code_challenge_method": "S256"},
        headers=session,
    )  # fmt: skip
    assert authorized.status_code == 302, authorized.text
    code = parse_qs(urlsplit(authorized.headers["location"]).query)["code"][0]
    exchanged = httpx.post(
        f"{node}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
              "code_verifier": verifier},
        auth=(client["client_id"], client["client_secret"]),
    )  # fmt: skip
    assert exchanged.status_code == 200, exchanged.text
    return str(exchanged.json()["id_token"])


def test_the_worker_apart_is_observable(nodes: Nodes) -> None:
    """`consentry worker --port` answers /healthz, /readyz and /metrics with the pipeline's figures."""
    queued = httpx.post(
        f"{nodes.a}/api/v1/auth/register-async",
        json={"email": "queued@nodes.example", "password": "a perfectly fine passphrase", "consent": True},
    )
    assert queued.status_code == 202, queued.text
    deadline = time.monotonic() + 30
    status = ""
    while time.monotonic() < deadline and status != "completed":
        status = httpx.get(f"{nodes.b}/api/v1/auth/register-status/{queued.json()['request_id']}").json()[
            "status"
        ]
        time.sleep(0.2)
    assert status == "completed"  # written by the worker: the nodes run no jobs
    assert httpx.get(f"{nodes.worker}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{nodes.worker}/readyz").status_code == 200
    metrics = httpx.get(f"{nodes.worker}/metrics").text
    assert "consentry_registration_queued_to_written_seconds_count 1.0" in metrics
    assert "consentry_registration_batch_size_count 1.0" in metrics


def test_redis_stopped_gives_503_and_restarted_empty_registrations_complete(nodes: Nodes) -> None:
    client = nodes.cli("client", "create", "--name", "Limited", "--redirect-uri", "https://l.example.com/cb",
                       "--grant-type", "client_credentials")  # fmt: skip
    token = {"grant_type": "client_credentials"}
    auth = (client["client_id"], client["client_secret"])
    assert httpx.post(f"{nodes.a}/oauth2/token", data=token, auth=auth).status_code == 200
    nodes.redis.stop()
    for node in (nodes.a, nodes.b):
        refused = httpx.post(f"{node}/oauth2/token", data=token, auth=auth, timeout=10)
        assert refused.status_code == 503 and refused.headers["retry-after"], refused.text
        assert httpx.get(f"{node}/readyz", timeout=5).status_code == 503
    nodes.redis = start_redis(nodes.home, port=nodes.redis.port)  # back, and empty
    assert httpx.post(f"{nodes.b}/oauth2/token", data=token, auth=auth).status_code == 200
    queued = httpx.post(
        f"{nodes.a}/api/v1/auth/register-async",
        json={"email": "after@nodes.example", "password": "a perfectly fine passphrase", "consent": True},
    )
    assert queued.status_code == 202, queued.text
    deadline, status = time.monotonic() + 30, ""
    while time.monotonic() < deadline and status != "completed":
        status = httpx.get(f"{nodes.a}/api/v1/auth/register-status/{queued.json()['request_id']}").json()[
            "status"
        ]
        time.sleep(0.2)
    assert status == "completed"  # the worker made the stream's group again by itself


def test_a_slow_receiver_with_a_backlog_gets_no_duplicates_from_three_deliverers(nodes: Nodes) -> None:
    """The worker and two more (as nodes that run jobs would), a receiver slower per event than the lease
    over the backlog: no event twice, and one client's events in order."""
    receiver = Receiver(hang_first=1000, hang_seconds=0.25)
    client = nodes.cli("client", "create", "--name", "Hooked", "--redirect-uri", "https://h.example.com/cb",
                       "--webhook-url", receiver.url)  # fmt: skip
    asyncio.run(_backlog(nodes.env["CONSENTRY_DATABASE_URL"], client["client_id"], 24))
    more = [
        subprocess.Popen(
            [sys.executable, "-m", "consentry", "worker"],
            env=nodes.env,
            cwd=nodes.home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        receiver.wait_for(24, timeout=60)
        time.sleep(3)  # past a lease: a duplicate would have come by now
    finally:
        for process in more:
            stop(process)
        receiver.stop()
    ids = [d.headers["webhook-id"] for d in receiver.accepted()]
    assert len(ids) == 24 and len(set(ids)) == 24
    assert [json.loads(d.body)["number"] for d in receiver.accepted()] == list(range(24))


async def _backlog(url: str, client_id: str, count: int) -> None:
    from consentry.runtime import Runtime, utcnow
    from consentry.storage.tables import WebhookOutbox
    from tests.conftest import make_settings

    runtime = Runtime.build(make_settings(url, Path("/nonexistent")))
    start = utcnow()
    try:
        async with runtime.database.unit_of_work() as session:
            for number in range(count):
                session.add(
                    WebhookOutbox(
                        client_id=client_id, event_type="consent.granted", payload={"number": number},
                        status="pending", created_at=start + timedelta(milliseconds=number),
                        next_attempt_at=start,
                    )
                )  # fmt: skip
    finally:
        await runtime.close()


def test_ten_nodes_started_at_once_on_an_empty_database_come_up_with_one_key_set(
    postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = _empty_database(postgres_cluster)
    ports = [free_port() for _ in range(10)]
    env = _environment(url, f"http://127.0.0.1:{ports[0]}", tmp_path)
    with contextlib.ExitStack() as started:
        homes = []
        for number in range(10):
            home = tmp_path / f"node{number}"
            home.mkdir()
            homes.append(home)
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "consentry", "serve", "--port", str(port)],
                env=env,
                cwd=home,
                stdout=(home / "server.log").open("w"),
                stderr=subprocess.STDOUT,
            )
            for port, home in zip(ports, homes, strict=True)
        ]
        for process in processes:
            started.callback(stop, process)
        deadline = time.monotonic() + 120
        ready: set[int] = set()
        while len(ready) < len(ports) and time.monotonic() < deadline:
            for index, port in enumerate(ports):
                if index in ready:
                    continue
                assert processes[index].poll() is None, (homes[index] / "server.log").read_text()
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        ready.add(index)
            time.sleep(0.2)
        assert len(ready) == len(ports), [
            (homes[i] / "server.log").read_text() for i in set(range(10)) - ready
        ]
        key_sets = {
            json.dumps(
                sorted(key["kid"] for key in httpx.get(f"http://127.0.0.1:{port}/oauth2/jwks").json()["keys"])
            )
            for port in ports
        }
        assert len(key_sets) == 1, key_sets
        assert len(json.loads(key_sets.pop())) == 2  # one RS256 key and one ES256 key
