"""The floor of the protected-API scenarios: examples/photos_api.py's route with no protection at all."""

from fastapi import FastAPI

app = FastAPI(title="Photos, unprotected")


@app.get("/photos")
async def list_photos() -> list[str]:
    return []
