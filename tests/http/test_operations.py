"""Health, readiness, metrics, security headers and the JSON error shape (SPEC §5)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from consentry.http.app import create_app
from consentry.http.deps import RuntimeDep
from consentry.http.hot_path import hot_routes
from consentry.runtime import Runtime
from tests.conftest import make_settings
from tests.pg import free_port


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(http: httpx.AsyncClient, runtime: Runtime) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == runtime.database.dialect


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = make_settings(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none", tmp_path)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/readyz")
    await app.state.runtime.close()
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert "nobody" not in response.text


async def test_security_headers_on_every_response(http: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/no-such-page"):
        response = await http.get(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"


async def test_hsts_only_for_https_issuers(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(database_url, tmp_path, env="production", issuer="https://id.example.com")
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/healthz")
    await app.state.runtime.close()
    assert "max-age=" in response.headers["strict-transport-security"]
    assert app.docs_url is None  # no interactive docs in production


async def test_unknown_path_is_json_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_wrong_method_is_json_405(http: httpx.AsyncClient) -> None:
    response = await http.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


async def test_oversized_body_is_refused_before_it_is_read(http: httpx.AsyncClient) -> None:
    response = await http.post("/healthz", content=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"


async def test_streamed_oversized_body_without_length_is_refused(
    asgi_app: FastAPI, http: httpx.AsyncClient
) -> None:
    @asgi_app.post("/echo-length")
    async def _echo(request: Request) -> dict[str, int]:  # pragma: no cover - refused before it returns
        return {"length": len(await request.body())}

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"y" * 65536

    response = await http.post("/echo-length", content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"])
async def test_streamed_oversized_body_to_a_hot_endpoint_is_refused(
    http: httpx.AsyncClient, path: str
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b"grant_type=client_credentials&x="
        for _ in range(20):
            yield b"y" * 65536

    response = await http.post(
        path, content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"


async def test_metrics_count_requests_by_route_template(http: httpx.AsyncClient) -> None:
    await http.get("/healthz")
    await http.get("/nope/123")
    body = (await http.get("/metrics")).text
    assert 'consentry_http_requests_total{method="GET",route="/healthz",status="200"}' in body
    assert 'route="unmatched"' in body
    assert "/nope/123" not in body  # raw paths would explode the label set
    assert "consentry_http_request_duration_seconds_bucket" in body


async def test_unexpected_errors_are_json_500_without_details(asgi_app: FastAPI) -> None:
    @asgi_app.get("/explode")
    async def _explode() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=asgi_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/explode")
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "secret internals" not in response.text


@pytest.mark.parametrize("query", ["limit=abc", "limit=-1"], ids=["not-a-number", "negative"])
async def test_validation_errors_are_invalid_request(
    asgi_app: FastAPI, http: httpx.AsyncClient, query: str
) -> None:
    from fastapi import Query

    @asgi_app.get("/paged")
    async def _paged(limit: int = Query(ge=0)) -> dict[str, int]:
        return {"limit": limit}

    response = await http.get(f"/paged?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "limit" in response.json()["error_description"]


# --- the hot path: the busiest endpoints dispatched from the edge -------------------------------------


async def test_hot_endpoints_keep_route_metrics_headers_and_other_methods(http: httpx.AsyncClient) -> None:
    response = await http.post("/oauth2/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401  # no client authentication: the endpoint itself answered
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    other = await http.get("/oauth2/token")  # not a hot route: FastAPI answers as for any path
    assert other.status_code == 405
    assert other.json()["error"] == "method_not_allowed"
    body = (await http.get("/metrics")).text
    assert 'consentry_http_requests_total{method="POST",route="/oauth2/token",status="401"}' in body


async def test_unexpected_errors_on_the_hot_path_are_json_500(
    asgi_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("consentry.http.routers.token.authenticate_client", explode)
    transport = httpx.ASGITransport(app=asgi_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/oauth2/introspect", data={"token": "x"}, auth=("some-client", "secret")
        )
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "secret internals" not in response.text


def test_a_hot_route_must_take_the_request_alone() -> None:
    router = APIRouter()

    @router.post("/slow")
    async def _slow(request: Request, runtime: RuntimeDep) -> None:  # pragma: no cover - never called
        return None

    with pytest.raises(TypeError, match="takes only the request"):
        hot_routes([router], [("POST", "/slow")])
