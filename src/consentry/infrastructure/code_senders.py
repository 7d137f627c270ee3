"""Delivering one-time codes: email over SMTP, SMS through an HTTP gateway, or the log in development."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import httpx

from consentry.domain.identifiers import Identifier
from consentry.errors import ConfigurationError, DeliveryFailedError
from consentry.settings import Settings

log = logging.getLogger(__name__)

PURPOSE_TEXT = {
    "signup": "to create your account",
    "signin": "to sign in",
    "reset": "to reset your password",
    "change": "to confirm your new address",
}


class CodeSender(Protocol):
    async def send(self, identifier: Identifier, code: str, *, purpose: str) -> None: ...


def message_text(code: str, purpose: str) -> str:
    return (
        f"Your Consentry code is {code}. Enter it {PURPOSE_TEXT.get(purpose, 'to continue')}.\n"
        "It expires in 10 minutes. If you did not ask for it, ignore this message."
    )


class SmtpSender:
    """``smtp://[user:password@]host:port`` (STARTTLS when offered) or ``smtps://`` (implicit TLS)."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigurationError(
                "CONSENTRY_SMTP_URL must look like smtp://host:port or smtps://host:port"
            )
        self._host = parts.hostname
        self._port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self._tls = parts.scheme == "smtps"
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._starttls = parse_qs(parts.query).get("starttls", ["auto"])[0]
        self._sender = sender

    async def send(self, identifier: Identifier, code: str, *, purpose: str) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = identifier.value
        message["Subject"] = f"{code} is your Consentry code"
        message.set_content(message_text(code, purpose))
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                use_tls=self._tls,
                start_tls=None if self._starttls == "auto" else self._starttls == "true",
                username=self._username,
                password=self._password,
                timeout=10,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("email delivery failed: %s", exc)
            raise DeliveryFailedError("we could not send the email; try again in a moment") from exc


class HttpSmsSender:
    """POSTs ``{"to": "+E164", "message": "..."}`` to the gateway, with an optional Bearer token."""

    def __init__(self, url: str, token: str | None) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def send(self, identifier: Identifier, code: str, *, purpose: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(
                    self._url,
                    json={"to": identifier.value, "message": message_text(code, purpose)},
                    headers=self._headers,
                )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("SMS delivery failed: %s", exc)
            raise DeliveryFailedError("we could not send the text message; try again in a moment") from exc


class LoggingSender:
    """Development only: the code goes to the log at WARNING."""

    async def send(self, identifier: Identifier, code: str, *, purpose: str) -> None:
        log.warning("one-time code for %s (%s): %s", identifier.value, purpose, code)


class UnavailableSender:
    def __init__(self, what: str) -> None:
        self._what = what

    async def send(self, identifier: Identifier, code: str, *, purpose: str) -> None:
        raise DeliveryFailedError(f"{self._what} delivery is not configured on this server")


class Senders:
    """The sender for each kind of identifier, chosen from the settings."""

    def __init__(self, email: CodeSender, phone: CodeSender) -> None:
        self.email = email
        self.phone = phone

    def for_identifier(self, identifier: Identifier) -> CodeSender:
        return self.email if identifier.kind == "email" else self.phone

    @classmethod
    def from_settings(cls, settings: Settings) -> Senders:
        fallback: CodeSender = LoggingSender() if settings.is_development else UnavailableSender("email")
        email: CodeSender = fallback
        if settings.smtp_url:
            host = urlsplit(settings.issuer).hostname or "localhost"
            email = SmtpSender(settings.smtp_url, settings.smtp_from or f"Consentry <no-reply@{host}>")
        phone: CodeSender = LoggingSender() if settings.is_development else UnavailableSender("SMS")
        if settings.sms_gateway_url:
            token = settings.sms_gateway_token.get_secret_value() if settings.sms_gateway_token else None
            phone = HttpSmsSender(settings.sms_gateway_url, token)
        return cls(email, phone)
