"""The fuzzing gate: schemathesis generates requests for every operation of /openapi.json (the hot-path
endpoints included) and fails on any 5xx, or any answer the document does not describe (its status, its
content type, its body). Against a real `consentry serve` on SQLite, signed in as an administrator."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.pg import free_port
from tests.served import serving, signed_in

EXAMPLES_PER_OPERATION = 25
CLIENT_AUTHENTICATED = {"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _cli(env: dict[str, str], cwd: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "consentry", *args, "--json"], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def served_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A server of its own, an administrator's session, and a client's credentials."""
    home = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": f"sqlite+aiosqlite:///{home}/consentry.db",
        "CONSENTRY_ISSUER": url,
        "CONSENTRY_SECRET_KEY_FILE": str(home / "secret"),
        "CONSENTRY_ARGON2_MEMORY_KIB": "8192",
        "CONSENTRY_ARGON2_TIME_COST": "1",
        "CONSENTRY_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "consentry", "migrate"], env=env, cwd=home, check=True, capture_output=True
    )
    password = "a fuzzing administrator"
    _cli(
        env,
        home,
        "user",
        "create",
        "--email",
        "admin@example.com",
        "--password",
        password,
        "--verified",
        "--admin",
    )
    client = _cli(env, home, "client", "create", "--name", "Fuzz", "--redirect-uri", "https://app.example.com/cb",
                  "--grant-type", "authorization_code", "--grant-type", "client_credentials")  # fmt: skip
    with serving(env, home, port):
        yield {
            "url": url,
            "session": signed_in(url, "admin@example.com", password),
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        }


def _document() -> dict[str, Any]:
    """The document as the app builds it (the same code serves it at /openapi.json)."""
    from consentry.http.app import create_app
    from consentry.settings import Settings

    settings = Settings(
        secret_key="collection-only-secret-key-000000000000", database_url="sqlite+aiosqlite://"
    )
    return dict(create_app(settings).openapi())


SCHEMA = schemathesis.openapi.from_dict(_document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# Signed in, these would delete the administrator or end its session for every operation after them.
SIGNED_OUT = {("DELETE", "/api/v1/users/me"), ("POST", "/api/v1/auth/logout")}


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_every_operation_answers_as_documented(operation: Any, served_api: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {served_api['session']}"}
    if (operation.method.upper(), operation.path) in SIGNED_OUT:
        headers = {}
    elif operation.path in CLIENT_AUTHENTICATED:
        basic = base64.b64encode(f"{served_api['client_id']}:{served_api['client_secret']}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
    def each(case: Any) -> None:
        case.call_and_validate(base_url=served_api["url"], headers=headers, checks=CHECKS)

    each()


def test_the_document_describes_the_hot_path_and_the_real_error_statuses() -> None:
    document = _document()
    paths = document["paths"]
    authorize = paths["/oauth2/authorize"]["get"]
    assert {"client_id", "redirect_uri", "code_challenge", "max_age"} <= {
        p["name"] for p in authorize["parameters"]
    }
    token = paths["/oauth2/token"]["post"]
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["grant_type"] and "code_verifier" in form["properties"]
    assert {"200", "400", "401", "429", "503"} <= set(token["responses"])
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
    assert {"session", "client", "accessToken"} <= set(document["components"]["securitySchemes"])
    assert paths["/api/v1/oauth2/clients/{client_id}"]["get"]["responses"]["404"]


def test_every_json_answer_has_its_model() -> None:
    """No success answered in JSON is documented as ``{}``: each names the fields it carries (issue #33)."""
    unmodelled = [
        (method.upper(), path, status)
        for path, operations in _document()["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if response.get("content", {}).get("application/json", {"schema": None})["schema"] in ({}, None)
        and "application/json" in response.get("content", {})
    ]
    assert unmodelled == []
    schemas = _document()["components"]["schemas"]
    assert {"SignedIn", "ConnectedApps", "ConsentExport", "Statistics", "ProviderMetadata"} <= set(schemas)
