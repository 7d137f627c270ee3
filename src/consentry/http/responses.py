"""Fast JSON responses (orjson) and the error body shape of SPEC §5."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSONResponse


class JSONResponse(_StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(
    status_code: int, error: str, description: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status_code, headers=headers)
