"""The resource-server kit's machinery; see :mod:`consentry.resource`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("consentry.resource")

ALGORITHMS = ("ES256", "RS256")  # what the provider signs with (RFC 9068 §2.1: never "none")
LEEWAY = 30  # seconds of clock difference tolerated on exp, nbf and iat
FEED_PAGE = 1000  # the provider's page: a full page means more to read
FEED_WAIT = 25.0  # seconds a long-poll of the feed lasts (the provider allows 30)
JWKS_REFETCH_AFTER = 10.0  # an unknown kid fetches the JWKS again at most this often
METADATA_PATH = "/.well-known/oauth-protected-resource"
REVOCATIONS_PATH = "/.well-known/consentry/revocations"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A valid access token for this resource."""

    sub: str | None
    client_id: str | None
    scopes: frozenset[str]
    audience: tuple[str, ...]
    expires_at: int
    jti: str | None
    claims: dict[str, Any] = field(default_factory=dict)


class BearerError(HTTPException):
    """An RFC 6750 §3 refusal: 401 ``invalid_token`` (or no token), 403 ``insufficient_scope``, or 503 when
    the provider cannot be asked."""

    def __init__(self, status_code: int, error: str | None, description: str, challenge: str) -> None:
        self.error = error
        self.description = description
        super().__init__(status_code, description, headers={"WWW-Authenticate": challenge})

    def response(self) -> Response:
        body = {"error": self.error or "invalid_request", "error_description": self.description}
        return JSONResponse(body, status_code=self.status_code, headers=self.headers)


class Protect:
    """Validates the access tokens of one resource; see :mod:`consentry.resource`."""

    def __init__(
        self,
        *,
        issuer: str,
        resource: str,
        client_id: str,
        client_secret: str,
        webhook_secret: str | None = None,
        introspection_ttl: float = 2.0,
        scopes_supported: Iterable[str] = (),
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.resource = resource
        self._credentials = httpx.BasicAuth(client_id, client_secret)
        self._client_id = client_id
        self._webhook = Webhook(webhook_secret) if webhook_secret else None
        self._introspection_ttl = introspection_ttl
        self._scopes_supported = set(scopes_supported)
        self._http = http
        self._own_http = http is None
        self._endpoints: dict[str, str] | None = None
        self._keys: KeySet | None = None
        self._keys_fetched = float("-inf")
        self._keys_lock = asyncio.Lock()
        self._introspected: dict[bytes, tuple[TokenInfo | None, float]] = {}
        self._asking: dict[bytes, asyncio.Future[TokenInfo | None]] = {}  # introspections under way
        self._verified: dict[bytes, TokenInfo] = {}  # JWTs whose signature and claims checked out
        self._revoked: dict[str, int] = {}  # jti → exp
        self._cursor: str | None = None
        self._follower: asyncio.Task[None] | None = None

    # --- the application's side ---------------------------------------------------------------------

    def require(self, *scopes: str) -> Callable[[Request], Awaitable[TokenInfo]]:
        """A FastAPI dependency: the request's valid token, which must hold every one of ``scopes``."""
        self._scopes_supported.update(scopes)

        async def dependency(request: Request) -> TokenInfo:
            info = request.scope.get("state", {}).get("consentry_token")
            if not isinstance(info, TokenInfo):
                info = await self.authenticate(request.headers.get("authorization"))
            missing = set(scopes) - info.scopes
            if missing:
                raise BearerError(
                    403,
                    "insufficient_scope",
                    f"the token lacks {' '.join(sorted(missing))}",
                    self._challenge("insufficient_scope", scope=" ".join(scopes)),
                )
            return info

        return dependency

    def install(self, app: Any) -> None:
        """Mount the RFC 9728 metadata and the revocation receiver on a Starlette or FastAPI ``app``, and
        follow the revocation feed while the app runs (catching up when it starts)."""
        path = urlsplit(self.resource).path.rstrip("/")
        for where in {METADATA_PATH, METADATA_PATH + path}:
            app.router.add_route(where, self._metadata, methods=["GET"], include_in_schema=False)
        if self._webhook is not None:
            app.router.add_route(REVOCATIONS_PATH, self._pushed, methods=["POST"], include_in_schema=False)
        running = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(application: Any) -> AsyncIterator[Any]:
            await self.start()
            try:
                async with running(application) as state:
                    yield state
            finally:
                await self.stop()

        app.router.lifespan_context = lifespan

    async def start(self) -> None:
        """Catch up on the revocations missed while down, then follow the feed."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        try:
            while len(await self._read_feed(wait=0)) >= FEED_PAGE:
                pass
        except (BearerError, ValueError) as exc:  # the provider is away: the follower keeps trying
            log.warning("could not catch up on revocations yet: %s", exc)
        self._follower = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- validation ------------------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> TokenInfo:
        """The valid token of an ``Authorization: Bearer`` header, else :class:`BearerError`."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise BearerError(401, None, "an access token is required", self._challenge(None))
        token = token.strip()
        info = await (self._jwt(token) if token.count(".") == 2 else self._introspect(token))
        if info.jti is not None and info.jti in self._revoked:
            raise self._invalid("the access token has been revoked")
        return info

    async def _jwt(self, token: str) -> TokenInfo:
        """A JWT is checked once (its bytes cannot change); each request after checks only its expiry and,
        in :meth:`authenticate`, the revocations."""
        digest = hashlib.sha256(token.encode()).digest()
        known = self._verified.get(digest)
        if known is not None:
            if known.expires_at + LEEWAY < time.time():
                raise self._invalid("the access token has expired")
            return known
        info = await self._check_jwt(token)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[digest] = info
        return info

    async def _check_jwt(self, token: str) -> TokenInfo:
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError):
            raise self._invalid("the access token is malformed") from None
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            raise self._invalid("not an access token (RFC 9068 typ at+jwt)")
        keys = await self._signing_keys(str(header.get("kid", "")))
        try:
            claims = jwt.decode(token, keys, algorithms=list(ALGORITHMS)).claims
        except (JoseError, ValueError):
            raise self._invalid("the access token's signature does not verify") from None
        now = time.time()
        audience = claims.get("aud")
        audiences = (audience,) if isinstance(audience, str) else tuple(audience or ())
        if claims.get("iss") != self.issuer:
            raise self._invalid("the access token is from another issuer")
        if self.resource not in audiences:
            raise self._invalid("the access token is for another resource")
        if not isinstance(claims.get("exp"), int) or claims["exp"] + LEEWAY < now:
            raise self._invalid("the access token has expired")
        if isinstance(claims.get("nbf"), int) and claims["nbf"] - LEEWAY > now:
            raise self._invalid("the access token is not valid yet")
        return TokenInfo(
            sub=claims.get("sub"),
            client_id=claims.get("client_id"),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            audience=audiences,
            expires_at=claims["exp"],
            jti=claims.get("jti"),
            claims=dict(claims),
        )

    async def _signing_keys(self, kid: str) -> KeySet:
        if self._keys is not None and any(key.kid == kid for key in self._keys.keys):
            return self._keys
        async with self._keys_lock:
            fresh = time.monotonic() - self._keys_fetched < JWKS_REFETCH_AFTER
            if self._keys is None or not fresh:
                endpoints = await self._discover()
                answer = await self._get(endpoints["jwks_uri"])
                self._keys = KeySet.import_key_set(answer.json())
                self._keys_fetched = time.monotonic()
        if not any(key.kid == kid for key in self._keys.keys):
            raise self._invalid("the access token is signed with an unknown key")
        return self._keys

    async def _introspect(self, token: str) -> TokenInfo:
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._introspected.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            info = cached[0]
        elif digest in self._asking:
            info = await self._share(self._asking[digest], token, digest)  # one introspection for them all
        else:
            info = await self._introspect_once(token, digest)
        if info is None:
            raise self._invalid("the access token is not active")
        return info

    async def _share(
        self, asking: asyncio.Future[TokenInfo | None], token: str, digest: bytes
    ) -> TokenInfo | None:
        try:
            return await asyncio.shield(asking)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this request was cancelled, not the one it waited for
            return await self._introspect_once(token, digest)

    async def _introspect_once(self, token: str, digest: bytes) -> TokenInfo | None:
        asking = self._asking[digest] = asyncio.get_running_loop().create_future()
        try:
            info = await self._ask_provider(token)
        except Exception as exc:
            asking.set_exception(exc)
            asking.exception()  # retrieved here: each waiter raises it for itself
            raise
        except BaseException:
            asking.cancel()
            raise
        finally:
            del self._asking[digest]
        asking.set_result(info)
        if len(self._introspected) > 10_000:
            self._introspected.clear()
        self._introspected[digest] = (info, time.monotonic() + self._introspection_ttl)
        return info

    async def _ask_provider(self, token: str) -> TokenInfo | None:
        endpoints = await self._discover()
        try:
            assert self._http is not None
            answer = await self._http.post(
                endpoints["introspection_endpoint"], data={"token": token}, auth=self._credentials
            )
            answer.raise_for_status()
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise self._unavailable(f"the authorization server could not be asked: {exc}") from None
        audience = body.get("aud")
        audiences = (audience,) if isinstance(audience, str) else tuple(audience or ())
        if not body.get("active") or self.resource not in audiences:
            return None
        return TokenInfo(
            sub=body.get("sub"),
            client_id=body.get("client_id"),
            scopes=frozenset(str(body.get("scope", "")).split()),
            audience=audiences,
            expires_at=int(body.get("exp", 0)),
            jti=body.get("jti"),
            claims=body,
        )

    # --- the provider ----------------------------------------------------------------------------------

    async def _discover(self) -> dict[str, str]:
        if self._endpoints is None:
            answer = await self._get(f"{self.issuer}/.well-known/openid-configuration")
            self._endpoints = dict(answer.json())
        return self._endpoints

    async def _get(self, url: str, **options: Any) -> httpx.Response:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        try:
            answer = await self._http.get(url, **options)
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise self._unavailable(f"the authorization server could not be reached: {exc}") from None
        return answer

    async def _read_feed(self, *, wait: float) -> list[dict[str, Any]]:
        """One read of the revocation feed from the cursor; returns the page."""
        params: dict[str, Any] = {"wait": wait}
        if self._cursor is not None:
            params["after"] = self._cursor
        answer = await self._get(
            f"{self.issuer}/api/v1/resources/{self._client_id}/revocations",
            params=params,
            auth=self._credentials,
            timeout=httpx.Timeout(wait + 10.0),
        )
        body = answer.json()
        self.revoke(body.get("revoked", []))
        self._cursor = body.get("next") or self._cursor
        return list(body.get("revoked", []))

    async def _follow(self) -> None:
        while True:
            try:
                await self._read_feed(wait=FEED_WAIT)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the provider is away: keep trying, once a second
                log.warning("revocation feed unavailable: %s", exc)
                await asyncio.sleep(1.0)

    def revoke(self, entries: Iterable[dict[str, Any]]) -> None:
        """Refuse these tokens (``{"jti", "exp"}``) from now on; forget those that have expired anyway."""
        now = int(time.time())
        for entry in entries:
            jti, exp = entry.get("jti"), entry.get("exp")
            if isinstance(jti, str) and isinstance(exp, int) and exp + LEEWAY > now:
                self._revoked[jti] = exp
        if len(self._revoked) > 1000:
            self._revoked = {jti: exp for jti, exp in self._revoked.items() if exp + LEEWAY > now}
        if self._introspected:
            revoked = self._revoked
            self._introspected = {
                digest: entry
                for digest, entry in self._introspected.items()
                if entry[0] is None or entry[0].jti not in revoked
            }

    # --- routes ------------------------------------------------------------------------------------------

    async def _metadata(self, _request: Request) -> Response:
        """RFC 9728 §3.2."""
        return JSONResponse(
            {
                "resource": self.resource,
                "authorization_servers": [self.issuer],
                "scopes_supported": sorted(self._scopes_supported),
                "bearer_methods_supported": ["header"],
                "resource_signing_alg_values_supported": list(ALGORITHMS),
            },
            headers={"Cache-Control": "max-age=300"},
        )

    async def _pushed(self, request: Request) -> Response:
        """A ``tokens.revoked`` webhook from the provider, verified per Standard Webhooks."""
        assert self._webhook is not None
        body = await request.body()
        try:
            event = self._webhook.verify(body, dict(request.headers))
        except WebhookVerificationError:
            return JSONResponse({"error": "invalid_signature"}, status_code=401)
        data = event.get("data", {}) if isinstance(event, dict) else {}
        if event.get("type") == "tokens.revoked" and data.get("resource") == self.resource:
            self.revoke(data.get("revoked", []))
        return Response(status_code=204)

    # --- answers -------------------------------------------------------------------------------------------

    def _challenge(self, error: str | None, **params: str) -> str:
        """RFC 6750 §3 and RFC 9728 §5.1: where to find this resource's metadata."""
        parts = [f'resource_metadata="{self._metadata_url()}"']
        if error is not None:
            parts.insert(0, f'error="{error}"')
        parts += [f'{name}="{value}"' for name, value in params.items()]
        return "Bearer " + ", ".join(parts)

    def _metadata_url(self) -> str:
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}{METADATA_PATH}{parts.path.rstrip('/')}"

    def _invalid(self, description: str) -> BearerError:
        return BearerError(401, "invalid_token", description, self._challenge("invalid_token"))

    def _unavailable(self, description: str) -> BearerError:
        error = BearerError(503, "temporarily_unavailable", description, self._challenge(None))
        error.headers = {**(error.headers or {}), "Retry-After": "1"}
        return error


class ProtectMiddleware:
    """ASGI middleware: every request but the kit's own well-known routes needs a valid token, which the
    routes find as ``request.state.consentry_token`` (and :meth:`Protect.require` checks for scopes)."""

    def __init__(self, app: ASGIApp, protect: Protect, exempt: Iterable[str] = ("/.well-known/",)) -> None:
        self.app = app
        self.protect = protect
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        try:
            info = await self.protect.authenticate(authorization)
        except BearerError as error:
            await error.response()(scope, receive, send)
            return
        scope.setdefault("state", {})["consentry_token"] = info
        await self.app(scope, receive, send)
