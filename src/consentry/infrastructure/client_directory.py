"""Clients and the catalogue (scopes and resources) as immutable snapshots, cached in-process for the hot
paths.

A change made through any process is announced on the change bus (storage/change_bus.py): this process forgets
the entry at once, the others as soon as they hear it; ``ttl`` bounds what a missed announcement costs.
When an entry expires under load, one read refreshes it and the requests arriving meanwhile wait for that
read (single_flight).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from consentry.domain.client_documents import MAX_CLIENT_ID_URL
from consentry.domain.clients import RegisteredClient
from consentry.domain.resources import Catalogue, CatalogueScope
from consentry.single_flight import SingleFlight
from consentry.storage.change_bus import ChangeBus
from consentry.storage.clients import ClientRepository
from consentry.storage.database import Database
from consentry.storage.records import Client
from consentry.storage.resources import CatalogueRepository

CATALOGUE_REREAD_AFTER = 1.0  # seconds: how often a request for an unknown scope may read the catalogue again


def snapshot(client: Client) -> RegisteredClient:
    return RegisteredClient(
        id=client.id,
        name=client.name,
        redirect_uris=tuple(client.redirect_uris),
        grant_types=tuple(client.grant_types),
        scopes=client.scopes,
        token_endpoint_auth_method=client.token_endpoint_auth_method.value,
        auth_method_fixed=client.token_endpoint_auth_method_fixed,
        secret_hash=client.secret_hash,
        subject_type=client.subject_type.value,
        sector=client.sector,
        trusted=client.trusted,
        consent_ttl_days=client.consent_ttl_days,
        policy_version=client.policy_version,
        client_uri=client.client_uri,
        logo_uri=client.logo_uri,
        policy_uri=client.policy_uri,
        tos_uri=client.tos_uri,
        webhook_url=client.webhook_url,
        id_token_signed_response_alg=client.id_token_signed_response_alg,
        post_logout_redirect_uris=tuple(client.post_logout_redirect_uris or ()),
        backchannel_logout_uri=client.backchannel_logout_uri,
        backchannel_logout_session_required=client.backchannel_logout_session_required,
        registration=client.registered_by,
        created_at=client.created_at,
        document_expires_at=client.document_expires_at,
    )


class ClientDirectory:
    def __init__(self, database: Database, changes: ChangeBus, *, ttl: float = 5.0) -> None:
        self._database = database
        self._changes = changes
        changes.subscribe(self._changed)
        self._ttl = ttl
        self._clients: dict[str, tuple[RegisteredClient | None, float]] = {}
        self._reads: SingleFlight[str, RegisteredClient | None] = SingleFlight()
        self._catalogue: tuple[Catalogue, float] | None = None
        self._catalogue_reads: SingleFlight[None, Catalogue] = SingleFlight()
        # one fetch at a time of each client ID metadata document (services/client_documents.py)
        self.document_fetches: SingleFlight[str, RegisteredClient | None] = SingleFlight()
        self.document_refusals: dict[str, tuple[str, float]] = {}  # url → (why, monotonic time)

    async def get(self, client_id: str | None) -> RegisteredClient | None:
        """A live client, or None (unknown or deleted)."""
        if (
            not client_id
            or len(client_id) > MAX_CLIENT_ID_URL
            or not client_id.isascii()
            or not client_id.isprintable()
        ):
            return None
        cached = self._clients.get(client_id)
        if cached is not None and time.monotonic() - cached[1] < self._ttl:
            return cached[0]
        return await self._reads.run(client_id, lambda: self._load(client_id))

    async def _load(self, client_id: str) -> RegisteredClient | None:
        async with self._database.read_only() as session:
            row = await ClientRepository(session).get_client(client_id)
        client = snapshot(row) if row is not None else None
        if self._reads.is_current(client_id):  # not invalidated while reading
            if len(self._clients) > 10_000:
                self._clients.clear()
            self._clients[client_id] = (client, time.monotonic())
        return client

    def invalidate(self, client_id: str) -> None:
        """The client changed: every process forgets it."""
        self._changes.announce("client", client_id)

    def _changed(self, topic: str, key: str) -> None:
        """Forget what changed; a read in flight (it may predate the change) is neither cached nor joined."""
        if topic == "client":
            self._clients.pop(key, None)
            self._reads.forget(key)
        elif topic == "catalogue":
            self._catalogue = None
            self._catalogue_reads.forget(None)
        elif topic == "everything":
            for client_id in list(self._clients):
                self._reads.forget(client_id)
            self._clients.clear()
            self._catalogue = None
            self._catalogue_reads.forget(None)

    async def catalogue(self) -> Catalogue:
        """Every scope and resource (they change rarely: cached for longer than clients)."""
        if self._catalogue is not None and time.monotonic() - self._catalogue[1] < self._ttl * 12:
            return self._catalogue[0]
        return await self._catalogue_reads.run(None, self._load_catalogue)

    async def _load_catalogue(self) -> Catalogue:
        async with self._database.read_only() as session:
            catalogue = await CatalogueRepository(session).catalogue()
        if self._catalogue_reads.is_current(None):
            self._catalogue = (catalogue, time.monotonic())
        return catalogue

    async def catalogue_covering(self, scopes: Iterable[str], resources: Iterable[str] = ()) -> Catalogue:
        """The catalogue, read again when it lacks a scope or resource asked for (one that another process,
        such as `consentry scope create`, has just made), at most once a second."""
        catalogue = await self.catalogue()
        if all(name in catalogue.scopes for name in scopes) and all(
            r in catalogue.resources for r in resources
        ):
            return catalogue
        if self._catalogue is not None and time.monotonic() - self._catalogue[1] < CATALOGUE_REREAD_AFTER:
            return catalogue
        self._changed("catalogue", "")  # read again here; nothing changed that others need to hear
        return await self.catalogue()

    def invalidate_catalogue(self) -> None:
        """Scopes or resources changed: every process reads the catalogue again."""
        self._changes.announce("catalogue")

    async def scope_catalogue(self) -> Mapping[str, CatalogueScope]:
        return (await self.catalogue()).scopes

    async def scope_descriptions(self) -> dict[str, str]:
        """What each scope lets an app do, in the words the pages show a person."""
        return {name: scope.description for name, scope in (await self.scope_catalogue()).items()}

    async def known_scopes(self, covering: Iterable[str] = ()) -> frozenset[str]:
        """Every scope's name, read again if one of ``covering`` is missing (see catalogue_covering)."""
        return frozenset((await self.catalogue_covering(covering)).scopes)
