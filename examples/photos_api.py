"""A photos API protected by Consentry's resource-server kit (the README's example).

PHOTOS_RESOURCE=... PHOTOS_CLIENT_ID=... PHOTOS_CLIENT_SECRET=... uvicorn photos_api:app
"""

import os
from typing import Annotated

from fastapi import Depends, FastAPI

from consentry.resource import Protect, TokenInfo

protect = Protect(
    issuer=os.environ.get("CONSENTRY_ISSUER", "http://127.0.0.1:8000"),
    resource=os.environ["PHOTOS_RESOURCE"],  # as registered: consentry resource create --identifier ...
    client_id=os.environ["PHOTOS_CLIENT_ID"],
    client_secret=os.environ["PHOTOS_CLIENT_SECRET"],
    webhook_secret=os.environ.get("PHOTOS_WEBHOOK_SECRET"),  # pushes, when --webhook-url points here
)
app = FastAPI(title="Photos")
protect.install(app)  # RFC 9728 metadata, the revocation receiver, and the revocation feed
albums: dict[str, list[str]] = {}


@app.get("/photos")
async def list_photos(token: Annotated[TokenInfo, Depends(protect.require("photos:read"))]) -> list[str]:
    return albums.get(token.sub or "", [])


@app.post("/photos", status_code=201)
async def add_photo(name: str, token: Annotated[TokenInfo, Depends(protect.require("photos:write"))]) -> str:
    albums.setdefault(token.sub or "", []).append(name)
    return name
