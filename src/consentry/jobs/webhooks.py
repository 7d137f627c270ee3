"""Delivering webhook events from the outbox: at least once, signed per Standard Webhooks, with backoff.

A delivery is claimed by pushing its ``next_attempt_at`` one lease into the future (a conditional UPDATE, so
two workers never claim the same row); the HTTP call happens outside any transaction, so a slow receiver
holds no lock and never slows a person's request. While one client's claimed events are delivered in order,
their leases are renewed once half gone, each only if still this deliverer's: a slow receiver with a backlog
never sees an event twice from two deliverers. A worker that dies mid-delivery leaves the lease to expire,
and the event is delivered again: receivers deduplicate by ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from consentry.domain.net import is_private_address
from consentry.domain.tokens import DEFAULT_SIGNING_ALGORITHM
from consentry.domain.webhooks import OutboxStatus
from consentry.runtime import Runtime
from consentry.services.webhooks import BACKCHANNEL_LOGOUT, message_id
from consentry.storage.webhooks import WebhookOutboxRepository

log = logging.getLogger(__name__)

BATCH = 50
MAX_DELAY = timedelta(hours=1)
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_LIFETIME_SECONDS = 120


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    client_id: str
    url: str
    secret: str | None  # a webhook's signing secret; none for a logout token (it is a signed JWT itself)
    body: bytes
    attempts: int
    created_at: datetime
    leased_until: datetime  # the next_attempt_at this claim wrote
    logout: dict[str, Any] | None = None  # a back-channel logout's sub and sid


def retry_delay(attempts: int, *, base: float, rng: random.Random) -> timedelta:
    """Exponential backoff with jitter: base·2^(n-1), capped at an hour, times a random factor in [0.5, 1]."""
    raw = min(base * 2 ** max(attempts - 1, 0), MAX_DELAY.total_seconds())
    return timedelta(seconds=raw * rng.uniform(0.5, 1.0))


class WebhookDelivery:
    def __init__(
        self, runtime: Runtime, *, http: httpx.AsyncClient | None = None, rng: random.Random | None = None
    ) -> None:
        self._runtime = runtime
        settings = runtime.settings
        self._lease = timedelta(seconds=settings.webhook_lease_seconds)
        self._max_age = timedelta(hours=settings.webhook_max_age_hours)
        self._base = settings.webhook_retry_base_seconds
        self._allow_private = settings.webhook_allow_private or settings.issuer_is_loopback
        self._http = http or httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run_once(self, *, now: datetime) -> int:
        """Deliver what is due; returns how many deliveries were attempted."""
        claimed = await self._claim(now=now)
        by_client: dict[str, list[Claimed]] = {}
        for item in claimed:
            by_client.setdefault(item.client_id, []).append(item)
        # Clients in parallel; one client's events in the order they happened.
        await asyncio.gather(*(self._deliver_in_order(items) for items in by_client.values()))
        return len(claimed)

    async def _deliver_in_order(self, items: list[Claimed]) -> None:
        held = {item.id: item.leased_until for item in items}
        for item in items:
            now = datetime.now(item.created_at.tzinfo)
            if min(held.values()) - now < self._lease / 2:
                until = now + self._lease
                async with self._runtime.database.unit_of_work() as session:
                    renewed = await WebhookOutboxRepository(session).renew_leases(held, until=until)
                held = dict.fromkeys(renewed, until)
            if item.id not in held:
                continue  # its lease ran out and another deliverer has it now
            await self._deliver(item)
            del held[item.id]
            if not held:
                return

    async def _claim(self, *, now: datetime) -> list[Claimed]:
        claimed: list[Claimed] = []
        async with self._runtime.database.unit_of_work() as session:
            due = await WebhookOutboxRepository(session).claim_due(now=now, lease=self._lease, limit=BATCH)
            for item in due:
                event, url, sealed = item.event, item.url, item.sealed_secret
                if event.event_type == BACKCHANNEL_LOGOUT:
                    if item.backchannel_logout_uri:
                        claimed.append(
                            Claimed(
                                event.id,
                                event.client_id,
                                item.backchannel_logout_uri,
                                None,
                                b"",
                                event.attempts,
                                event.created_at,
                                now + self._lease,
                                logout=event.payload,
                            )
                        )
                    continue
                if not url or not sealed:
                    continue
                claimed.append(
                    Claimed(
                        event.id,
                        event.client_id,
                        url,
                        self._open(sealed),
                        orjson.dumps(event.payload),
                        event.attempts,
                        event.created_at,
                        now + self._lease,
                    )
                )
        return claimed

    def _open(self, sealed: str) -> str:
        if sealed.startswith("whsec_"):  # stored before secrets were sealed
            return sealed
        return self._runtime.secret_box.open(sealed).decode()

    async def _deliver(self, item: Claimed) -> None:
        now = datetime.now(item.created_at.tzinfo)
        error = await self._post(item, now=now)
        await self._record(item, error, now=datetime.now(item.created_at.tzinfo))

    async def _post(self, item: Claimed, *, now: datetime) -> str | None:
        """POST the event; None on a 2xx answer, else what went wrong."""
        refusal = await self._refuse_private(item.url)
        if refusal:
            return refusal
        if item.logout:
            content, headers = await self._logout_token(item, now=now)
        else:
            content, headers = self._signed(item, now=now)
        try:
            response = await self._http.post(item.url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:1000]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _signed(self, item: Claimed, *, now: datetime) -> tuple[bytes, dict[str, str]]:
        """A webhook: the event as JSON, signed per Standard Webhooks."""
        assert item.secret is not None
        msg_id = message_id(item.id)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(item.secret).sign(msg_id, now, item.body.decode()),
            "user-agent": "Consentry-Webhooks/1",
        }
        return item.body, headers

    async def _logout_token(self, item: Claimed, *, now: datetime) -> tuple[bytes, dict[str, str]]:
        """Back-Channel Logout 1.0 §2.4-2.5: a logout token (``typ`` logout+jwt), signed as the client's ID
        tokens are, form-encoded. It is made at each attempt: a retry carries a fresh ``iat``/``exp``."""
        assert item.logout is not None
        runtime = self._runtime
        await runtime.keys.ensure_loaded(now=now)
        client = await runtime.clients.get(item.client_id)
        issued_at = int(now.timestamp())
        claims = {
            "iss": runtime.issuer,
            "aud": item.client_id,
            "iat": issued_at,
            "exp": issued_at + LOGOUT_TOKEN_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
            "events": {LOGOUT_EVENT: {}},
            **{key: item.logout[key] for key in ("sub", "sid") if item.logout.get(key)},
        }
        alg = client.id_token_signed_response_alg if client is not None else DEFAULT_SIGNING_ALGORITHM
        token = runtime.keys.sign(claims, alg=alg, typ="logout+jwt")
        headers = {"content-type": "application/x-www-form-urlencoded", "user-agent": "Consentry-Logout/1"}
        return urlencode({"logout_token": token}).encode(), headers

    async def _refuse_private(self, url: str) -> str | None:
        """SSRF: refuse hosts that resolve to private or loopback addresses (unless allowed)."""
        if self._allow_private:
            return None
        parts = urlsplit(url)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname or "", parts.port or 443)
        except OSError as exc:
            return f"cannot resolve {parts.hostname}: {exc}"
        if any(is_private_address(str(info[4][0])) for info in infos):
            return f"refused: {parts.hostname} resolves to a private address"
        return None

    async def _record(self, item: Claimed, error: str | None, *, now: datetime) -> None:
        values: dict[str, Any]
        attempts = item.attempts + 1
        if error is None:
            values = {
                "status": OutboxStatus.DELIVERED,
                "delivered_at": now,
                "attempts": attempts,
                "last_error": None,
            }
        elif now - item.created_at >= self._max_age:
            values = {"status": OutboxStatus.DEAD, "attempts": attempts, "last_error": error}
            log.warning("webhook %s is dead after %d attempts: %s", item.id, attempts, error)
        else:
            delay = retry_delay(attempts, base=self._base, rng=self._rng)
            values = {"attempts": attempts, "last_error": error, "next_attempt_at": now + delay}
            log.info("webhook %s failed (%s); retry in %.1fs", item.id, error, delay.total_seconds())
        async with self._runtime.database.unit_of_work() as session:
            await WebhookOutboxRepository(session).settle(item.id, values)
