"""Code delivery choices by mode, and session cookie/expiry rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from consentry.domain.identifiers import Identifier
from consentry.errors import DeliveryFailedError
from consentry.http.app import create_app
from consentry.infrastructure.code_senders import LoggingSender, Senders
from consentry.runtime import Runtime, utcnow
from consentry.services.sessions import authenticate_session, create_session
from consentry.settings import Settings
from tests.conftest import make_settings
from tests.oauth import PASSWORD, make_person


async def test_development_logs_codes(caplog: pytest.LogCaptureFixture) -> None:
    senders = Senders.from_settings(Settings())
    assert isinstance(senders.email, LoggingSender)
    await senders.email.send(Identifier("email", "a@example.com"), "123456", purpose="signin")
    assert "123456" in caplog.text


async def test_production_without_smtp_refuses_clearly() -> None:
    senders = Senders.from_settings(Settings(env="production", issuer="https://id.example.com"))
    with pytest.raises(DeliveryFailedError, match="not configured"):
        await senders.email.send(Identifier("email", "a@example.com"), "123456", purpose="signin")
    with pytest.raises(DeliveryFailedError, match="not configured"):
        await senders.phone.send(Identifier("phone", "+14155552671"), "123456", purpose="signin")


async def test_session_cookie_is_secure_outside_development(
    database_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    settings = make_settings(database_url, tmp_path, env="production", issuer="https://id.example.com")
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://id.example.com"
    ) as http:
        flow = (await http.post("/api/v1/auth/submit-identifier", json={"identifier": person.email})).json()
        done = await http.post(
            "/api/v1/auth/login-password",
            json={"password": PASSWORD},
            headers={"Authorization": f"Bearer {flow['flow_token']}"},
        )
    await app.state.runtime.close()
    cookie = done.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


async def test_sessions_expire_by_time(runtime: Runtime) -> None:
    person = await make_person(runtime)
    async with runtime.database.unit_of_work() as session:
        short = await create_session(
            session, person.user_id, now=utcnow() - timedelta(hours=2), ttl=timedelta(hours=1)
        )
    assert await authenticate_session(runtime.session_lookup, short.token, now=utcnow()) is None
    assert await authenticate_session(runtime.session_lookup, person.session_token, now=utcnow()) is not None
