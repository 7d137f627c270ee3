"""Signed flow tokens for the multi-step sign-in (joserfc, HS256)."""

from __future__ import annotations

import uuid
from datetime import datetime

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from consentry.errors import InvalidFlowError


class FlowTokens:
    """Signed (HS256, joserfc), short-lived tokens naming a flow and the step it is at."""

    def __init__(self, key: bytes) -> None:
        self._key = OctKey.import_key(key)

    def issue(self, flow_id: uuid.UUID, step: str, *, expires_at: datetime) -> str:
        claims = {"fid": str(flow_id), "stp": step, "exp": int(expires_at.timestamp())}
        return jwt.encode(
            {"alg": "HS256", "typ": "consentry-flow+jwt"}, claims, self._key, algorithms=["HS256"]
        )

    def read(self, token: str | None, *, step: str, now: datetime) -> uuid.UUID:
        if not token or len(token) > 1024:
            raise InvalidFlowError()
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"]).claims
            flow_id = uuid.UUID(str(claims["fid"]))
        except (JoseError, KeyError, ValueError, TypeError):
            raise InvalidFlowError() from None
        if claims.get("stp") != step or int(claims.get("exp", 0)) <= now.timestamp():
            raise InvalidFlowError()
        return flow_id
