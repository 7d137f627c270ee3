"""Moving sectors to a new pseudonym version (SPEC §6): gradually, and telling their clients."""

from __future__ import annotations

from datetime import datetime, timedelta

from consentry.runtime import Runtime
from consentry.services.webhooks import enqueue_event
from consentry.storage.clients import ClientRepository
from consentry.storage.pseudonyms import SectorPin


async def migrate_sectors(
    runtime: Runtime, sector: str | None, *, window: timedelta, now: datetime
) -> list[SectorPin]:
    """Move ``sector`` (None: every sector) to the active version; for ``window`` its clients see the new
    ``sub`` and, as ``sub_previous``, the old one. Each of its clients is sent ``subjects.migrating``."""
    moved = await runtime.subjects.migrate(sector, window=window, now=now)
    async with runtime.database.unit_of_work() as session:
        clients = ClientRepository(session)
        for pin in moved:
            for client_id in await clients.pairwise_in_sector(pin.sector):
                client = await runtime.clients.get(client_id)
                if client is None:
                    continue
                data = {
                    "client_id": client.id,
                    "sector": pin.sector,
                    "version": pin.version,
                    "previous_version": pin.previous_version,
                    "migrating_until": pin.migrating_until.isoformat() if pin.migrating_until else None,
                }
                await enqueue_event(session, client, "subjects.migrating", data, now=now)
    return moved
