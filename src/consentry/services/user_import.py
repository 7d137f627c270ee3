"""`consentry users import`: accounts with pre-hashed passwords, streamed through the registration pipeline.

Accepted hash formats: argon2, bcrypt, pbkdf2-sha256 (Django or passlib notation). Non-argon2 hashes verify at
sign-in and are replaced by argon2id on the first successful one.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from consentry.crypto.hashing import imported_hash_format
from consentry.domain.identifiers import InvalidIdentifier, account_identifiers
from consentry.domain.registration import TAKEN, RegistrationMessage, RegistrationStatus
from consentry.ids import new_clustered_id
from consentry.pipeline.consumer import RegistrationConsumer
from consentry.runtime import Runtime
from consentry.storage.registrations import RegistrationLedger

CHUNK = 1000
TRUE = {"1", "true", "yes", "y", "t"}


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    failed: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, row, error) for JSON lines or, for a .csv file, CSV with a header."""
    with path.open(newline="", encoding="utf-8") as handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, dict(row), None
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, None, f"not JSON: {exc}"
                continue
            yield (number, value, None) if isinstance(value, dict) else (number, None, "not a JSON object")


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in TRUE)


def to_message(row: dict[str, Any]) -> RegistrationMessage:
    """Raises ValueError with the reason the row cannot be imported."""
    try:
        email, phone = account_identifiers((row.get("email") or "").strip(), (row.get("phone") or "").strip())
    except InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None
    password_hash = (row.get("password_hash") or "").strip()
    if imported_hash_format(password_hash) is None:
        raise ValueError("password_hash must be an argon2, bcrypt or pbkdf2-sha256 hash")
    attributes = {
        "email_verified": _flag(row.get("email_verified")),
        "phone_verified": _flag(row.get("phone_verified")),
        "via": "import",
    }
    return RegistrationMessage(new_clustered_id(), email, phone, password_hash, attributes)


async def import_file(
    runtime: Runtime, path: Path, *, now: datetime, progress: Callable[[int], None] | None = None
) -> ImportReport:
    """Publish every valid line, drive the pipeline until they are written, and report."""
    report = ImportReport()
    request_ids: list[uuid.UUID] = []
    chunk: list[RegistrationMessage] = []
    for number, row, error in read_rows(path):
        if row is not None:
            try:
                chunk.append(to_message(row))
            except ValueError as exc:
                error = str(exc)
        if error is not None:
            report.invalid.append((number, error))
        if len(chunk) >= CHUNK:
            await runtime.registrations.publish(chunk, now=now)
            request_ids.extend(m.request_id for m in chunk)
            chunk = []
        if progress:
            progress(1)
    if chunk:
        await runtime.registrations.publish(chunk, now=now)
        request_ids.extend(m.request_id for m in chunk)
    consumer = RegistrationConsumer(
        runtime.database, runtime.registrations, runtime.settings, runtime.pipeline_metrics
    )
    ledger = RegistrationLedger(runtime.database)
    while await ledger.count_processing(request_ids):
        if not await consumer.step():
            await consumer.drain()
    _tally(await ledger.outcomes(request_ids), report)
    return report


def _tally(outcomes: list[tuple[RegistrationStatus, str | None]], report: ImportReport) -> None:
    for status, error in outcomes:
        if status == RegistrationStatus.COMPLETED:
            report.imported += 1
        elif error == TAKEN:
            report.duplicates += 1
        else:
            report.failed += 1
