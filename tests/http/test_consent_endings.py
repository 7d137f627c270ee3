"""SPEC §9: every path that ends a consent — the person (DELETE, PATCH), an admin, a client's deletion, an
account's deletion and purge, bulk soft delete, expiry — writes the consent history and the audit event and
tells the client by webhook. One home does it (consent_endings.end_consents); this walks every path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from consentry.jobs.cleanup import run_cleanup
from consentry.runtime import Runtime, utcnow
from consentry.storage.tables import AuditEvent, Consent, ConsentHistory, WebhookOutbox
from tests.oauth import App, Person, approve, authorize_params, make_app, make_person

Ending = Callable[[httpx.AsyncClient, Runtime, App, Person, Person], Awaitable[None]]


async def by_the_person(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person, admin: Person
) -> None:
    answer = await http.delete(f"/api/v1/oauth2/consents/{app.client_id}", headers=person.headers)
    assert answer.status_code == 204


async def by_narrowing_to_nothing(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person, admin: Person
) -> None:
    answer = await http.patch(
        f"/api/v1/oauth2/consents/{app.client_id}",
        json={"revoke_scopes": ["openid", "profile"]},
        headers=person.headers,
    )
    assert answer.status_code == 200, answer.text


async def by_an_admin(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person, admin: Person
) -> None:
    answer = await http.delete(
        f"/api/v1/admin/users/{person.user_id}/consents/{app.client_id}", headers=admin.headers
    )
    assert answer.status_code == 204, answer.text


async def by_the_clients_deletion(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person, admin: Person
) -> None:
    answer = await http.delete(f"/api/v1/oauth2/clients/{app.client_id}", headers=admin.headers)
    assert answer.status_code == 204, answer.text


async def by_the_accounts_deletion(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person, admin: Person
) -> None:
    assert (await http.delete("/api/v1/users/me", headers=person.headers)).status_code == 200


async def by_the_accounts_purge(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person, admin: Person
) -> None:
    await by_the_accounts_deletion(http, runtime, app, person, admin)
    await run_cleanup(runtime, now=utcnow() + timedelta(days=31))


async def by_bulk_soft_delete(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person, admin: Person
) -> None:
    answer = await http.post(
        "/api/v1/admin/users/bulk",
        json={"action": "soft_delete", "user_ids": [str(person.user_id)]},
        headers=admin.headers,
    )
    assert answer.status_code == 200 and answer.json()["affected"] == 1


async def by_expiry(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person, admin: Person
) -> None:
    async with runtime.database.unit_of_work() as session:
        await session.execute(update(Consent).values(expires_at=utcnow() - timedelta(seconds=1)))
    await run_cleanup(runtime, now=utcnow())


@pytest.mark.parametrize(
    ("end", "action", "webhook"),
    [
        (by_the_person, "revoked", "consent.revoked"),
        (by_narrowing_to_nothing, "revoked", "consent.revoked"),
        (by_an_admin, "revoked", "consent.revoked"),
        (by_the_clients_deletion, "revoked", "consent.revoked"),
        (by_the_accounts_deletion, "revoked", "consent.revoked"),
        (by_the_accounts_purge, "revoked", "consent.revoked"),
        (by_bulk_soft_delete, "revoked", "consent.revoked"),
        (by_expiry, "expired", "consent.expired"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
async def test_every_path_that_ends_a_consent_keeps_history_audits_and_tells_the_client(
    http: httpx.AsyncClient, runtime: Runtime, end: Ending, action: str, webhook: str
) -> None:
    app = await make_app(runtime, webhook_url="https://hooks.example.com/consentry")
    person, admin = await make_person(runtime), await make_person(runtime, is_admin=True)
    await approve(http, person, authorize_params(app, scope="openid profile"))

    await end(http, runtime, app, person, admin)

    async with runtime.database.read_only() as session:
        history = list(
            await session.scalars(
                select(ConsentHistory.action).where(
                    ConsentHistory.client_id == app.client_id, ConsentHistory.action != "granted"
                )
            )
        )
        audited = list(
            await session.scalars(
                select(AuditEvent.event_type).where(
                    AuditEvent.client_id == app.client_id, AuditEvent.event_type.like("consent_%")
                )
            )
        )
        told = list(
            await session.scalars(
                select(WebhookOutbox.event_type).where(WebhookOutbox.client_id == app.client_id)
            )
        )
        live = await session.scalar(select(Consent.status).where(Consent.client_id == app.client_id))
    assert history == [action]
    assert f"consent_{action}" in audited
    assert told.count(webhook) == 1
    assert live in (None, action)  # gone with the purged account, or ended
