"""The records the storage ports hand to use cases and take back.

They are the mapped rows of ``tables.py``: a use case reads their attributes, sets them inside its transaction
and builds new ones for a port to add. It never queries with them: which rows to load, lock, change or delete
in bulk is a port's method (``UserRepository.get_user``, ``ConsentRepository.end_active``, …). Only
``storage`` and the migrations import ``tables.py`` and SQLAlchemy (the import-linter contract in
``pyproject.toml``).
"""

from consentry.storage.tables import (
    AccessToken,
    AuditEvent,
    AuthorizationCode,
    Client,
    Consent,
    ConsentHistory,
    InitialAccessToken,
    LinkedAccount,
    Pseudonym,
    PseudonymVersion,
    RefreshToken,
    RegistrationRequest,
    Resource,
    Scope,
    SigninFlow,
    SigningKey,
    UpstreamAuthorization,
    UpstreamProvider,
    User,
    UserCredential,
    UserSession,
    WebhookOutbox,
)

__all__ = [
    "AccessToken",
    "AuditEvent",
    "AuthorizationCode",
    "Client",
    "Consent",
    "ConsentHistory",
    "InitialAccessToken",
    "LinkedAccount",
    "Pseudonym",
    "PseudonymVersion",
    "RefreshToken",
    "RegistrationRequest",
    "Resource",
    "Scope",
    "SigninFlow",
    "SigningKey",
    "UpstreamAuthorization",
    "UpstreamProvider",
    "User",
    "UserCredential",
    "UserSession",
    "WebhookOutbox",
]
