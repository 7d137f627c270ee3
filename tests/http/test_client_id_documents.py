"""Client ID metadata documents (SPEC §8): a client_id that is a URL names a JSON document of its metadata,
fetched (safely, within bounds) on first use and when stale, never trusted, shown with the host that served
it; a document that cannot be used is refused with a clear error, never a 5xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from consentry.runtime import Runtime, utcnow
from consentry.settings import Settings
from tests.conftest import make_settings
from tests.documents import Documents
from tests.oauth import (
    REDIRECT_URI,
    App,
    Person,
    approve,
    authorize_params,
    exchange_code,
    make_person,
    pkce_pair,
    query_of,
)

DOC = "/agents/photo-agent.json"
OTHER_REDIRECT = "https://app.example.com/other"


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, **getattr(request, "param", {}))


@pytest.fixture
async def person(runtime: Runtime) -> Person:
    return await make_person(runtime)


def document(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "client_id": url,
        "client_name": "Photo Agent",
        "client_uri": "https://app.example.com",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        **overrides,
    }


async def ask(http: httpx.AsyncClient, person: Person, client_id: str, **extra: str) -> httpx.Response:
    _, challenge = pkce_pair()
    params = authorize_params(App(client_id, None, REDIRECT_URI), challenge=challenge, **extra)
    return await http.get("/oauth2/authorize", params=params, headers=person.headers)


async def test_a_client_named_by_its_document_signs_a_person_in_and_is_shown_with_its_host(
    http: httpx.AsyncClient, runtime: Runtime, documents: Documents, person: Person
) -> None:
    url = documents.url(DOC)
    documents.serve(DOC, document(url), **{"Cache-Control": "max-age=600"})
    app = App(url, None, REDIRECT_URI)
    verifier, challenge = pkce_pair()
    params = authorize_params(app, scope="openid profile", challenge=challenge)
    asked = await http.get("/oauth2/authorize", params=params, headers=person.headers)
    assert asked.status_code == 302 and asked.headers["location"].startswith("/consent")
    info = await http.get(
        f"/oauth2/consent?{asked.headers['location'].split('?', 1)[1]}",
        headers=person.headers | {"Accept": "application/json"},
    )
    client = info.json()["client"]
    assert (client["id"], client["name"], client["verified_host"]) == (url, "Photo Agent", "127.0.0.1")
    assert client["registered_itself_on"][:10] == utcnow().date().isoformat()
    page = await http.get(asked.headers["location"], headers=person.headers)
    assert "Its details come from <strong>127.0.0.1</strong>" in page.text

    code = query_of(await approve(http, person, params))["code"]
    exchanged = await exchange_code(http, app, code, verifier)
    assert exchanged.status_code == 200, exchanged.text
    claims = runtime.keys.verify(exchanged.json()["id_token"])
    assert claims["aud"] == url
    apps = (await http.get("/api/v1/oauth2/consents", headers=person.headers)).json()
    assert [(a["client_id"], a["verified_host"]) for a in apps["consents"]] == [(url, "127.0.0.1")]
    refreshed = await http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": exchanged.json()["refresh_token"],
            "client_id": url,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert documents.hits[DOC] == 1  # fresh for ten minutes: fetched once


async def test_a_changed_document_holds_from_the_next_fetch(
    http: httpx.AsyncClient, documents: Documents, person: Person
) -> None:
    url = documents.url(DOC)
    documents.serve(
        DOC, document(url, redirect_uris=[REDIRECT_URI, OTHER_REDIRECT]), **{"Cache-Control": "no-cache"}
    )
    allowed = await ask(http, person, url, redirect_uri=OTHER_REDIRECT)
    assert allowed.headers["location"].startswith("/consent")
    documents.serve(DOC, document(url, client_name="Photo Agent 2"), **{"Cache-Control": "max-age=0"})
    dropped = await ask(http, person, url, redirect_uri=OTHER_REDIRECT)
    assert dropped.status_code == 400
    assert "redirect_uri does not match" in dropped.json()["error_description"]
    assert (await ask(http, person, url)).headers["location"].startswith("/consent")
    assert documents.hits[DOC] == 3


@pytest.mark.parametrize(
    ("served", "why"),
    [
        (
            lambda url: {"body": document("https://elsewhere.example.com/agent.json")},
            "not the URL it was fetched",
        ),
        (lambda url: {"body": document(url, padding="x" * 70_000)}, "larger than 64 KiB"),
        (
            lambda url: {"body": b"", "status": 302, "Location": "http://10.0.0.1/agent.json"},
            "redirect, which is not followed",
        ),
        (lambda url: {"body": b"<html>hello</html>"}, "is not JSON"),
        (lambda url: {"body": [url]}, "not a JSON object"),
        (lambda url: {"body": {}, "status": 404}, "answered HTTP 404"),
        (lambda url: {"body": document(url, client_secret="s3cret")}, "must not hold a client secret"),
        (lambda url: {"body": document(url, token_endpoint_auth_method="client_secret_basic")}, "is public"),
        (lambda url: {"body": document(url, redirect_uris=["http://app.example.com/cb"])}, "plain http"),
        (lambda url: {"body": document(url, grant_types=["client_credentials"])}, "public client"),
    ],
)
async def test_a_document_that_cannot_be_used_is_refused_clearly(
    http: httpx.AsyncClient, documents: Documents, person: Person, served: Any, why: str
) -> None:
    url = documents.url(DOC)
    spec = served(url)
    body = spec.pop("body")
    documents.serve(
        DOC, body, **{k: v for k, v in spec.items() if k != "status"}, status=spec.get("status", 200)
    )
    refused = await ask(http, person, url)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_client"
    assert why in refused.json()["error_description"]
    again = await ask(http, person, url)
    assert again.json() == refused.json() and documents.hits[DOC] == 1  # not fetched again at once


async def test_a_document_server_that_does_not_answer_is_given_up_on_in_five_seconds(
    http: httpx.AsyncClient, documents: Documents, person: Person
) -> None:
    url = documents.url(DOC)
    documents.serve(DOC, document(url), delay=8.0)
    refused = await ask(http, person, url)
    assert refused.status_code == 400
    assert "did not answer within 5 s" in refused.json()["error_description"]


async def test_a_browser_is_shown_a_page_naming_the_problem(
    http: httpx.AsyncClient, documents: Documents, person: Person
) -> None:
    url = documents.url(DOC)
    documents.serve(DOC, json.dumps({"client_id": "https://elsewhere.example.com/x"}).encode())
    _, challenge = pkce_pair()
    params = authorize_params(App(url, None, REDIRECT_URI), challenge=challenge)
    page = await http.get(
        "/oauth2/authorize", params=params, headers=person.headers | {"Accept": "text/html"}
    )
    assert page.status_code == 400 and "text/html" in page.headers["content-type"]
    assert "not the URL it was fetched from" in page.text


async def test_an_administrator_who_deletes_a_document_client_keeps_it_out(
    http: httpx.AsyncClient, runtime: Runtime, documents: Documents, person: Person
) -> None:
    admin = await make_person(runtime, is_admin=True)
    url = documents.url(DOC)
    documents.serve(DOC, document(url), **{"Cache-Control": "no-store"})
    assert (await ask(http, person, url)).headers["location"].startswith("/consent")
    listed = await http.get(
        "/api/v1/admin/clients", params={"registered_by": "document"}, headers=admin.headers
    )
    assert [c["client_id"] for c in listed.json()["clients"]] == [url]
    deleted = await http.delete(f"/api/v1/oauth2/clients/{url}", headers=admin.headers)
    assert deleted.status_code == 204
    refused = await ask(http, person, url)
    assert refused.status_code == 400 and "removed by the operator" in refused.json()["error_description"]


@pytest.mark.parametrize("settings", [{"client_id_documents": False}], indirect=True)
async def test_documents_can_be_turned_off(
    http: httpx.AsyncClient, documents: Documents, person: Person
) -> None:
    url = documents.url(DOC)
    documents.serve(DOC, document(url))
    refused = await ask(http, person, url)
    assert refused.status_code == 400 and refused.json()["error_description"] == "unknown client_id"
    assert DOC not in documents.hits
    discovery = (await http.get("/.well-known/openid-configuration")).json()
    assert "client_id_metadata_document_supported" not in discovery


async def test_a_document_client_authorizes_nothing_new_once_documents_are_turned_off(
    http: httpx.AsyncClient,
    runtime: Runtime,
    documents: Documents,
    person: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = documents.url(DOC)
    documents.serve(DOC, document(url))
    assert (await ask(http, person, url)).headers["location"].startswith("/consent")
    monkeypatch.setattr(
        runtime, "settings", runtime.settings.model_copy(update={"client_id_documents": False})
    )
    refused = await ask(http, person, url)
    assert refused.status_code == 400
    assert refused.json()["error_description"] == "this server no longer accepts client ID metadata documents"


async def test_only_a_url_with_a_path_and_no_fragment_is_a_document(
    http: httpx.AsyncClient, documents: Documents, person: Person
) -> None:
    base = documents.url("")
    for client_id in (base + "/", base + "/a/../b.json", base + "/a.json#x", "http://example.com/agent.json"):
        refused = await ask(http, person, client_id)
        assert refused.status_code == 400 and refused.json()["error_description"] == "unknown client_id"
    assert documents.hits == {}
