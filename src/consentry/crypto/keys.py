"""Signing keys (joserfc): generated on first start, persisted encrypted, rotated with overlap.

Each process keeps the published key set in memory and re-reads it at most every ``refresh_interval``, so a
rotation made by `consentry keys rotate` (or another node) is picked up without a restart.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.util import json_b64encode, urlsafe_b64encode

from consentry.crypto.secret_box import SecretBox
from consentry.domain.tokens import DEFAULT_SIGNING_ALGORITHM, SIGNING_ALGORITHMS
from consentry.single_flight import SingleFlight
from consentry.storage.change_bus import ChangeBus
from consentry.storage.database import Database
from consentry.storage.records import SigningKey
from consentry.storage.signing_keys import SigningKeyRepository

CLOCK_SKEW = timedelta(minutes=5)
# How long relying parties may cache the JWKS; a rotation's new keys are published this long before they sign.
JWKS_MAX_AGE = 300

SigningJWK = RSAKey | ECKey

_JWS = JWSRegistry(algorithms=list(SIGNING_ALGORITHMS))
_ECDSA_HASHES = {"ES256": hashes.SHA256}  # RFC 7518 §3.4, for the ECDSA algorithms among SIGNING_ALGORITHMS


class CompactSigner:
    """JWS Compact Serialization (RFC 7515 §7.1) with one key, as joserfc's ``jws.serialize_compact`` makes
    it, but with each protected header checked and encoded once: every JWT one key signs with one ``typ``
    has the same header, and checking and encoding it again for each token was much of what a JWT cost beside
    its signature (docs/performance.md). The signature is joserfc's algorithm's, except that for ECDSA the
    key's ``sign`` operation is looked up once rather than per token (a third of what joserfc adds to
    OpenSSL's signature): the same ``cryptography`` call, its DER signature as ``r || s`` (RFC 7518 §3.4)."""

    __slots__ = ("_algorithm", "_ecdsa", "_headers", "key")

    def __init__(self, key: SigningJWK, alg: str) -> None:
        self.key = key
        self._algorithm = _JWS.get_alg(alg)
        self._algorithm.check_key(key)
        self._headers: dict[str, bytes] = {}
        self._ecdsa: tuple[ec.EllipticCurvePrivateKey, ec.ECDSA, int] | None = None
        if isinstance(key, ECKey) and alg in _ECDSA_HASHES:
            private = key.get_op_key("sign")  # joserfc's check that the key may sign
            assert isinstance(private, ec.EllipticCurvePrivateKey)
            self._ecdsa = private, ec.ECDSA(_ECDSA_HASHES[alg]()), (key.curve_key_size + 7) // 8

    def sign(self, payload: bytes, typ: str) -> str:
        header = self._headers.get(typ)
        if header is None:
            protected = {"alg": self._algorithm.name, "kid": self.key.kid, "typ": typ}
            _JWS.check_header(protected)
            header = self._headers[typ] = json_b64encode(protected) + b"."
        signing_input = header + urlsafe_b64encode(payload)
        if self._ecdsa is None:
            signature = self._algorithm.sign(signing_input, self.key)
        else:
            private, ecdsa, size = self._ecdsa
            r, s = decode_dss_signature(private.sign(signing_input, ecdsa))
            signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return (signing_input + b"." + urlsafe_b64encode(signature)).decode("ascii")


def _generate(alg: str) -> SigningJWK:
    params: Any = {"alg": alg, "use": "sig"}
    key: SigningJWK = (
        RSAKey.generate_key(2048, params) if alg == "RS256" else ECKey.generate_key("P-256", params)
    )
    key.ensure_kid()  # RFC 7638 thumbprint
    return key


def _active_algorithms(rows: list[SigningKey]) -> set[str]:
    return {row.alg for row in rows if row.retired_at is None}


def _import(private_jwk: dict[str, Any]) -> SigningJWK:
    if private_jwk["kty"] == "RSA":
        return RSAKey.import_key(private_jwk)
    return ECKey.import_key(private_jwk)


class KeyStore:
    def __init__(
        self,
        database: Database,
        changes: ChangeBus,
        *,
        encryption_key: bytes,
        token_lifetime: timedelta,
        refresh_interval: float = 60.0,
    ) -> None:
        self._database = database
        self._changes = changes
        changes.subscribe(self._changed)
        self._box = SecretBox(encryption_key)
        self._token_lifetime = token_lifetime
        self._refresh_interval = refresh_interval
        self._signing: dict[str, CompactSigner] = {}
        self._published = KeySet([])
        self._jwks: dict[str, Any] = {"keys": []}
        self._loaded_at = float("-inf")
        self._next_switch: datetime | None = None  # when a rotation's new keys start signing
        self._loads: SingleFlight[None, None] = SingleFlight()

    async def ensure_loaded(self, *, now: datetime) -> None:
        """Load keys if never loaded or stale, or when a rotation's switch is due, one load at a time; on
        first start create one per algorithm."""
        fresh = time.monotonic() - self._loaded_at < self._refresh_interval
        if fresh and self._signing and (self._next_switch is None or now < self._next_switch):
            return
        await self._loads.run(None, lambda: self._load(now=now))

    async def _load(self, *, now: datetime) -> None:
        async with self._database.read_only() as session:
            rows = await SigningKeyRepository(session).published(now=now)
        if not set(SIGNING_ALGORITHMS) <= _active_algorithms(rows):
            async with self._database.unit_of_work() as session:  # first start: create what is missing
                repository = SigningKeyRepository(session)
                await repository.one_creator_at_a_time()  # nodes starting together create one key set
                rows = await repository.published(now=now)
                active = _active_algorithms(rows)
                for alg in SIGNING_ALGORITHMS:
                    if alg not in active:
                        rows.insert(0, await self._create(repository, alg, now=now))
        if self._loads.is_current(None):  # a rotation meanwhile made this read stale
            self._install(rows, now=now)

    async def rotate(self, *, now: datetime, activate_after: timedelta = timedelta(0)) -> list[str]:
        """New keys, published at once and signing from ``activate_after`` on (every node switches then); the
        old ones sign until that moment and stay published until every token they signed has expired."""
        switch = now + activate_after
        publish_until = switch + self._token_lifetime + CLOCK_SKEW
        created = []
        async with self._database.unit_of_work() as session:
            repository = SigningKeyRepository(session)
            for alg in SIGNING_ALGORITHMS:
                await repository.retire_active(alg, now=switch, publish_until=publish_until)
                key = await self._create(
                    repository, alg, now=now, activates_at=switch if activate_after else None
                )
                created.append(key.kid)
        self._changes.announce("keys")  # every process loads them again
        await self.ensure_loaded(now=now)
        return created

    def _changed(self, topic: str, _key: str) -> None:
        if topic in ("keys", "everything"):
            self._loads.forget(None)
            self._loaded_at = float("-inf")

    async def _create(
        self,
        repository: SigningKeyRepository,
        alg: str,
        *,
        now: datetime,
        activates_at: datetime | None = None,
    ) -> SigningKey:
        key = _generate(alg)
        row = SigningKey(
            kid=key.kid or "",
            alg=alg,
            private_jwk=self._box.seal(orjson.dumps(key.as_dict(private=True))),
            public_jwk=key.as_dict(private=False),
            created_at=now,
            activates_at=activates_at,
        )
        await repository.add(row)
        return row

    def _install(self, rows: list[SigningKey], *, now: datetime) -> None:
        """Publish every row; sign with each algorithm's newest key that is active now (activated, not yet
        retired), and remember when the next scheduled switch is due."""
        # An RSA private key import is slow (tens of milliseconds): each is imported once, then reused by kid.
        imported = {signer.key.kid: signer for signer in self._signing.values()}
        signing: dict[str, CompactSigner] = {}
        public = []
        switches = [
            t for row in rows for t in (row.activates_at, row.retired_at) if t is not None and t > now
        ]
        for row in sorted(rows, key=lambda r: r.created_at, reverse=True):
            public.append(row.public_jwk)
            active = (row.retired_at is None or row.retired_at > now) and (
                row.activates_at is None or row.activates_at <= now
            )
            if active and row.alg not in signing:
                signing[row.alg] = imported.get(row.kid) or CompactSigner(
                    _import(orjson.loads(self._box.open(row.private_jwk))), row.alg
                )
        self._signing = signing
        self._next_switch = min(switches, default=None)
        self._jwks = {"keys": public}
        self._published = KeySet.import_key_set({"keys": public})
        self._loaded_at = time.monotonic()

    def jwks(self) -> dict[str, Any]:
        return self._jwks

    def sign(self, claims: dict[str, Any], *, alg: str = DEFAULT_SIGNING_ALGORITHM, typ: str = "JWT") -> str:
        """A JWT (RFC 7519: the claims as a JWS compact payload). The claims are JSON already (strings,
        numbers, lists): serialised once with orjson, they skip ``jwt.encode``'s conversion, which cost as
        much as an ES256 signature."""
        return self._signing[alg].sign(orjson.dumps(claims), typ)

    def verify(self, token: str) -> dict[str, Any]:
        """Decode and check the signature against the published keys (used by tests and receipts)."""
        return dict(jwt.decode(token, self._published, algorithms=list(SIGNING_ALGORITHMS)).claims)
