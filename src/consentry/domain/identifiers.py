"""Identifiers people sign in with: email addresses and E.164 phone numbers, normalised. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email

IdentifierType = Literal["email", "phone"]


class InvalidIdentifier(ValueError):
    """Neither a valid email address nor an E.164 phone number: ``message`` with ``values`` filled in (a page
    translates the message first)."""

    def __init__(self, message: str, **values: object) -> None:
        self.message, self.values = message, values
        super().__init__(message % values if values else message)


@dataclass(frozen=True, slots=True)
class Identifier:
    kind: IdentifierType
    value: str


def normalise_email(raw: str) -> str:
    """Syntax-checked (no DNS lookups), lower-cased email: one account per mailbox however it is typed."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidIdentifier("not a valid email address: %(reason)s", reason=str(exc)) from exc
    return result.normalized.lower()


def normalise_phone(raw: str) -> str:
    """E.164 (``+14155550123``); the leading ``+`` and country code are required."""
    value = raw.strip()
    if not value.startswith("+"):
        raise InvalidIdentifier("phone numbers must be in E.164 form, starting with + and the country code")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier("not a valid phone number: %(reason)s", reason=str(exc)) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def account_identifiers(email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    """A new account's email and phone, normalised; it needs at least one of them (SPEC §3)."""
    if not email and not phone:
        raise InvalidIdentifier("an email or a phone number is required")
    return (normalise_email(email) if email else None, normalise_phone(phone) if phone else None)


def parse_identifier(raw: str) -> Identifier:
    """An email if it has an ``@``, else a phone number."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 320:
        raise InvalidIdentifier("an email address or an E.164 phone number is required")
    if "@" in raw:
        return Identifier("email", normalise_email(raw))
    return Identifier("phone", normalise_phone(raw))
