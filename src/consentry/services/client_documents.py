"""Client ID metadata documents (SPEC §8): a ``client_id`` that is an https URL names its own registration.

The document is fetched on the client's first use and again whenever the stored copy has gone stale (its
HTTP caching headers, at most a day), with the SSRF rules of webhooks, validated, and kept as a client row
under its URL: tokens, consents and the audit trail name it like any client, and an administrator can delete
it like any client (a deleted one is not fetched again). What a new copy changes (a redirect URI dropped, a
scope no longer listed) holds from that fetch on.
"""

from __future__ import annotations

import time
from datetime import datetime

import orjson

from consentry.domain.client_documents import document_client, document_lifetime, is_document_client_id
from consentry.domain.clients import (
    ClientRegistration,
    InvalidClientMetadata,
    RegisteredClient,
    TokenEndpointAuthMethod,
)
from consentry.errors import InvalidClientError
from consentry.outbound import FetchRefused, fetch_document
from consentry.runtime import Runtime
from consentry.services.client_management import describe
from consentry.services.client_registration import apply_metadata
from consentry.storage.audit import AuditRepository
from consentry.storage.clients import ClientRepository
from consentry.storage.records import Client

# A document that could not be used is not fetched again for this long: anyone can name any URL as a
# client_id, and Consentry must not become a way to send a site one request for each of theirs.
RETRY_REFUSED_AFTER = 10.0  # seconds


class ClientDocumentError(InvalidClientError):
    """A client ID metadata document that cannot be used; the description says why, for its developer. Shown
    at the authorization endpoint, which never redirects for an unknown client (RFC 6749 §4.1.2.1)."""

    status_code = 400

    def headers(self) -> dict[str, str]:
        return {}


async def current_client(
    runtime: Runtime, client_id: str | None, *, now: datetime
) -> RegisteredClient | None:
    """The live client ``client_id`` names, its metadata document fetched first if it has one that is not
    yet stored or has gone stale; :class:`ClientDocumentError` when that document cannot be used."""
    settings = runtime.settings
    if not client_id or not is_document_client_id(client_id, loopback_http=settings.issuer_is_loopback):
        return await runtime.clients.get(client_id)
    stored = await runtime.clients.get(client_id)
    if stored is None and not settings.client_id_documents:
        return None
    if stored is not None and stored.registration is not ClientRegistration.DOCUMENT:
        return stored
    if not settings.client_id_documents:
        # Turned off since: the document can no longer be kept current, so it authorizes nothing new.
        raise ClientDocumentError("this server no longer accepts client ID metadata documents")
    if stored is not None and stored.document_expires_at is not None and stored.document_expires_at > now:
        return stored
    refusals = runtime.clients.document_refusals
    refused = refusals.get(client_id)
    if refused is not None and time.monotonic() - refused[1] < RETRY_REFUSED_AFTER:
        raise ClientDocumentError(refused[0])
    try:
        return await runtime.clients.document_fetches.run(
            client_id, lambda: _fetch(runtime, client_id, now=now)
        )
    except ClientDocumentError as exc:
        if len(refusals) > 10_000:
            refusals.clear()
        refusals[client_id] = (exc.description, time.monotonic())
        raise


async def _fetch(runtime: Runtime, client_id: str, *, now: datetime) -> RegisteredClient | None:
    settings = runtime.settings
    allow_private = settings.webhook_allow_private or settings.issuer_is_loopback
    try:
        fetched = await fetch_document(client_id, allow_private=allow_private)
    except FetchRefused as exc:
        raise ClientDocumentError(f"the client ID metadata document could not be fetched: {exc}") from None
    if fetched.status != 200:
        raise ClientDocumentError(f"the client ID metadata document's server answered HTTP {fetched.status}")
    try:
        document = orjson.loads(fetched.body)
    except orjson.JSONDecodeError:
        raise ClientDocumentError("the client ID metadata document is not JSON") from None
    catalogue = await runtime.clients.catalogue()
    try:
        registration = document_client(
            client_id,
            document,
            catalogue,
            issuer_on_loopback=settings.issuer_is_loopback,
            allow_private=allow_private,
        )
    except InvalidClientMetadata as exc:
        raise ClientDocumentError(f"the client ID metadata document: {exc}") from None
    expires_at = now + document_lifetime(fetched.headers, now=now)
    async with runtime.database.unit_of_work() as session:
        clients = ClientRepository(session)
        new = Client(
            id=client_id,
            token_endpoint_auth_method=TokenEndpointAuthMethod.NONE,
            token_endpoint_auth_method_fixed=True,
            registered_by=ClientRegistration.DOCUMENT,
            created_at=now,
        )
        apply_metadata(new, registration.metadata, now=now)
        new.software_id, new.software_version = registration.software_id, registration.software_version
        new.document_expires_at = expires_at
        audit = AuditRepository(session)
        if await clients.add_unless_present(new):
            await audit.record(
                "client_registered", now=now, client_id=client_id, scopes=new.scopes, actor="client",
                details={"via": "client_id_metadata_document"},
            )  # fmt: skip
        else:
            client = await clients.get_record(client_id, for_update=True)
            assert client is not None
            if client.deleted_at is not None:
                raise ClientDocumentError("this application was removed by the operator")
            if client.registered_by is not ClientRegistration.DOCUMENT:
                raise ClientDocumentError("this client_id belongs to another client")
            before = describe(client)
            apply_metadata(client, registration.metadata, now=now)
            client.software_id, client.software_version = (
                registration.software_id,
                registration.software_version,
            )
            client.document_expires_at = expires_at
            changed = sorted(k for k, v in describe(client).items() if k != "updated_at" and before[k] != v)
            if changed:
                await audit.record(
                    "client_updated", now=now, client_id=client_id, actor="client",
                    details={"via": "client_id_metadata_document", "changed": changed},
                )  # fmt: skip
    runtime.clients.invalidate(client_id)
    return await runtime.clients.get(client_id)
