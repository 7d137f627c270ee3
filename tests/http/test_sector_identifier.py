"""A pairwise client's sector_identifier_uri is fetched and checked (OIDC Core §8.1, SPEC §6): a client cannot
claim another app's sector, and so cannot be given the same pairwise subject for the same person."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from consentry.runtime import Runtime
from tests.documents import Documents
from tests.http.conftest import production
from tests.oauth import Person, make_person

API = "/api/v1/oauth2/clients"
ONE, TWO = "https://one.example.com/cb", "https://two.example.com/cb"


@pytest.fixture
async def owner(runtime: Runtime) -> Person:
    return await make_person(runtime)


def pairwise(redirect_uris: list[str], sector_identifier_uri: str) -> dict[str, object]:
    return {
        "client_name": "Pairwise App",
        "redirect_uris": redirect_uris,
        "scope": "openid",
        "subject_type": "pairwise",
        "sector_identifier_uri": sector_identifier_uri,
    }


async def test_a_document_that_lists_every_redirect_uri_groups_the_hosts(
    http: httpx.AsyncClient, owner: Person, documents: Documents
) -> None:
    sector = documents.serve("/sector.json", [ONE, TWO])
    created = await http.post(API, json=pairwise([ONE, TWO], sector), headers=owner.headers)
    assert created.status_code == 201, created.text
    assert created.json()["sector_identifier_uri"] == sector


@pytest.mark.parametrize(
    ("body", "status", "extra", "said"),
    [
        ([ONE], 200, {}, "does not list https://two.example.com/cb"),  # claims a sector it is not in
        ({"redirect_uris": [ONE, TWO]}, 200, {}, "JSON array"),
        (b"<html>not json</html>", 200, {}, "JSON"),
        ([ONE, TWO], 404, {}, "HTTP 404"),
        ([ONE, TWO], 302, {"Location": "http://10.0.0.1/sector.json"}, "redirect"),
        (b"[" + b'"x",' * 30000 + b'"y"]', 200, {}, "larger than 64 KiB"),
    ],
    ids=["not-listed", "not-an-array", "not-json", "missing", "redirect", "too-large"],
)
async def test_a_sector_document_that_does_not_hold_is_refused(
    http: httpx.AsyncClient,
    owner: Person,
    documents: Documents,
    body: object,
    status: int,
    extra: dict[str, str],
    said: str,
) -> None:
    sector = documents.serve("/sector.json", body, status=status, **extra)
    refused = await http.post(API, json=pairwise([ONE, TWO], sector), headers=owner.headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_client_metadata"
    assert said in refused.json()["error_description"]


async def test_a_sector_host_that_does_not_answer_is_refused_in_time(
    http: httpx.AsyncClient, owner: Person, documents: Documents, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consentry import outbound

    monkeypatch.setattr(outbound, "FETCH_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(outbound.fetch_document, "__kwdefaults__", {"max_bytes": 65536, "within": 0.5})
    # The host answers after 10 s; the refusal comes after the 0.5 s bound (the rest of the margin is for the
    # registration's own work on a busy machine), never after the host's answer.
    sector = documents.serve("/slow.json", [ONE, TWO], delay=10)
    began = time.monotonic()
    refused = await http.post(API, json=pairwise([ONE, TWO], sector), headers=owner.headers)
    assert refused.status_code == 400
    assert "did not answer within" in refused.json()["error_description"]
    assert time.monotonic() - began < 5


async def test_changing_the_redirect_uris_checks_the_document_again(
    http: httpx.AsyncClient, owner: Person, documents: Documents
) -> None:
    sector = documents.serve("/sector.json", [ONE])
    created = (await http.post(API, json=pairwise([ONE], sector), headers=owner.headers)).json()
    refused = await http.patch(
        f"{API}/{created['client_id']}", json={"redirect_uris": [ONE, TWO]}, headers=owner.headers
    )
    assert refused.status_code == 400 and "does not list" in refused.json()["error_description"]
    documents.serve("/sector.json", [ONE, TWO])
    changed = await http.patch(
        f"{API}/{created['client_id']}", json={"redirect_uris": [ONE, TWO]}, headers=owner.headers
    )
    assert changed.status_code == 200, changed.text


async def test_in_production_a_sector_on_a_private_address_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    async with production(database_url, tmp_path) as (c, runtime):
        owner = await make_person(runtime)
        sector = "https://127.0.0.1:1/sector.json"
        refused = await c.post(API, json=pairwise([ONE, TWO], sector), headers=owner.headers)
        assert refused.status_code == 400
        assert "private or loopback" in refused.json()["error_description"]
