"""Discovery (OIDC Discovery 1.0 §4, RFC 8414 §3) and the JWKS (RFC 7517)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from consentry.crypto.keys import JWKS_MAX_AGE
from consentry.domain.tokens import SIGNING_ALGORITHMS
from consentry.http import answer_bodies as reply
from consentry.http.deps import NowDep, RuntimeDep
from consentry.http.responses import JSONResponse
from consentry.runtime import Runtime

router = APIRouter(tags=["discovery"])

CLAIMS_SUPPORTED = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "name", "given_name", "family_name",
    "preferred_username", "picture", "locale", "zoneinfo", "updated_at", "email", "email_verified",
    "phone_number", "phone_number_verified",
]  # fmt: skip


async def metadata(runtime: Runtime) -> dict[str, Any]:
    issuer = runtime.issuer
    answer: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "scopes_supported": sorted(await runtime.clients.known_scopes()),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": True,
        "claims_supported": CLAIMS_SUPPORTED,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }
    if runtime.settings.dcr != "off":
        answer["registration_endpoint"] = f"{issuer}/oauth2/register"
    if runtime.settings.client_id_documents:
        answer["client_id_metadata_document_supported"] = True
    return answer


@router.get("/.well-known/openid-configuration", response_model=reply.ProviderMetadata)
async def openid_configuration(runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(await metadata(runtime), headers={"Cache-Control": "public, max-age=300"})


@router.get("/.well-known/oauth-authorization-server", response_model=reply.ProviderMetadata)
async def authorization_server_metadata(runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(await metadata(runtime), headers={"Cache-Control": "public, max-age=300"})


@router.get("/oauth2/jwks", response_model=reply.JsonWebKeySet)
async def jwks(request: Request, runtime: RuntimeDep, now: NowDep) -> JSONResponse:
    await runtime.keys.ensure_loaded(now=now)
    return JSONResponse(runtime.keys.jwks(), headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})
