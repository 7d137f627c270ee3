"""The resource-server kit (SPEC §7) against Consentry itself: RFC 6750 answers, one introspection for many
concurrent requests, revocations from the feed and from verified pushes. (The whole path, in a browser and
two processes, is tests/browser/test_protected_api.py.) The routes are declared inside the tests, so the
module keeps annotations evaluated: FastAPI reads them with the test's locals."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import orjson
import pytest
from fastapi import Depends, FastAPI
from standardwebhooks.webhooks import Webhook

from consentry.resource import Protect, ProtectMiddleware, TokenInfo
from consentry.runtime import Runtime
from tests.http.test_resources import MAIL, PHOTOS, make_resource
from tests.oauth import Person, make_app, make_person

ISSUER = "http://127.0.0.1:8000"
API_HOST = "https://api.example.com"


class Counting(httpx.AsyncBaseTransport):
    """Consentry in process, counting what the kit asks of it."""

    def __init__(self, app: FastAPI) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self._inner.handle_async_request(request)


@pytest.fixture
async def admin(runtime: Runtime) -> Person:
    return await make_person(runtime, is_admin=True)


@contextlib.asynccontextmanager
async def protected(
    asgi_app: FastAPI, resource: dict[str, Any], identifier: str, *, webhook_secret: str | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Protect, Counting]]:
    provider = Counting(asgi_app)
    kit = Protect(
        issuer=ISSUER,
        resource=identifier,
        client_id=resource["client_id"],
        client_secret=resource["client_secret"],
        webhook_secret=webhook_secret,
        http=httpx.AsyncClient(transport=provider),
    )
    api = FastAPI()
    kit.install(api)

    @api.get("/items")
    async def items(token: Annotated[TokenInfo, Depends(kit.require("read"))]) -> dict[str, Any]:
        return {"sub": token.sub}

    @api.post("/items")
    async def add(token: Annotated[TokenInfo, Depends(kit.require("write"))]) -> dict[str, Any]:
        return {"sub": token.sub}

    await kit.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=API_HOST) as client:
            yield client, kit, provider
    finally:
        await kit.stop()


async def token_for(
    http: httpx.AsyncClient, runtime: Runtime, identifier: str, scope: str
) -> tuple[str, Any]:
    service = await make_app(runtime, scope=scope, grant_types=["client_credentials"])
    form = {"grant_type": "client_credentials", "scope": scope, "resource": identifier}
    issued = await http.post("/oauth2/token", data=form, auth=service.basic())
    assert issued.status_code == 200, issued.text
    return issued.json()["access_token"], service


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_rfc_6750_answers(
    http: httpx.AsyncClient, runtime: Runtime, asgi_app: FastAPI, admin: Person, token_format: str
) -> None:
    resource = await make_resource(
        http, admin, PHOTOS, {"read": "Read", "write": "Write"}, token_format=token_format
    )
    await make_resource(http, admin, MAIL, {"send": "Send"})
    token, service = await token_for(http, runtime, PHOTOS, "read")
    other, _ = await token_for(http, runtime, MAIL, "send")
    async with protected(asgi_app, resource, PHOTOS) as (api, _kit, _provider):
        ok = await api.get("/items", headers={"Authorization": f"Bearer {token}"})
        # RFC 9068 §2.2: a client's own token names the client as sub; introspection (RFC 7662) has none
        assert ok.status_code == 200
        assert ok.json() == {"sub": service.client_id if token_format == "jwt" else None}

        missing = await api.get("/items")
        assert missing.status_code == 401
        challenge = missing.headers["www-authenticate"]
        assert (
            challenge.startswith("Bearer ") and "error=" not in challenge
        )  # RFC 6750 §3.1: no token, no code
        assert (
            'resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/photos"'
            in challenge
        )
        for bad in ("garbage", other, token[:-2] + "xx"):
            refused = await api.get("/items", headers={"Authorization": f"Bearer {bad}"})
            assert refused.status_code == 401, bad
            assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        short = await api.post("/items", headers={"Authorization": f"Bearer {token}"})
        assert short.status_code == 403
        assert 'error="insufficient_scope", ' in short.headers["www-authenticate"]
        assert 'scope="write"' in short.headers["www-authenticate"]
        metadata = (await api.get("/.well-known/oauth-protected-resource/photos")).json()
        assert metadata["resource"] == PHOTOS and metadata["authorization_servers"] == [ISSUER]
        assert set(metadata["scopes_supported"]) == {"read", "write"}


async def test_concurrent_requests_share_one_introspection(
    http: httpx.AsyncClient, runtime: Runtime, asgi_app: FastAPI, admin: Person
) -> None:
    resource = await make_resource(http, admin, PHOTOS, {"read": "Read"})
    token, _ = await token_for(http, runtime, PHOTOS, "read")
    async with protected(asgi_app, resource, PHOTOS) as (api, _kit, provider):
        answers = await asyncio.gather(
            *(api.get("/items", headers={"Authorization": f"Bearer {token}"}) for _ in range(20))
        )
        assert [a.status_code for a in answers] == [200] * 20
        assert provider.paths.count("/oauth2/introspect") == 1


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_a_revocation_reaches_the_kit_through_the_feed(
    http: httpx.AsyncClient, runtime: Runtime, asgi_app: FastAPI, admin: Person, token_format: str
) -> None:
    resource = await make_resource(http, admin, PHOTOS, {"read": "Read"}, token_format=token_format)
    token, service = await token_for(http, runtime, PHOTOS, "read")
    bearer = {"Authorization": f"Bearer {token}"}
    async with protected(asgi_app, resource, PHOTOS) as (api, _kit, _provider):
        assert (await api.get("/items", headers=bearer)).status_code == 200
        await asyncio.sleep(0.3)  # the follower is waiting on the feed
        assert (
            await http.post("/oauth2/revoke", data={"token": token}, auth=service.basic())
        ).status_code == 200
        revoked_at = time.monotonic()
        while (await api.get("/items", headers=bearer)).status_code == 200:
            assert time.monotonic() - revoked_at < 1.0
            await asyncio.sleep(0.02)


async def test_pushed_revocations_are_verified(
    http: httpx.AsyncClient, runtime: Runtime, asgi_app: FastAPI, admin: Person
) -> None:
    resource = await make_resource(
        http, admin, PHOTOS, {"read": "Read"}, token_format="jwt", webhook_url="https://api.example.com/hooks"
    )
    token, _ = await token_for(http, runtime, PHOTOS, "read")
    async with protected(asgi_app, resource, PHOTOS, webhook_secret=resource["webhook_secret"]) as (
        api,
        kit,
        _provider,
    ):
        kit_jti = (await kit.authenticate(f"Bearer {token}")).jti
        body = orjson.dumps(
            {
                "type": "tokens.revoked",
                "data": {"resource": PHOTOS, "revoked": [{"jti": kit_jti, "exp": 2**40}]},
            }
        )
        forged = Webhook("whsec_" + "A" * 43).sign("msg_1", datetime.now(UTC), body.decode())
        headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}
        refused = await api.post(
            "/.well-known/consentry/revocations",
            content=body,
            headers=headers | {"webhook-signature": forged},
        )
        assert refused.status_code == 401
        assert (await api.get("/items", headers={"Authorization": f"Bearer {token}"})).status_code == 200

        signed = Webhook(resource["webhook_secret"]).sign("msg_1", datetime.now(UTC), body.decode())
        pushed = await api.post(
            "/.well-known/consentry/revocations",
            content=body,
            headers=headers | {"webhook-signature": signed},
        )
        assert pushed.status_code == 204
        assert (await api.get("/items", headers={"Authorization": f"Bearer {token}"})).status_code == 401


async def test_the_middleware_guards_every_route(
    http: httpx.AsyncClient, runtime: Runtime, asgi_app: FastAPI, admin: Person
) -> None:
    resource = await make_resource(http, admin, PHOTOS, {"read": "Read"}, token_format="jwt")
    token, service = await token_for(http, runtime, PHOTOS, "read")
    kit = Protect(
        issuer=ISSUER,
        resource=PHOTOS,
        client_id=resource["client_id"],
        client_secret=resource["client_secret"],
        http=httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi_app)),
    )
    api = FastAPI()
    api.add_middleware(ProtectMiddleware, protect=kit)

    @api.get("/anything")
    async def anything(token: Annotated[TokenInfo, Depends(kit.require())]) -> dict[str, Any]:
        return {"client_id": token.client_id}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=API_HOST) as client:
        assert (await client.get("/anything")).status_code == 401
        ok = await client.get("/anything", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json() == {"client_id": service.client_id}
    await kit.stop()
