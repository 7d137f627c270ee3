"""The resource-server kit (SPEC §7): protect an API with the tokens Consentry issues for it.

Importable without the server (it needs httpx, joserfc, standardwebhooks and Starlette, nothing of Consentry's
database or settings)::

    protect = Protect(issuer="https://id.example.com", resource="https://api.example.com/photos",
                      client_id="...", client_secret="...", webhook_secret="whsec_...")
    app = FastAPI()
    protect.install(app)

    @app.get("/photos")
    async def photos(token: TokenInfo = Depends(protect.require("photos:read"))) -> list[str]: ...

JWT access tokens (RFC 9068) are validated locally against the provider's JWKS (fetched through discovery,
cached, fetched again for an unknown ``kid``); opaque ones by introspection, cached for a few seconds. A
revoked token is refused within a second of its revocation: the kit long-polls the provider's revocation
feed from its cursor (and catches up on start), and takes pushes at ``/.well-known/consentry/revocations``.
"""

from consentry.resource.kit import BearerError, Protect, ProtectMiddleware, TokenInfo

__all__ = ["BearerError", "Protect", "ProtectMiddleware", "TokenInfo"]
